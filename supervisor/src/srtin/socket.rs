//! libsrt calls wrapped: the listening socket opened with its options, a
//! caller's stream id and address, libsrt's last error.

use std::ffi::{c_int, c_void, CStr};
use std::net::SocketAddr;
use std::sync::OnceLock;

use super::ffi;
use super::options::Options;

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

pub(super) fn streamid_of(s: ffi::SrtSocket) -> String {
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

pub(super) fn peer_of(ss: &libc::sockaddr_storage) -> String {
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
pub(super) fn listen(o: &Options) -> anyhow::Result<ffi::SrtSocket> {
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
