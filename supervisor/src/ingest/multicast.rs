//! A udp:// input's multicast options on udpsrc: the interface to join
//! on, and source-specific multicast (SSM), which udpsrc of GStreamer 1.22
//! lacks (its `multicast-source` came in 1.24): nonstopd opens the socket,
//! joins the group for the one source, and hands it to udpsrc.

use std::ffi::CString;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{anyhow, bail, Context};

use crate::uri::UdpInput;

/// The index of network interface `name`.
pub fn interface_index(name: &str) -> anyhow::Result<u32> {
    let c = CString::new(name).map_err(|_| anyhow!("bad interface name {name:?}"))?;
    // SAFETY: a NUL-terminated string we own, read only.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        bail!("multicast interface \"{name}\" does not exist on this machine");
    }
    Ok(index)
}

fn storage(addr: SocketAddr) -> libc::sockaddr_storage {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(&mut s as *mut _ as *mut libc::sockaddr_in, sin) };
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut s as *mut _ as *mut libc::sockaddr_in6, sin6) };
        }
    }
    s
}

fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> std::io::Result<()> {
    // SAFETY: `value` is a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A UDP socket bound to `group:port` that receives the group's packets
/// from `source` only (an SSM join, on `iface` or where the route says).
pub fn ssm_socket(
    group: IpAddr,
    port: u16,
    source: IpAddr,
    iface: Option<&str>,
) -> anyhow::Result<OwnedFd> {
    let ifindex = iface.map(interface_index).transpose()?.unwrap_or(0);
    let (family, level) = match group {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_IP),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_IPV6),
    };
    // SAFETY: plain socket(2); the fd is owned at once.
    let raw = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot open a UDP socket");
    }
    // SAFETY: a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one)?;
    // Bound to the group: only datagrams sent to it, not to the port at large.
    let local = storage(SocketAddr::new(group, port));
    let len = match group {
        IpAddr::V4(_) => std::mem::size_of::<libc::sockaddr_in>(),
        IpAddr::V6(_) => std::mem::size_of::<libc::sockaddr_in6>(),
    };
    // SAFETY: `local` holds a sockaddr of `len` bytes.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &local as *const _ as *const libc::sockaddr,
            len as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot bind to {}", SocketAddr::new(group, port)));
    }
    let req = libc::group_source_req {
        gsr_interface: ifindex,
        gsr_group: storage(SocketAddr::new(group, 0)),
        gsr_source: storage(SocketAddr::new(source, 0)),
    };
    setsockopt(&fd, level, libc::MCAST_JOIN_SOURCE_GROUP, &req).with_context(|| {
        format!(
            "cannot join multicast group {group} for source {source}{}",
            iface.map(|i| format!(" on {i}")).unwrap_or_default()
        )
    })?;
    // Linux otherwise delivers to this socket every group's packets for
    // the port that any socket of the machine joined.
    let zero: libc::c_int = 0;
    let all = match group {
        IpAddr::V4(_) => libc::IP_MULTICAST_ALL,
        IpAddr::V6(_) => libc::IPV6_MULTICAST_ALL,
    };
    let _ = setsockopt(&fd, level, all, &zero);
    Ok(fd)
}

/// What udpsrc gets for a udp:// input's options, prepared before the
/// pipeline is built so that a failure (no such interface, a join the
/// kernel refuses) fails the build with its reason.
pub struct UdpSetup {
    iface: Option<String>,
    /// The SSM socket, joined; udpsrc gets a GSocket on a copy of it.
    socket: Option<OwnedFd>,
}

impl UdpSetup {
    pub fn new(opts: &UdpInput) -> anyhow::Result<UdpSetup> {
        let (host, port) = (opts.host.as_str(), opts.port);
        if let Some(i) = &opts.iface {
            interface_index(i)?;
        }
        let socket = match opts.source {
            None => None,
            Some(source) => {
                let group: IpAddr = host
                    .parse()
                    .map_err(|_| anyhow!("multicast group {host} is not an IP address"))?;
                Some(ssm_socket(group, port, source, opts.iface.as_deref())?)
            }
        };
        Ok(UdpSetup {
            iface: opts.iface.clone(),
            socket,
        })
    }

    /// Applies it to the input's udpsrc (uridecodebin's `source-setup`).
    pub fn apply(&self, udpsrc: &gst::Element) {
        use gst::prelude::*;
        if let Some(fd) = &self.socket {
            // Our socket has joined (group, source); udpsrc must not
            // join the whole group on top, even if the socket is lost.
            udpsrc.set_property("auto-multicast", false);
            match fd
                .try_clone()
                .map_err(|e| e.to_string())
                .and_then(|fd| gio::Socket::from_fd(fd).map_err(|e| e.to_string()))
            {
                Ok(s) => udpsrc.set_property("socket", s),
                Err(e) => gst::element_error!(
                    udpsrc,
                    gst::ResourceError::OpenRead,
                    ["cannot hand the source-specific multicast socket to udpsrc: {e}"]
                ),
            }
        } else if let Some(i) = &self.iface {
            udpsrc.set_property("multicast-iface", i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};
    use std::time::Duration;

    #[test]
    fn an_unknown_interface_is_named() {
        assert_eq!(
            interface_index("nosuch0").unwrap_err().to_string(),
            "multicast interface \"nosuch0\" does not exist on this machine"
        );
        assert!(interface_index("lo").unwrap() > 0);
    }

    /// An SSM socket on loopback: joined for 127.0.0.1 as the source, it
    /// gets that sender's datagrams to the group and not those of another
    /// sender (127.0.0.2), sent first.
    /// (tests/udp_multicast.sh shows the same through nonstopd, across
    /// network namespaces.)
    #[test]
    fn an_ssm_socket_receives_its_source() {
        let group: IpAddr = "232.7.7.7".parse().unwrap();
        let port = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let fd = match ssm_socket(group, port, "127.0.0.1".parse().unwrap(), Some("lo")) {
            Ok(fd) => fd,
            // A box whose loopback has no multicast (a container without
            // it): nothing to show here.
            Err(e) if format!("{e:#}").contains("cannot join") => {
                eprintln!("skipped: {e:#}");
                return;
            }
            Err(e) => panic!("{e:#}"),
        };
        let rx = UdpSocket::from(fd);
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let lo = Ipv4Addr::LOCALHOST;
        socket_multicast_if(&tx, lo);
        tx.set_multicast_loop_v4(true).unwrap();
        let other = UdpSocket::bind("127.0.0.2:0").unwrap();
        socket_multicast_if(&other, lo);
        let mut buf = [0u8; 16];
        let mut got = None;
        for _ in 0..20 {
            // The other source's datagram is sent first: were it let
            // through, it would be the one read.
            other.send_to(b"other", (group, port)).unwrap();
            tx.send_to(b"hello", (group, port)).unwrap();
            if let Ok((n, from)) = rx.recv_from(&mut buf) {
                got = Some((buf[..n].to_vec(), from.ip()));
                break;
            }
        }
        assert_eq!(got, Some((b"hello".to_vec(), IpAddr::V4(lo))));
    }

    fn socket_multicast_if(s: &UdpSocket, addr: Ipv4Addr) {
        let a = libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.octets()),
        };
        // SAFETY: a live in_addr of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                &a as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::in_addr>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
    }
}
