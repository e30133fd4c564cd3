//! SRT listener inputs, held by nonstopd itself rather than by `srtsrc`.
//!
//! `srtsrc mode=listener` ties the listening socket to the input pipeline.
//! When a caller dies without a goodbye (kill -9, a cable), libsrt keeps the
//! dead connection for its 5 s peer-idle timeout; rebuilding the pipeline
//! then fails ("Another socket is already listening on the same port") and
//! a caller that comes back meanwhile is not accepted. So nonstopd opens
//! the listening socket once per input, keeps it across pipeline rebuilds
//! and reloads, and feeds what the caller sends into the input pipeline's
//! `appsrc`. One caller at a time: a new caller replaces a current one
//! that has gone silent (a restarted sender), and is refused while the
//! current one still sends (a second sender is a mistake, not a
//! failover).
//!
//! Lock order: `LISTENERS`, then a listener's `state`.

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst_app::AppSrc;
use tracing::info;
use url::Url;

/// libsrt 1.5's C API, the part this module uses.
#[allow(non_camel_case_types)]
mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    pub type SrtSocket = c_int;
    pub const SRT_INVALID_SOCK: SrtSocket = -1;
    pub const SRT_ERROR: c_int = -1;

    // SRT_SOCKOPT
    pub const SRTO_RCVSYN: c_int = 2;
    pub const SRTO_LATENCY: c_int = 23;
    pub const SRTO_PASSPHRASE: c_int = 26;
    pub const SRTO_PBKEYLEN: c_int = 27;
    pub const SRTO_STREAMID: c_int = 46;

    // SRT_SOCKSTATUS
    pub const SRTS_BROKEN: c_int = 6;

    // SRT_EPOLL_OPT
    pub const SRT_EPOLL_IN: c_int = 0x1;
    pub const SRT_EPOLL_ERR: c_int = 0x8;

    /// SRT_EASYNCRCV: nothing to read on a non-blocking socket.
    pub const SRT_EASYNCRCV: c_int = 6002;

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    pub struct EpollEvent {
        pub fd: SrtSocket,
        pub events: c_int,
    }

    // Debian 12 ships the library as libsrt-gnutls.so.1.5 (libsrt1.5-gnutls,
    // which gstreamer1.0-plugins-bad depends on); the unversioned name is
    // only in the -dev package, which a box running nonstopd lacks.
    #[link(name = "libsrt-gnutls.so.1.5", kind = "dylib", modifiers = "+verbatim")]
    extern "C" {
        pub fn srt_startup() -> c_int;
        pub fn srt_create_socket() -> SrtSocket;
        pub fn srt_setsockflag(
            u: SrtSocket,
            opt: c_int,
            optval: *const c_void,
            optlen: c_int,
        ) -> c_int;
        pub fn srt_getsockflag(
            u: SrtSocket,
            opt: c_int,
            optval: *mut c_void,
            optlen: *mut c_int,
        ) -> c_int;
        pub fn srt_bind(u: SrtSocket, name: *const libc::sockaddr, namelen: c_int) -> c_int;
        pub fn srt_listen(u: SrtSocket, backlog: c_int) -> c_int;
        pub fn srt_accept(
            u: SrtSocket,
            addr: *mut libc::sockaddr,
            addrlen: *mut c_int,
        ) -> SrtSocket;
        pub fn srt_recvmsg(u: SrtSocket, buf: *mut c_char, len: c_int) -> c_int;
        pub fn srt_close(u: SrtSocket) -> c_int;
        pub fn srt_getlasterror(errno_loc: *mut c_int) -> c_int;
        pub fn srt_getlasterror_str() -> *const c_char;
        pub fn srt_getsockstate(u: SrtSocket) -> c_int;
        pub fn srt_epoll_create() -> c_int;
        pub fn srt_epoll_add_usock(eid: c_int, u: SrtSocket, events: *const c_int) -> c_int;
        pub fn srt_epoll_remove_usock(eid: c_int, u: SrtSocket) -> c_int;
        pub fn srt_epoll_uwait(
            eid: c_int,
            fds: *mut EpollEvent,
            fds_size: c_int,
            ms_timeout: i64,
        ) -> c_int;
        pub fn srt_epoll_release(eid: c_int) -> c_int;
    }
}

