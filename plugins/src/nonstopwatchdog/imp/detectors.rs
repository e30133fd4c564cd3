//! When each alarm is raised and cleared: a `Detector` per alarm (its
//! condition held for its timeout), fed by the stall timer on the pipeline
//! clock, which fires without a next buffer, and by the content of each
//! buffer (`analysis`: freeze, black, silence); each change is a
//! `nonstop-alarm` message.

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;

use super::super::analysis;
use super::{Media, NonstopWatchdog, Outcome, Settings, State, CAT, MSG_ALARM};

/// One timed condition: bad since `since`, raised once bad for the timeout.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Detector {
    since: Option<ClockTime>,
    pub(super) raised: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    Raised {
        since: ClockTime,
    },
    Cleared {
        since: ClockTime,
        duration: ClockTime,
    },
}

impl Detector {
    /// `bad_since`: when the condition began if it holds at `t`, else None.
    pub(super) fn update(
        &mut self,
        bad_since: Option<ClockTime>,
        t: ClockTime,
        timeout: ClockTime,
    ) -> Option<Change> {
        match bad_since {
            Some(begin) if !timeout.is_zero() => {
                let since = *self.since.get_or_insert(begin);
                if !self.raised && t.saturating_sub(since) >= timeout {
                    self.raised = true;
                    return Some(Change::Raised { since });
                }
                None
            }
            _ => {
                let since = self.since.take()?;
                if std::mem::take(&mut self.raised) {
                    return Some(Change::Cleared {
                        since,
                        duration: t.saturating_sub(since),
                    });
                }
                None
            }
        }
    }
}

impl NonstopWatchdog {
    /// The `nonstop-alarm` message of a change of alarm `kind`, with the
    /// value measured (stall: seconds without data; black, freeze: mean
    /// luma; silence: dBFS of the loudest channel; loud, quiet: short-term
    /// LUFS; true-peak: dBTP; jump: LU moved; no-captions: seconds without).
    pub(super) fn alarm_message(&self, kind: &str, change: Change, value: f64) -> gst::Message {
        let mut b = gst::Structure::builder(MSG_ALARM).field("kind", kind);
        b = match change {
            Change::Raised { since } => b.field("state", "raised").field("since", since.nseconds()),
            Change::Cleared { since, duration } => b
                .field("state", "cleared")
                .field("since", since.nseconds())
                .field("duration", duration.nseconds()),
        };
        let s = b.field("value", value).build();
        gst::info!(CAT, imp = self, "{s}");
        gst::message::Element::builder(s).src(&*self.obj()).build()
    }

    /// Arms the stall timer at `at` (running time).
    pub(super) fn arm_timer(&self, at: ClockTime) {
        let obj = self.obj();
        let (Some(clock), Some(base)) = (obj.clock(), obj.base_time()) else {
            return;
        };
        let id = clock.new_single_shot_id(base + at);
        let weak = obj.downgrade();
        if id
            .wait_async(move |_, _, _| {
                if let Some(obj) = weak.upgrade() {
                    obj.imp().on_timer();
                }
            })
            .is_ok()
        {
            if let Some((old, _)) = self.lock_state().timer.replace((id, at)) {
                old.unschedule();
            }
        }
    }

    fn on_timer(&self) {
        let settings = self.settings();
        let Some(now) = self.clock_running_time() else {
            return;
        };
        let mut st = self.lock_state();
        st.timer = None;
        if !st.playing || settings.stall_timeout.is_zero() {
            return;
        }
        let last = st.last_seen.unwrap_or(now);
        let mut out = Outcome::default();
        if let Some(c) = st.stall.update(Some(last), now, settings.stall_timeout) {
            let secs = now.saturating_sub(last).nseconds() as f64 / 1e9;
            out.messages.push(self.alarm_message("stall", c, secs));
            out.health = st.health_update(settings.fail_on);
        }
        let rearm = (!st.stall.raised).then_some(last + settings.stall_timeout);
        drop(st);
        self.deliver(out);
        if let Some(at) = rearm {
            self.arm_timer(at.max(now + ClockTime::MSECOND));
        }
    }

