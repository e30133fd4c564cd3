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

/// `SRT_TRACEBSTATS` (`struct CBytePerfMon`) of libsrt 1.5, field for
/// field (libsrt only ever appends to it): what `srt_bistats` fills in.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceBStats {
    // Totals since the connection began.
    pub ms_timestamp: i64,
    pub pkt_sent_total: i64,
    pub pkt_recv_total: i64,
    pub pkt_snd_loss_total: c_int,
    pub pkt_rcv_loss_total: c_int,
    pub pkt_retrans_total: c_int,
    pub pkt_sent_ack_total: c_int,
    pub pkt_recv_ack_total: c_int,
    pub pkt_sent_nak_total: c_int,
    pub pkt_recv_nak_total: c_int,
    pub us_snd_duration_total: i64,
    pub pkt_snd_drop_total: c_int,
    pub pkt_rcv_drop_total: c_int,
    pub pkt_rcv_undecrypt_total: c_int,
    pub byte_sent_total: u64,
    pub byte_recv_total: u64,
    pub byte_rcv_loss_total: u64,
    pub byte_retrans_total: u64,
    pub byte_snd_drop_total: u64,
    pub byte_rcv_drop_total: u64,
    pub byte_rcv_undecrypt_total: u64,
    // Since the last clearing call.
    pub pkt_sent: i64,
    pub pkt_recv: i64,
    pub pkt_snd_loss: c_int,
    pub pkt_rcv_loss: c_int,
    pub pkt_retrans: c_int,
    pub pkt_rcv_retrans: c_int,
    pub pkt_sent_ack: c_int,
    pub pkt_recv_ack: c_int,
    pub pkt_sent_nak: c_int,
    pub pkt_recv_nak: c_int,
    pub mbps_send_rate: f64,
    pub mbps_recv_rate: f64,
    pub us_snd_duration: i64,
    pub pkt_reorder_distance: c_int,
    pub pkt_rcv_avg_belated_time: f64,
    pub pkt_rcv_belated: i64,
    pub pkt_snd_drop: c_int,
    pub pkt_rcv_drop: c_int,
    pub pkt_rcv_undecrypt: c_int,
    pub byte_sent: u64,
    pub byte_recv: u64,
    pub byte_rcv_loss: u64,
    pub byte_retrans: u64,
    pub byte_snd_drop: u64,
    pub byte_rcv_drop: u64,
    pub byte_rcv_undecrypt: u64,
    // Instant.
    pub us_pkt_snd_period: f64,
    pub pkt_flow_window: c_int,
    pub pkt_congestion_window: c_int,
    pub pkt_flight_size: c_int,
    pub ms_rtt: f64,
    pub mbps_bandwidth: f64,
    pub byte_avail_snd_buf: c_int,
    pub byte_avail_rcv_buf: c_int,
    pub mbps_max_bw: f64,
    pub byte_mss: c_int,
    pub pkt_snd_buf: c_int,
    pub byte_snd_buf: c_int,
    pub ms_snd_buf: c_int,
    pub ms_snd_tsbpd_delay: c_int,
    pub pkt_rcv_buf: c_int,
    pub byte_rcv_buf: c_int,
    pub ms_rcv_buf: c_int,
    pub ms_rcv_tsbpd_delay: c_int,
    pub pkt_snd_filter_extra_total: c_int,
    pub pkt_rcv_filter_extra_total: c_int,
    pub pkt_rcv_filter_supply_total: c_int,
    pub pkt_rcv_filter_loss_total: c_int,
    pub pkt_snd_filter_extra: c_int,
    pub pkt_rcv_filter_extra: c_int,
    pub pkt_rcv_filter_supply: c_int,
    pub pkt_rcv_filter_loss: c_int,
    pub pkt_reorder_tolerance: c_int,
    // 1.5.0.
    pub pkt_sent_unique_total: i64,
    pub pkt_recv_unique_total: i64,
    pub byte_sent_unique_total: u64,
    pub byte_recv_unique_total: u64,
    pub pkt_sent_unique: i64,
    pub pkt_recv_unique: i64,
    pub byte_sent_unique: u64,
    pub byte_recv_unique: u64,
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
    pub fn srt_bistats(
        u: SrtSocket,
        perf: *mut TraceBStats,
        clear: c_int,
        instantaneous: c_int,
    ) -> c_int;
}
