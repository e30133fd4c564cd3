//! libsrt 1.5's C API, the part srtin uses.
#![allow(non_camel_case_types)]

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
    pub fn srt_setsockflag(u: SrtSocket, opt: c_int, optval: *const c_void, optlen: c_int)
        -> c_int;
    pub fn srt_getsockflag(
        u: SrtSocket,
        opt: c_int,
        optval: *mut c_void,
        optlen: *mut c_int,
    ) -> c_int;
    pub fn srt_bind(u: SrtSocket, name: *const libc::sockaddr, namelen: c_int) -> c_int;
    pub fn srt_listen(u: SrtSocket, backlog: c_int) -> c_int;
    pub fn srt_accept(u: SrtSocket, addr: *mut libc::sockaddr, addrlen: *mut c_int) -> SrtSocket;
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