/// A caller silent for this long is taken for gone when another calls: a
/// live TS over SRT carries packets every few milliseconds.
const SILENT_CALLER: Duration = Duration::from_millis(200);
/// A listener no input holds (its channel stopped or is being rebuilt by
/// a reload) stays open this long, connected caller included, for the
/// input that takes it back.
const PARKED: Duration = Duration::from_secs(10);
/// What is kept of a caller's stream while no input pipeline takes it
/// (between a rebuild's teardown and start): about 3 s at 10 Mb/s.
const BACKLOG_BYTES: usize = 4 << 20;
/// How often the listener's thread looks at its own state.
const TICK_MS: i64 = 100;
/// Larger than any SRT payload (1456 bytes at most).
const PACKET: usize = 1500;

/// The SRT options of a listener input's URI that libsrt applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub addr: SocketAddr,
    pub latency_ms: Option<i32>,
    pub passphrase: Option<String>,
    pub pbkeylen: Option<i32>,
    /// Callers must present this stream id.
    pub streamid: Option<String>,
}

impl Options {
    /// From an input URI already checked by [`crate::uri::input_kind`].
    pub fn from_uri(uri: &str) -> anyhow::Result<Options> {
        let u = Url::parse(uri)?;
        let host = u.host_str().unwrap_or("0.0.0.0").trim_matches(['[', ']']);
        let port = u
            .port()
            .ok_or_else(|| anyhow::anyhow!("srt listener without a port"))?;
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow::anyhow!("srt listener host {host} has no address"))?;
        let mut o = Options {
            addr,
            latency_ms: None,
            passphrase: None,
            pbkeylen: None,
            streamid: None,
        };
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "latency" => o.latency_ms = v.parse().ok(),
                "passphrase" => o.passphrase = Some(v.into_owned()),
                "pbkeylen" => o.pbkeylen = v.parse().ok().filter(|n| *n != 0),
                "streamid" => o.streamid = Some(v.into_owned()),
                _ => {}
            }
        }
        Ok(o)
    }
}

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

type Notify = Arc<dyn Fn(CallerEvent) + Send + Sync>;

struct Sink {
    appsrc: AppSrc,
    /// Whether a caller's data has gone into it.
    fed: bool,
    notify: Notify,
}

struct Conn {
    sock: ffi::SrtSocket,
    peer: String,
    last_data: Instant,
}

#[derive(Default)]
struct State {
    /// Whether an input holds it (a [`Listener`] exists).
    held: bool,
    released_at: Option<Instant>,
    sink: Option<Sink>,
    /// What arrived while no sink took it.
    backlog: VecDeque<gst::Buffer>,
    backlog_bytes: usize,
    /// Peer of the connected caller, for status.
    peer: Option<String>,
    /// What happened while no sink was attached (between a pipeline's
    /// teardown and the next one's start): told to the next sink.
    untold: Vec<CallerEvent>,
}

