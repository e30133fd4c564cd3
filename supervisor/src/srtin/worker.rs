//! The listener's thread: accepts callers (one at a time), moves their
//! packets, hangs up on broken ones, and ends a listener parked too long.

use std::ffi::{c_char, c_int};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::ffi;
use super::shared::{deliver, listeners, tell, tell_or_keep, CallerEvent, Shared};
use super::socket::{peer_of, streamid_of};

/// A caller silent for this long is taken for gone when another calls: a
/// live TS over SRT carries packets every few milliseconds.
const SILENT_CALLER: Duration = Duration::from_millis(200);
/// A listener no input holds (its channel stopped or is being rebuilt by
/// a reload) stays open this long, connected caller included, for the
/// input that takes it back.
pub(super) const PARKED: Duration = Duration::from_secs(10);
/// How often the listener's thread looks at its own state.
const TICK_MS: i64 = 100;
/// Larger than any SRT payload (1456 bytes at most).
const PACKET: usize = 1500;

struct Conn {
    sock: ffi::SrtSocket,
    peer: String,
    last_data: Instant,
}

/// The listener's thread: accepts callers and moves their packets.
pub(super) fn run(sh: Arc<Shared>) {
    // SAFETY: the epoll and every socket below are owned by this thread.
    let eid = unsafe { ffi::srt_epoll_create() };
    let ev_listen = ffi::SRT_EPOLL_IN | ffi::SRT_EPOLL_ERR;
    unsafe { ffi::srt_epoll_add_usock(eid, sh.sock, &ev_listen) };
    let mut conn: Option<Conn> = None;
    let mut buf = vec![0u8; PACKET];
    let mut events = [ffi::EpollEvent::default(); 4];
    while !sh.stop.load(Ordering::Acquire) && !parked_out(&sh) {
        // SAFETY: `events` has room for its length.
        let n = unsafe {
            ffi::srt_epoll_uwait(eid, events.as_mut_ptr(), events.len() as c_int, TICK_MS)
        };
        for ev in events.iter().take(n.max(0) as usize) {
            if ev.fd == sh.sock {
                accept(&sh, eid, &mut conn);
            } else if conn.as_ref().is_some_and(|c| c.sock == ev.fd) {
                let broken = receive(
                    &sh,
                    conn.as_mut().unwrap_or_else(|| unreachable!()),
                    &mut buf,
                ) || ev.events & ffi::SRT_EPOLL_ERR != 0;
                if broken {
                    if let Some(c) = conn.take() {
                        hang_up(&sh, eid, c);
                    }
                }
            }
        }
        // A broken connection epoll did not report (libsrt reports ERR on
        // most, not all, paths to BROKEN).
        let dead = conn
            .as_ref()
            .is_some_and(|c| unsafe { ffi::srt_getsockstate(c.sock) } >= ffi::SRTS_BROKEN);
        if dead {
            if let Some(c) = conn.take() {
                hang_up(&sh, eid, c);
            }
        }
    }
    if let Some(c) = conn.take() {
        // SAFETY: owned here; closed once.
        unsafe { ffi::srt_close(c.sock) };
    }
    unsafe {
        ffi::srt_close(sh.sock);
        ffi::srt_epoll_release(eid);
    }
    info!(listener = %sh.opts.addr, "srt listener closed");
}

/// Whether an unheld listener has waited out [`PARKED`]; if so it leaves
/// the process's table (unless it was taken back meanwhile).
fn parked_out(sh: &Arc<Shared>) -> bool {
    {
        let st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
        match st.released_at {
            Some(at) if !st.held && at.elapsed() >= PARKED => {}
            _ => return false,
        }
    }
    let mut all = listeners().lock().unwrap_or_else(|e| e.into_inner());
    let st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
    if st.held {
        return false;
    }
    if all.get(&sh.opts.addr).is_some_and(|s| Arc::ptr_eq(s, sh)) {
        all.remove(&sh.opts.addr);
    }
    true
}

/// Takes one pending caller (epoll is level-triggered: another pending
/// one wakes the loop again; accepting until "none pending" only makes
/// libsrt log an error).
fn accept(sh: &Shared, eid: c_int, conn: &mut Option<Conn>) {
    // SAFETY: all-zero is a valid sockaddr_storage; libsrt fills it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as c_int;
    let s = unsafe {
        ffi::srt_accept(
            sh.sock,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if s == ffi::SRT_INVALID_SOCK {
        return;
    }
    let peer = peer_of(&ss);
    let refuse = |why: String| {
        // SAFETY: accepted here, never used again.
        unsafe { ffi::srt_close(s) };
        tell(
            sh,
            CallerEvent::Refused {
                peer: peer.clone(),
                why,
            },
        );
    };
    if let Some(want) = &sh.opts.streamid {
        let got = streamid_of(s);
        if &got != want {
            // Not quoted: a stream id is often an access key (another
            // input's, perhaps).
            let _ = got;
            return refuse("its stream id is not the one this input expects".into());
        }
    }
    if let Some(c) = conn.as_ref() {
        if c.last_data.elapsed() < SILENT_CALLER {
            return refuse(format!("{} is connected and still sending", c.peer));
        }
    }
    if let Some(old) = conn.take() {
        hang_up(sh, eid, old);
    }
    let ev = ffi::SRT_EPOLL_IN | ffi::SRT_EPOLL_ERR;
    // SAFETY: s is a live accepted socket.
    unsafe { ffi::srt_epoll_add_usock(eid, s, &ev) };
    *conn = Some(Conn {
        sock: s,
        peer: peer.clone(),
        last_data: Instant::now(),
    });
    let mut st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
    st.peer = Some(peer.clone());
    st.caller = Some(s);
    st.backlog.clear();
    st.backlog_bytes = 0;
    // A pipeline that decoded another caller's stream is not fed this
    // one: its data waits in the backlog for the rebuild.
    let replaced = st.sink.as_ref().is_some_and(|k| k.fed);
    let notify = if replaced {
        st.sink.take().map(|k| k.notify)
    } else {
        st.sink.as_ref().map(|k| k.notify.clone())
    };
    tell_or_keep(st, notify, CallerEvent::Connected { peer, replaced });
}

/// Reads everything the connection has; true when it is broken.
fn receive(sh: &Shared, c: &mut Conn, buf: &mut [u8]) -> bool {
    let mut data: Vec<u8> = Vec::new();
    let broken = loop {
        // SAFETY: buf is buf.len() bytes.
        let n = unsafe {
            ffi::srt_recvmsg(
                c.sock,
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len() as c_int,
            )
        };
        if n > 0 {
            data.extend_from_slice(&buf[..n as usize]);
            continue;
        }
        if n == ffi::SRT_ERROR {
            let code = unsafe { ffi::srt_getlasterror(std::ptr::null_mut()) };
            break code != ffi::SRT_EASYNCRCV;
        }
        break false;
    };
    if !data.is_empty() {
        c.last_data = Instant::now();
        deliver(sh, gst::Buffer::from_mut_slice(data));
    }
    broken
}

fn hang_up(sh: &Shared, eid: c_int, c: Conn) {
    {
        // First, so that no statistics call is made on it once closed.
        let mut st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.peer.as_deref() == Some(c.peer.as_str()) {
            st.peer = None;
        }
        if st.caller == Some(c.sock) {
            st.caller = None;
        }
    }
    // SAFETY: the connection is owned here and closed once.
    unsafe {
        ffi::srt_epoll_remove_usock(eid, c.sock);
        ffi::srt_close(c.sock);
    }
    tell(sh, CallerEvent::Gone { peer: c.peer });
}
