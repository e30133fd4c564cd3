//! Fencing at the output path: see [`Fence`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gst::prelude::*;

/// Fencing: the monotonic instant (`CLOCK_BOOTTIME`, which also runs
/// while the host is suspended) until which this box may send a fleet
/// channel's output. The fleet moves it on every confirmed lease renewal;
/// every buffer an output lets out checks it, so a box that wakes from a
/// freeze after its lease expired sends nothing, before any control code
/// has run.
#[derive(Debug, Default)]
pub struct Fence {
    /// ns on [`boottime_ns`]; 0: closed.
    until: AtomicU64,
    /// A handover's end, ns on [`boottime_ns`] (0: none): renewals move
    /// `until`, never past this.
    end: AtomicU64,
    /// Buffers it stopped.
    pub dropped: AtomicU64,
}

impl Fence {
    pub fn open_until(&self, ns: u64) {
        self.until.store(ns, Ordering::Release);
    }

    pub fn close(&self) {
        self.until.store(0, Ordering::Release);
    }

    /// Closes for good at `ns` whatever the lease does: the old leader of
    /// a scheduled handover, which may send only the frames before the
    /// handover point (`0`: no such end).
    pub fn end_at(&self, ns: u64) {
        self.end.store(ns, Ordering::Release);
    }

    fn limit(&self) -> u64 {
        let until = self.until.load(Ordering::Acquire);
        match self.end.load(Ordering::Acquire) {
            0 => until,
            end => until.min(end),
        }
    }

    pub fn permits(&self) -> bool {
        boottime_ns() < self.limit()
    }

    /// How long it stays open (zero when closed).
    pub fn remaining(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.limit().saturating_sub(boottime_ns()))
    }

    /// Drops what `pad` sends unless the fence permits it.
    pub(super) fn guard(self: &Arc<Self>, pad: &gst::Pad) {
        let fence = self.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, _| {
                if fence.permits() {
                    gst::PadProbeReturn::Ok
                } else {
                    fence.dropped.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Drop
                }
            },
        );
    }
}

/// `CLOCK_BOOTTIME` in ns: monotonic, and counting through a suspend.
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec; CLOCK_BOOTTIME exists on
    // every Linux nonstop runs on.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
