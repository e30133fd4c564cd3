//! The src task's alarm when the pipeline runs on the system clock.
//!
//! While the input on air delivers, its own streaming thread pushes every
//! output slot (see `imp.rs`); the src task only has to step in when a slot
//! is late. A `GstClockID` cannot be moved without waking its waiter, so
//! keeping one armed for "the next slot, if nobody else sends it" would cost
//! a wakeup per frame. A Linux `timerfd` can: the pushing thread moves the
//! deadline with one system call, and the task blocked in `read()` sleeps on
//! until a deadline actually passes.
//!
//! Only a `GstSystemClock` of type monotonic or realtime maps onto a kernel
//! clock. Any other clock (a `TestClock`, an audio device's clock, a network
//! clock) keeps the classic pacing: one clock wait per slot.

use gst::prelude::*;
use gst::ClockTime;

/// A one-shot alarm on the kernel clock behind the pipeline's system clock.
#[derive(Debug)]
pub struct Pacer {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    clock: gst::Clock,
}

impl Pacer {
    /// An alarm for `clock`, or `None` if it is not a system clock this
    /// platform can set a timer on.
    #[cfg(target_os = "linux")]
    pub fn for_clock(clock: &gst::Clock) -> Option<Pacer> {
        use std::os::fd::FromRawFd;
        let sys = clock.downcast_ref::<gst::SystemClock>()?;
        let id = match sys.property::<gst::ClockType>("clock-type") {
            gst::ClockType::Monotonic => libc::CLOCK_MONOTONIC,
            gst::ClockType::Realtime => libc::CLOCK_REALTIME,
            _ => return None,
        };
        // SAFETY: plain system call; the descriptor is owned from here on.
        let fd = unsafe { libc::timerfd_create(id, libc::TFD_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        Some(Pacer {
            // SAFETY: `fd` is a fresh descriptor nobody else owns.
            fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
            clock: clock.clone(),
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn for_clock(_clock: &gst::Clock) -> Option<Pacer> {
        None
    }

    /// Rings at clock time `at` (already past: at once). Replaces any
    /// earlier setting without waking the waiter.
    pub fn arm(&self, at: ClockTime) {
        // The system clock's own time is the kernel clock's; unadjust in
        // case someone calibrated it.
        let t = self.clock.unadjust_unlocked(at).nseconds().max(1);
        self.set(t);
    }

    /// Rings now: the waiter must look at the state again.
    pub fn wake(&self) {
        self.set(1);
    }

    #[cfg(target_os = "linux")]
    fn set(&self, ns: u64) {
        use std::os::fd::AsRawFd;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid descriptor and pointers for the call's duration.
        unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn set(&self, _ns: u64) {}

    /// Blocks until the alarm rings.
    #[cfg(target_os = "linux")]
    pub fn wait(&self) {
        use std::os::fd::AsRawFd;
        let mut expirations = 0u64;
        loop {
            // SAFETY: reads 8 bytes into a u64 we own.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut expirations as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return;
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn wait(&self) {}
}
