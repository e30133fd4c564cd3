//! Who sends the next output slot, and when.
//!
//! Slot `n` of the output grid is owed from its start `t_n`, but not before
//! the push of slot `n - 1` returned: a synchronising sink paces the output
//! by blocking that push, and the next slot follows as soon as it returns.
//!
//! - Fast path: when the input on air delivers, its own streaming thread
//!   builds and pushes the slots that are owed, as far as what it delivered
//!   covers (its queue's credit, so the jitter allowance stays queued). No
//!   other thread wakes; behind a synchronising sink that thread then waits
//!   in the sink, as it would behind `input-selector`.
//! - Paced path: the src task sends a slot nobody sent within a short grace
//!   after it was owed (at once if a frame is waiting): the input on air is
//!   late or stalled, so the slot is a repeat, black, the first slot or the
//!   first after a switch. On the system clock the task sleeps on a
//!   [`Pacer`](super::super::pacer::Pacer) that the fast path moves without
//!   waking it. On any other clock the fast path is off and the task waits
//!   on a clock id per slot: the `TestClock` element tests drive that path.
//!
//! Whichever thread sends a slot holds `push` from before the slot is built
//! until its push returned, so slots leave one by one, in order. Lock order:
//! `push`, then `state`, then the group's lock; the fast path only *tries*
//! `push` while it holds `state` (that never blocks), so the thread that
//! queued a frame builds its slot under the same lock.
//!
//! Moving the alarm is a system call (a timer reprogramming, which is a VM
//! exit on a virtual machine), so the fast path moves it once per slot,
//! before its push, to where the next slot will be owed if this push comes
//! back as late as the last one; after the push it is left alone unless it
//! is more than a grace off.

use std::sync::{MutexGuard, TryLockError};

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;

use super::super::media::Format;
use super::super::NonstopSwitchSinkPad;
use super::{NonstopSwitch, Settings, State, CAT};

/// How long an owed slot waits for the input on air before the src task
/// sends it: ample for a thread just released by the sink to bring its next
/// frame, small next to a slot (the output's latency covers a whole slot).
pub(super) fn grace(slot: ClockTime) -> ClockTime {
    (slot / 4).min(ClockTime::MSECOND)
}

impl NonstopSwitch {
    fn lock_push(&self) -> MutexGuard<'_, ()> {
        self.push.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot to send next: its start, and when it is owed.
    fn owed(st: &State) -> Option<(ClockTime, ClockTime)> {
        let tl = st.timeline.as_ref()?;
        let t = tl.grid.slot(tl.next);
        Some((t, t.max(st.pushed_at)))
    }

    /// True if the input on air has queued a slot's worth it delivered
    /// since its slots were last taken.
    fn on_air_credit(st: &State) -> bool {
        let Some(slot) = st.format.as_ref().map(Format::slot_duration) else {
            return false;
        };
        st.active
            .and_then(|a| st.inputs.iter().find(|i| i.index == a))
            .and_then(|i| i.queue.as_ref())
            .is_some_and(|q| q.credit() >= slot && q.level() >= slot)
    }

    /// When the src task sends the owed slot if nobody else did.
    fn deadline(st: &State) -> Option<ClockTime> {
        let (_, owed) = Self::owed(st)?;
        if Self::on_air_credit(st) {
            return Some(owed);
        }
        let slot = st.format.as_ref()?.slot_duration();
        Some(owed + grace(slot))
    }

    /// Sets the alarm to ring at running time `at` unless it already does.
    fn set_alarm(st: &mut State, at: ClockTime) {
        let Some(pacer) = st.pacer.as_ref() else {
            return;
        };
        if st.armed != Some(at) {
            pacer.arm(st.base + at);
            st.armed = Some(at);
        }
    }

    /// Rings the src task's alarm now: it has to look at the state.
    pub(super) fn wake_task(st: &mut State) {
        if let Some(pacer) = st.pacer.as_ref() {
            pacer.wake();
        }
        st.armed = None;
    }

