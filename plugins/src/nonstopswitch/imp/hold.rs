//! `sync-inputs`: a buffer of an input off air is held until the output
//! has sent its next slot, as `input-selector`'s `sync-streams` holds the
//! buffers of its inactive pads.
//!
//! Why: a live source off air that runs free sleeps on the clock for each
//! of its frames (on 1.22's system clock a timed futex wait, then a
//! `clock_nanosleep` for the last half millisecond). Held until the next
//! slot, it is a little late for its next frame, whose clock wait then
//! returns at once: one wakeup per frame (from the thread that sent the
//! slot) instead of two sleeps. At 1000 frames/s that was a third of the
//! switch's CPU against input-selector (docs/performance.md).
//!
//! What it must not cost:
//! - health: the arrival is recorded before the hold, and a hold lasts at
//!   most one slot and a grace, far below `clean-gap` and `timeout`;
//! - an input faster than the output is never held (held once a slot, it
//!   would fall behind for good);
//! - only on the system clock, as the fast path: on a `TestClock` the time
//!   a held test thread waits for would never come.

use std::time::{Duration, Instant};

use gst::ClockTime;

use super::{grace_of, NonstopSwitch, Settings, State};

impl NonstopSwitch {
    /// The output's slot count this buffer of input `index` waits past, or
    /// `None` if it goes on at once. `duration` is the buffer's.
    pub(super) fn hold_ticket(
        st: &State,
        settings: &Settings,
        index: u32,
        duration: Option<ClockTime>,
        slot: ClockTime,
    ) -> Option<u64> {
        let free = !settings.sync_inputs
            || st.pacer.is_none()
            || !st.playing
            || st.output_stopped
            || st.active == Some(index)
            || duration.is_some_and(|d| d < slot);
        if free {
            return None;
        }
        st.timeline.as_ref().map(|tl| tl.next)
    }

    /// Waits until the output has sent slot `ticket` (or input `index` went
    /// on air, is flushing, or the element stopped), at most one slot and
    /// a grace.
    pub(super) fn hold(&self, index: u32, ticket: u64, slot: ClockTime) {
        let most = Duration::from_nanos((slot + grace_of(slot)).nseconds());
        let deadline = Instant::now() + most;
        let mut st = self.lock_state();
        loop {
            let sent = st.timeline.as_ref().is_none_or(|tl| tl.next > ticket);
            let gone = st
                .inputs
                .iter()
                .find(|i| i.index == index)
                .is_none_or(|i| i.flushing);
            if sent || gone || st.active == Some(index) || !st.playing || st.output_stopped {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            st.holders += 1;
            st = self
                .hold
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            st.holders -= 1;
        }
    }

    /// A slot went out: held inputs may go on. Called with `state` held;
    /// a notify costs a system call, so only when someone waits.
    pub(super) fn release_held(&self, st: &State) {
        if st.holders > 0 {
            self.hold.notify_all();
        }
    }
}