struct Shared {
    opts: Options,
    /// The listening socket; the thread closes it when it ends.
    sock: ffi::SrtSocket,
    state: Mutex<State>,
    stop: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Every listener of the process, by address: at most one socket per port.
fn listeners() -> &'static Mutex<HashMap<SocketAddr, Arc<Shared>>> {
    static L: OnceLock<Mutex<HashMap<SocketAddr, Arc<Shared>>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

fn last_error() -> String {
    // SAFETY: libsrt returns a thread-local, NUL-terminated message.
    unsafe {
        let p = ffi::srt_getlasterror_str();
        if p.is_null() {
            "unknown SRT error".into()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn set_int(s: ffi::SrtSocket, opt: c_int, v: i32) -> bool {
    // SAFETY: an int option with its size.
    unsafe { ffi::srt_setsockflag(s, opt, (&v as *const i32).cast::<c_void>(), 4) == 0 }
}

fn set_str(s: ffi::SrtSocket, opt: c_int, v: &str) -> bool {
    // SAFETY: libsrt copies `len` bytes; no NUL needed.
    unsafe { ffi::srt_setsockflag(s, opt, v.as_ptr().cast::<c_void>(), v.len() as c_int) == 0 }
}

fn streamid_of(s: ffi::SrtSocket) -> String {
    let mut buf = [0u8; 513];
    let mut len: c_int = buf.len() as c_int;
    // SAFETY: buf is `len` bytes; libsrt writes at most that and sets len.
    let ok = unsafe {
        ffi::srt_getsockflag(
            s,
            ffi::SRTO_STREAMID,
            buf.as_mut_ptr().cast::<c_void>(),
            &mut len,
        ) == 0
    };
    if !ok {
        return String::new();
    }
    let n = (len.max(0) as usize).min(buf.len());
    String::from_utf8_lossy(&buf[..n])
        .trim_end_matches('\0')
        .to_owned()
}

fn sockaddr_of(addr: &SocketAddr) -> (libc::sockaddr_storage, c_int) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as c_int)
}

fn peer_of(ss: &libc::sockaddr_storage) -> String {
    match ss.ss_family as c_int {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            format!("{ip}:{}", u16::from_be(a.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            format!("[{ip}]:{}", u16::from_be(a.sin6_port))
        }
        _ => "?".into(),
    }
}

/// Opens the listening socket with the options every accepted connection
/// inherits.
fn listen(o: &Options) -> anyhow::Result<ffi::SrtSocket> {
    static STARTED: OnceLock<()> = OnceLock::new();
    // SAFETY: srt_startup is reference-counted and thread-safe; once is
    // enough for the process (srtsrc/srtsink call it too).
    STARTED.get_or_init(|| unsafe {
        ffi::srt_startup();
    });
    // SAFETY: plain libsrt calls on a socket this function owns.
    unsafe {
        let s = ffi::srt_create_socket();
        if s == ffi::SRT_INVALID_SOCK {
            anyhow::bail!("cannot create an SRT socket: {}", last_error());
        }
        let fail = |what: &str| {
            let e = format!("srt listener on {}: {what}: {}", o.addr, last_error());
            ffi::srt_close(s);
            Err(anyhow::anyhow!(e))
        };
        // Non-blocking accept and receive, driven by one epoll.
        if !set_int(s, ffi::SRTO_RCVSYN, 0) {
            return fail("cannot make the socket non-blocking");
        }
        if let Some(ms) = o.latency_ms {
            if !set_int(s, ffi::SRTO_LATENCY, ms) {
                return fail("latency refused");
            }
        }
        if let Some(p) = &o.passphrase {
            if !set_str(s, ffi::SRTO_PASSPHRASE, p) {
                return fail("passphrase refused");
            }
        }
        if let Some(n) = o.pbkeylen {
            if !set_int(s, ffi::SRTO_PBKEYLEN, n) {
                return fail("pbkeylen refused");
            }
        }
        let (ss, len) = sockaddr_of(&o.addr);
        if ffi::srt_bind(s, (&ss as *const libc::sockaddr_storage).cast(), len) != 0 {
            let in_use = std::net::UdpSocket::bind(o.addr)
                .err()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse);
            let what = if in_use {
                format!(
                    "cannot bind ({} is in use: another socket holds that port)",
                    o.addr
                )
            } else {
                "cannot bind".to_owned()
            };
            return fail(&what);
        }
        if ffi::srt_listen(s, 4) != 0 {
            return fail("cannot listen");
        }
        Ok(s)
    }
}

/// Closes every listener, held or parked, and waits for their threads:
/// at exit, before libsrt's static teardown runs.
pub fn close_all() {
    let all: Vec<Arc<Shared>> = {
        let mut all = listeners().lock().unwrap_or_else(|e| e.into_inner());
        all.drain().map(|(_, s)| s).collect()
    };
    for sh in all {
        sh.stop.store(true, Ordering::Release);
        let t = sh.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

/// An input's hold on its listener. Dropping it parks the listener (see
/// [`PARKED`]); the next [`Listener::open`] of the same address with the
/// same options takes it back, connected caller and all.
pub struct Listener {
    shared: Arc<Shared>,
}

impl Listener {
    /// The listener for this address: the parked one if its options match,
    /// else a new socket.
    pub fn open(opts: Options) -> anyhow::Result<Listener> {
        let mut all = listeners().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = all.get(&opts.addr).cloned() {
            let mut st = old.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.held {
                anyhow::bail!(
                    "srt listener on {}: another input of this nonstopd listens there",
                    opts.addr
                );
            }
            if old.opts == opts && !old.stop.load(Ordering::Acquire) {
                st.held = true;
                st.released_at = None;
                drop(st);
                return Ok(Listener { shared: old });
            }
            // Other options: the old socket is closed first, and waited
            // for (its thread closes it), so the new one can bind.
            drop(st);
            old.stop.store(true, Ordering::Release);
            all.remove(&opts.addr);
            drop(all);
            let t = old.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(t) = t {
                let _ = t.join();
            }
            all = listeners().lock().unwrap_or_else(|e| e.into_inner());
        }
        let sock = listen(&opts)?;
        let shared = Arc::new(Shared {
            opts: opts.clone(),
            sock,
            state: Mutex::new(State {
                held: true,
                ..State::default()
            }),
            stop: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let worker = shared.clone();
        let t = std::thread::Builder::new()
            .name(format!("srt-listen-{}", opts.addr.port()))
            .spawn(move || run(worker))?;
        *shared.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        info!(listener = %opts.addr, "srt listener open");
        all.insert(opts.addr, shared.clone());
        Ok(Listener { shared })
    }

    /// Feeds the connected caller's stream (and whatever arrived since the
    /// last sink went) into `appsrc`; `notify` hears of callers.
    pub fn attach(&self, appsrc: AppSrc, notify: Notify) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut fed = false;
        while let Some(b) = st.backlog.pop_front() {
            fed = true;
            let _ = appsrc.push_buffer(b);
        }
        st.backlog_bytes = 0;
        let untold = std::mem::take(&mut st.untold);
        st.sink = Some(Sink {
            appsrc,
            fed,
            notify: notify.clone(),
        });
        drop(st);
        for ev in untold {
            notify(ev);
        }
    }

    /// Stops feeding the current sink (its pipeline is being torn down):
    /// what arrives meanwhile waits in the backlog for the next one, so a
    /// caller's first packets (its first keyframe) are not lost to a dying
    /// pipeline.
    pub fn detach(&self) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.sink = None;
    }

    /// The caller connected now, if any.
    pub fn peer(&self) -> Option<String> {
        let st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.peer.clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.held = false;
        st.sink = None;
        st.released_at = Some(Instant::now());
    }
}

/// The listener's thread: accepts callers and moves their packets.
fn run(sh: Arc<Shared>) {
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

/// Events kept for the next sink, at most (a caller hammering the port
/// while no pipeline is up must not grow it).
const UNTOLD: usize = 16;

fn tell(sh: &Shared, ev: CallerEvent) {
    let st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
    let notify = st.sink.as_ref().map(|s| s.notify.clone());
    tell_or_keep(st, notify, ev);
}

/// Tells `notify` (out of the lock), or keeps the event for the next sink.
fn tell_or_keep(mut st: std::sync::MutexGuard<'_, State>, notify: Option<Notify>, ev: CallerEvent) {
    match notify {
        Some(f) => {
            drop(st);
            f(ev);
        }
        None if st.untold.len() < UNTOLD => st.untold.push(ev),
        None => {}
    }
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

fn deliver(sh: &Shared, b: gst::Buffer) {
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

fn hang_up(sh: &Shared, eid: c_int, c: Conn) {
    // SAFETY: the connection is owned here and closed once.
    unsafe {
        ffi::srt_epoll_remove_usock(eid, c.sock);
        ffi::srt_close(c.sock);
    }
    {
        let mut st = sh.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.peer.as_deref() == Some(c.peer.as_str()) {
            st.peer = None;
        }
    }
    tell(sh, CallerEvent::Gone { peer: c.peer });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_a_listener_uri() {
        let o = Options::from_uri(
            "srt://127.0.0.1:9000?mode=listener&latency=200&passphrase=topsecret1&pbkeylen=32&streamid=live%2Fa",
        )
        .unwrap();
        assert_eq!(o.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(o.latency_ms, Some(200));
        assert_eq!(o.passphrase.as_deref(), Some("topsecret1"));
        assert_eq!(o.pbkeylen, Some(32));
        assert_eq!(o.streamid.as_deref(), Some("live/a"));
        let bare = Options::from_uri("srt://0.0.0.0:9001?mode=listener&pbkeylen=0").unwrap();
        assert_eq!(bare.pbkeylen, None);
        assert_eq!(bare.passphrase, None);
    }

    #[test]
    fn one_socket_per_port_and_a_parked_listener_is_taken_back() {
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let uri = format!("srt://127.0.0.1:{port}?mode=listener");
        let a = Listener::open(Options::from_uri(&uri).unwrap()).unwrap();
        let first = a.shared.sock;
        let again = Listener::open(Options::from_uri(&uri).unwrap());
        assert!(again
            .err()
            .is_some_and(|e| e.to_string().contains("another input of this nonstopd")));
        // The port is really held (by libsrt's UDP socket).
        assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_err());
        drop(a);
        let b = Listener::open(Options::from_uri(&uri).unwrap()).unwrap();
        assert_eq!(b.shared.sock, first, "the parked socket is reused");
        drop(b);
        // Other options: a new socket on the same port, opened at once.
        let other = format!("{uri}&latency=300");
        let c = Listener::open(Options::from_uri(&other).unwrap());
        match c {
            Ok(c) => assert_ne!(c.shared.sock, first),
            Err(e) => panic!("reopening with other options failed: {e:#}"),
        }
    }
}