    /// Sets the src task's alarm for the slot owed next, or rings it at
    /// once when the task has to look at the state. An alarm already set
    /// up to `slack` past the deadline is left as it is: the src task then
    /// steps in that much later, still well within the slot the output's
    /// latency covers, and the pushing thread saves a system call. Called
    /// with `state` held, so a ring for a flush or a state change is never
    /// overwritten.
    fn arm_pacer(st: &mut State, slack: ClockTime) {
        if st.pacer.is_none() {
            return;
        }
        match Self::deadline(st) {
            Some(at) if st.playing && !st.flushing && !st.output_stopped => {
                if !st.armed.is_some_and(|a| a >= at && a <= at + slack) {
                    Self::set_alarm(st, at);
                }
            }
            _ => Self::wake_task(st),
        }
    }

    /// Before the fast path pushes slot `t` (the timeline already past
    /// it): sets the alarm for the next slot as if the push returns as
    /// late after its slot as the last one did, plus half a grace. A
    /// synchronising sink holds each push about as long as the one before,
    /// so `pushed` then finds the alarm within its slack and leaves it:
    /// one system call per slot, and no alarm ringing while the push waits
    /// in the sink.
    fn arm_ahead(st: &mut State, now: ClockTime, t: ClockTime) {
        let Some(slot) = st.format.as_ref().map(Format::slot_duration) else {
            return;
        };
        let pushed_at = st.pushed_at;
        st.pushed_at = pushed_at.max(now).max(t + st.push_lag);
        if let Some(at) = Self::deadline(st) {
            Self::set_alarm(st, at + grace(slot) / 2);
        }
        st.pushed_at = pushed_at;
    }

    fn may_push_from(st: &State, pad: &NonstopSwitchSinkPad) -> bool {
        st.pacer.is_some()
            && st.playing
            && !st.flushing
            && !st.output_stopped
            && !st.eos_sent
            && !st.eos_requested
            && st.join.is_none()
            && st.timeline.is_some()
            && st
                .active
                .and_then(|a| st.inputs.iter().find(|i| i.index == a))
                .is_some_and(|i| &i.pad == pad)
            && Self::on_air_credit(st)
    }

