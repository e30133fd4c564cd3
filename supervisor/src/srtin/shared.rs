//! What a listener's thread and the input holding it share: the state
//! behind one lock, the caller's events and stream (given to the input's
//! `appsrc` now, or kept for the next one), and the process's table of
//! listeners.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use gst_app::AppSrc;

use super::ffi;
use super::options::Options;

/// What is kept of a caller's stream while no input pipeline takes it
/// (between a rebuild's teardown and start): about 3 s at 10 Mb/s.
const BACKLOG_BYTES: usize = 4 << 20;

/// Events kept for the next sink, at most (a caller hammering the port
/// while no pipeline is up must not grow it).
const UNTOLD: usize = 16;

/// What the listener tells the input that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerEvent {
    /// A caller connected. `replaced`: the pipeline attached has already
    /// carried an earlier caller's stream and must be rebuilt for this one
    /// (new PIDs, new codec headers); until then its data is kept.
    Connected { peer: String, replaced: bool },
    /// The caller closed or went quiet past SRT's peer-idle timeout.
    Gone { peer: String },
    /// A caller was turned away (why says it).
    Refused { peer: String, why: String },
}

pub(super) type Notify = Arc<dyn Fn(CallerEvent) + Send + Sync>;

pub(super) struct Sink {
    pub(super) appsrc: AppSrc,
    /// Whether a caller's data has gone into it.
    pub(super) fed: bool,
    pub(super) notify: Notify,
}

#[derive(Default)]
pub(super) struct State {
    /// Whether an input holds it (a [`Listener`](super::Listener) exists).
    pub(super) held: bool,
    pub(super) released_at: Option<Instant>,
    pub(super) sink: Option<Sink>,
    /// What arrived while no sink took it.
    pub(super) backlog: VecDeque<gst::Buffer>,
    pub(super) backlog_bytes: usize,
    /// Peer of the connected caller, for status.
    pub(super) peer: Option<String>,
    /// The connected caller's socket, for its link statistics; cleared
    /// under this lock before the socket is closed.
    pub(super) caller: Option<ffi::SrtSocket>,
    /// What happened while no sink was attached (between a pipeline's
    /// teardown and the next one's start): told to the next sink.
    pub(super) untold: Vec<CallerEvent>,
}

pub(super) struct Shared {
    pub(super) opts: Options,
    /// The listening socket; the thread closes it when it ends.
    pub(super) sock: ffi::SrtSocket,
    pub(super) state: Mutex<State>,
    pub(super) stop: AtomicBool,
    pub(super) thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Every listener of the process, by address: at most one socket per port.
pub(super) fn listeners() -> &'static Mutex<HashMap<SocketAddr, Arc<Shared>>> {
    static L: OnceLock<Mutex<HashMap<SocketAddr, Arc<Shared>>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

pub(super) fn tell(sh: &Shared, ev: CallerEvent) {
    let st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
    let notify = st.sink.as_ref().map(|s| s.notify.clone());
    tell_or_keep(st, notify, ev);
}

/// Tells `notify` (out of the lock), or keeps the event for the next sink.
pub(super) fn tell_or_keep(
    mut st: std::sync::MutexGuard<'_, State>,
    notify: Option<Notify>,
    ev: CallerEvent,
) {
    match notify {
        Some(f) => {
            drop(st);
            f(ev);
        }
        None if st.untold.len() < UNTOLD => st.untold.push(ev),
        None => {}
    }
}

pub(super) fn deliver(sh: &Shared, b: gst::Buffer) {
    let mut st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sink) = st.sink.as_mut() {
        sink.fed = true;
        let appsrc = sink.appsrc.clone();
        drop(st);
        // Flushing (the pipeline is being torn down): the rebuild attaches
        // a new sink; a packet or two of a dying pipeline is no loss.
        let _ = appsrc.push_buffer(b);
        return;
    }
    st.backlog_bytes += b.size();
    st.backlog.push_back(b);
    while st.backlog_bytes > BACKLOG_BYTES {
        match st.backlog.pop_front() {
            Some(old) => st.backlog_bytes -= old.size(),
            None => break,
        }
    }
}