    pub(super) fn analyse(
        &self,
        buf: &gst::BufferRef,
        st: &mut State,
        s: &Settings,
        t: ClockTime,
        out: &mut Outcome,
    ) {
        match st.media.clone() {
            Media::Video(info) => {
                if !s.captions_timeout.is_zero() {
                    let missing = (!crate::captions::has(buf)).then_some(t);
                    if let Some(c) = st.captions.update(missing, t, s.captions_timeout) {
                        let secs = match c {
                            Change::Cleared { duration, .. } => duration.seconds_f64(),
                            Change::Raised { .. } => s.captions_timeout.seconds_f64(),
                        };
                        out.messages
                            .push(self.alarm_message("no-captions", c, secs));
                    }
                }
                if s.freeze_timeout.is_zero() && s.black_timeout.is_zero() {
                    return;
                }
                let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info)
                else {
                    gst::warning!(CAT, imp = self, "cannot map a video frame");
                    return;
                };
                let grid = analysis::luma_grid(&frame);
                let luma = analysis::mean(&grid) as f64;
                let dark = analysis::dark_share(&grid, s.black_threshold as f32) as f64;
                let black = (dark >= s.black_ratio).then_some(t);
                if let Some(c) = st.black.update(black, t, s.black_timeout) {
                    out.messages.push(self.alarm_message("black", c, luma));
                }
                if !s.freeze_timeout.is_zero() {
                    let unchanged = st.reference.as_ref().and_then(|(r, at)| {
                        (analysis::difference(r, &grid) as f64 <= s.freeze_tolerance).then_some(*at)
                    });
                    if unchanged.is_none() {
                        st.reference = Some((grid, t));
                    }
                    if let Some(c) = st.freeze.update(unchanged, t, s.freeze_timeout) {
                        out.messages.push(self.alarm_message("freeze", c, luma));
                    }
                }
            }
            Media::Audio(info) => {
                let metered = s.loudness_metered();
                if s.silence_timeout.is_zero() && !metered {
                    return;
                }
                let Ok(map) = buf.map_readable() else {
                    return;
                };
                if metered {
                    self.meter(&info, &map, st, s, t, out);
                }
                if s.silence_timeout.is_zero() {
                    return;
                }
                let db = analysis::loudest_channel_dbfs(&info, &map);
                let silent = (db < s.silence_threshold).then_some(t);
                if let Some(c) = st.silence.update(silent, t, s.silence_timeout) {
                    out.messages
                        .push(self.alarm_message("silence", c, db.max(-200.0)));
                }
            }
            Media::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> ClockTime {
        ClockTime::from_seconds(n)
    }

    #[test]
    fn raised_once_after_the_timeout_then_cleared_with_its_duration() {
        let mut d = Detector::default();
        assert!(d.update(Some(s(10)), s(10), s(2)).is_none());
        assert!(
            d.update(Some(s(11)), s(11), s(2)).is_none(),
            "since stays 10"
        );
        assert!(matches!(
            d.update(Some(s(12)), s(12), s(2)),
            Some(Change::Raised { since }) if since == s(10)
        ));
        assert!(d.raised);
        assert!(d.update(Some(s(13)), s(13), s(2)).is_none(), "raised once");
        assert!(matches!(
            d.update(None, s(15), s(2)),
            Some(Change::Cleared { since, duration }) if since == s(10) && duration == s(5)
        ));
        assert!(!d.raised);
        assert!(d.update(None, s(16), s(2)).is_none());
    }

    #[test]
    fn good_again_before_the_timeout_says_nothing_and_starts_over() {
        let mut d = Detector::default();
        assert!(d.update(Some(s(0)), s(1), s(2)).is_none());
        assert!(d.update(None, s(1), s(2)).is_none());
        assert!(d.update(Some(s(5)), s(6), s(2)).is_none(), "counts from 5");
        assert!(matches!(
            d.update(Some(s(5)), s(7), s(2)),
            Some(Change::Raised { since }) if since == s(5)
        ));
    }

    #[test]
    fn a_zero_timeout_is_off_and_clears_a_raised_alarm() {
        let mut d = Detector::default();
        assert!(d.update(Some(s(0)), s(100), ClockTime::ZERO).is_none());
        assert!(d.update(Some(s(0)), s(3), s(2)).is_some());
        assert!(matches!(
            d.update(Some(s(0)), s(4), ClockTime::ZERO),
            Some(Change::Cleared { .. })
        ));
    }
}