    /// The fast path, on `pad`'s streaming thread once its buffer is queued
    /// (`st` still held from that): sends the owed slots its delivery
    /// covers. `announce` posts what the buffer itself changed; it runs
    /// once `state` is released, before any slot is pushed.
    pub(super) fn chain_output<'a>(
        &'a self,
        pad: &NonstopSwitchSinkPad,
        mut st: MutexGuard<'a, State>,
        settings: &Settings,
        announce: impl FnOnce(),
    ) {
        let mut announce = Some(announce);
        let mut announced = || {
            if let Some(f) = announce.take() {
                f();
            }
        };
        if !Self::may_push_from(&st, pad) {
            drop(st);
            announced();
            return;
        }
        // Lock order is `push` before `state`; trying `push` with `state`
        // held never blocks, so it is allowed. If the src task is sending
        // a slot, wait for it: the next one is owed as soon as that push
        // returns, and this thread has its frame.
        let _push = match self.push.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                drop(st);
                announced();
                let guard = self.lock_push();
                st = self.lock_state();
                guard
            }
        };
        loop {
            if !Self::may_push_from(&st, pad) {
                break;
            }
            let (Some(now), Some((t, owed))) = (self.now(&st), Self::owed(&st)) else {
                break;
            };
            if now < owed {
                // Early: the frame waits in the queue for its slot.
                break;
            }
            let out = self.send_slot(&mut st, settings, t);
            Self::arm_ahead(&mut st, now, t);
            drop(st);
            announced();
            let going = self.push_output(out, false);
            st = self.lock_state();
            self.pushed(&mut st, t, going);
        }
        drop(st);
        announced();
    }

    /// Builds slot `t` and moves the timeline past it.
    fn send_slot(
        &self,
        st: &mut State,
        settings: &Settings,
        t: ClockTime,
    ) -> super::output::Output {
        let out = self.produce(st, settings, t);
        if let Some(tl) = st.timeline.as_mut() {
            tl.next += 1;
        }
        self.release_held(st);
        out
    }

    /// The push of slot `t` returned: the next slot is owed from now.
    fn pushed(&self, st: &mut State, t: ClockTime, going: bool) {
        if let Some(now) = self.now(st) {
            st.pushed_at = st.pushed_at.max(now);
            st.push_lag = now.saturating_sub(t);
        }
        st.output_stopped |= !going;
        let slack = st
            .format
            .as_ref()
            .map_or(ClockTime::ZERO, |f| grace(f.slot_duration()));
        Self::arm_pacer(st, slack);
    }

    pub(super) fn src_loop(&self) {
        let settings = self.settings();
        let mut st = self.lock_state();
        loop {
            if st.flushing || !st.playing || st.eos_sent || st.output_stopped {
                drop(st);
                let _ = self.src_pad.pause_task();
                return;
            }
            if st.timeline.is_some() {
                break;
            }
            if st.eos_requested {
                // Asked to end before anything went out.
                st.eos_sent = true;
                drop(st);
                self.src_pad.push_event(gst::event::Eos::new());
                let _ = self.src_pad.pause_task();
                return;
            }
            if let Some(now) = self.now(&st) {
                if self.try_start(&mut st, &settings, now) {
                    break;
                }
            }
            st = self
                .cond
                .wait_timeout(st, std::time::Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if st.pacer.is_some() {
            self.alarm_iteration(st, &settings);
        } else {
            self.clock_iteration(st, &settings);
        }
    }

    /// Paced path on the system clock: sleeps until the slot owed next is
    /// late, and sends it if nobody did meanwhile.
    fn alarm_iteration(&self, mut st: MutexGuard<'_, State>, settings: &Settings) {
        let (Some(now), Some(deadline)) = (self.now(&st), Self::deadline(&st)) else {
            return;
        };
        if now < deadline {
            let pacer = st.pacer.clone().expect("pacer");
            Self::arm_pacer(&mut st, ClockTime::ZERO);
            drop(st);
            pacer.wait();
            // It rang (or was woken): it is set nowhere any more.
            self.lock_state().armed = None;
            return;
        }
        drop(st);

        let _push = self.lock_push();
        let mut st = self.lock_state();
        if st.flushing || !st.playing || st.output_stopped {
            return;
        }
        // The fast path may have sent it while this thread woke up.
        let (Some(now), Some(deadline), Some((t, _))) =
            (self.now(&st), Self::deadline(&st), Self::owed(&st))
        else {
            return;
        };
        if now < deadline {
            return;
        }
        gst::trace!(CAT, imp = self, "slot {t} sent by the src task at {now}");
        let out = self.send_slot(&mut st, settings, t);
        drop(st);
        let going = self.push_output(out, true);
        let mut st = self.lock_state();
        self.pushed(&mut st, t, going);
    }

    /// Paced path on any other clock: one clock wait per slot.
    fn clock_iteration(&self, mut st: MutexGuard<'_, State>, settings: &Settings) {
        let Some(clock) = st.clock.clone() else {
            drop(st);
            gst::element_imp_error!(
                self,
                gst::CoreError::Clock,
                ("nonstopswitch needs a pipeline clock to pace its output")
            );
            let _ = self.src_pad.pause_task();
            return;
        };
        let tl = st.timeline.as_ref().expect("timeline");
        let t = tl.grid.slot(tl.next);
        let id = clock.new_single_shot_id(st.base + t);
        st.clock_id = Some(id.clone());
        drop(st);

        let (res, jitter) = id.wait();
        gst::trace!(CAT, imp = self, "slot {t}: {res:?} jitter {jitter}");

        let _push = self.lock_push();
        let mut st = self.lock_state();
        st.clock_id = None;
        if st.flushing || !st.playing {
            drop(st);
            let _ = self.src_pad.pause_task();
            return;
        }
        if res == Err(gst::ClockError::Unscheduled) {
            return;
        }
        let out = self.send_slot(&mut st, settings, t);
        drop(st);
        self.push_output(out, true);
    }
}
