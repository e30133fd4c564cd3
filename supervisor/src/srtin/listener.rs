//! An input's hold on its listener: opened (or a parked one taken back),
//! fed into the input pipeline's `appsrc`, parked when dropped; and every
//! listener closed at exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst_app::AppSrc;
use tracing::info;

use super::options::Options;
use super::shared::{listeners, Notify, Shared, Sink, State};
use super::socket::listen;
use super::worker::run;

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
/// [`PARKED`](super::worker::PARKED)); the next [`Listener::open`] of the
/// same address with the same options takes it back, connected caller and
/// all.
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

    /// The connected caller's link, as libsrt counts it (None without a
    /// caller).
    pub fn link_stats(&self) -> Option<crate::linkstats::LinkStats> {
        let st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let sock = st.caller?;
        let mut perf = super::ffi::TraceBStats::default();
        // SAFETY: the socket is live while the lock is held (the thread
        // clears `caller` under it before closing), perf is the struct
        // srt_bistats fills. Never cleared: the counts are since the
        // connection began; instantaneous: the rate is now's, not the
        // average since then.
        if unsafe { super::ffi::srt_bistats(sock, &mut perf, 0, 1) } == super::ffi::SRT_ERROR {
            return None;
        }
        Some(crate::linkstats::LinkStats {
            rtt_ms: perf.ms_rtt,
            bandwidth_mbps: perf.mbps_bandwidth,
            rate_mbps: perf.mbps_recv_rate,
            packets: perf.pkt_recv_total.max(0) as u64,
            lost: perf.pkt_rcv_loss_total.max(0) as u64,
            // What came again after a loss, and what came too late.
            retransmitted: perf.pkt_rcv_retrans.max(0) as u64,
            dropped: perf.pkt_rcv_drop_total.max(0) as u64,
            connections: 1,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

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
