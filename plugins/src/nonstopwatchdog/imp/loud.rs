//! Loudness in the watchdog: the meter fed with every audio buffer, the
//! four loudness alarms judged every 100 ms of audio (loud, quiet:
//! short-term loudness against a threshold; true-peak: a peak over the
//! limit within the last second; jump: short-term loudness moved by the
//! threshold within 3 s), and the `nonstop-loudness` message every
//! `loudness-interval`. All timed by the buffers' running times.

use std::collections::VecDeque;

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;

use super::super::loudness::{Meter, Reading};
use super::super::Alarms;
use super::detectors::Detector;
use super::{NonstopWatchdog, Outcome, Settings, State, CAT, MSG_LOUDNESS};

/// Alarms are judged this often: the step of BS.1770's momentary blocks.
const STEP: ClockTime = ClockTime::from_mseconds(100);
/// The short-term window: the span a jump is measured over, and the audio
/// needed before quiet and jump are judged (a window still filling reads
/// low).
const SPAN: ClockTime = ClockTime::from_seconds(3);
/// A peak over the limit holds the true-peak condition this long, so a
/// peaky programme is one alarm, not one per peak.
const PEAK_HOLD: ClockTime = ClockTime::SECOND;

#[derive(Debug, Default)]
pub(super) struct Loudness {
    meter: Option<Meter>,
    /// The meter could not be made for these caps (said once).
    failed: bool,
    /// Running time of the first metered buffer, and of the last.
    start: Option<ClockTime>,
    last: Option<ClockTime>,
    next_step: Option<ClockTime>,
    next_report: Option<ClockTime>,
    /// Highest true peak (dBTP) since the last report.
    report_peak: Option<f64>,
    last_over: Option<ClockTime>,
    /// Short-term loudness at each step of the last `SPAN`.
    history: VecDeque<(ClockTime, f64)>,
    loud: Detector,
    quiet: Detector,
    peak: Detector,
    jump: Detector,
}

impl Loudness {
    pub(super) fn alarms(&self) -> Alarms {
        let mut a = Alarms::empty();
        a.set(Alarms::LOUD, self.loud.raised);
        a.set(Alarms::QUIET, self.quiet.raised);
        a.set(Alarms::TRUE_PEAK, self.peak.raised);
        a.set(Alarms::JUMP, self.jump.raised);
        a
    }

    /// A full reading, with the highest true peak since the last one
    /// (what the meter holds beyond the last step included).
    fn take_reading(&mut self) -> Option<Reading> {
        let m = self.meter.as_mut()?;
        let peak = m.take_peak();
        let peak = self.report_peak.take().map_or(peak, |p| p.max(peak));
        Some(m.reading(peak))
    }

    /// How far short-term loudness moved over the last `SPAN` (0 while
    /// either end is below the gate or the window was still filling).
    fn moved(&mut self, t: ClockTime, short: f64, start: ClockTime) -> f64 {
        self.history.push_back((t, short));
        while self.history.len() > 1 && self.history[1].0 + SPAN <= t {
            self.history.pop_front();
        }
        match self.history.front() {
            Some(&(at, then))
                if at + SPAN <= t
                    && at >= start + SPAN
                    && then.is_finite()
                    && short.is_finite() =>
            {
                (short - then).abs()
            }
            _ => 0.0,
        }
    }
}

/// A loudness for a message field: −∞ (below the gate) as −200, as the
/// silence alarm does, so that every reader can parse it.
fn finite(v: f64) -> f64 {
    v.max(-200.0)
}

impl NonstopWatchdog {
    /// Meters one buffer of interleaved audio at running time `t`.
    pub(super) fn meter(
        &self,
        info: &gst_audio::AudioInfo,
        data: &[u8],
        st: &mut State,
        s: &Settings,
        t: ClockTime,
        out: &mut Outcome,
    ) {
        let l = &mut st.loudness;
        if l.meter.is_none() && !l.failed {
            match Meter::new(info) {
                Ok(m) => l.meter = Some(m),
                Err(e) => {
                    gst::warning!(CAT, imp = self, "no loudness: {e}");
                    l.failed = true;
                }
            }
        }
        let Some(m) = l.meter.as_mut() else {
            return;
        };
        m.add(data);
        l.last = Some(t);
        let start = *l.start.get_or_insert(t);
        let next = *l.next_step.get_or_insert(t + STEP);
        if t < next {
            return;
        }
        // On the grid, unless a gap in the audio left it behind.
        l.next_step = Some(if t >= next + STEP {
            t + STEP
        } else {
            next + STEP
        });
        let short = m.short_term();
        let peak = m.take_peak();
        l.report_peak = Some(l.report_peak.map_or(peak, |p| p.max(peak)));
        if peak > s.true_peak_limit {
            l.last_over = Some(t);
        }
        let full = t >= start + SPAN;
        let moved = l.moved(t, short, start);
        let over = l.last_over.filter(|o| t.saturating_sub(*o) < PEAK_HOLD);
        let judged = [
            (
                &mut l.loud,
                "loud",
                (short > s.loud_threshold).then_some(t),
                s.loud_timeout,
                short,
            ),
            (
                &mut l.quiet,
                "quiet",
                (full && short < s.quiet_threshold).then_some(t),
                s.quiet_timeout,
                short,
            ),
            (
                &mut l.peak,
                "true-peak",
                over.map(|_| t),
                s.true_peak_timeout,
                peak,
            ),
            (
                &mut l.jump,
                "jump",
                (moved >= s.jump_threshold).then_some(t),
                s.jump_timeout,
                moved,
            ),
        ];
        let mut changes = Vec::new();
        for (detector, kind, bad, timeout, value) in judged {
            if let Some(c) = detector.update(bad, t, timeout) {
                changes.push((kind, c, finite(value)));
            }
        }
        let every = s.loudness_interval;
        let due = *l.next_report.get_or_insert(start + every);
        let reading = if !every.is_zero() && due <= t {
            l.next_report = Some(if t >= due + every {
                t + every
            } else {
                due + every
            });
            l.take_reading()
        } else {
            None
        };
        for (kind, c, value) in changes {
            out.messages.push(self.alarm_message(kind, c, value));
        }
        if let Some(r) = reading {
            out.messages.push(self.loudness_message(t, &r));
        }
    }

    fn loudness_message(&self, t: ClockTime, r: &Reading) -> gst::Message {
        let s = gst::Structure::builder(MSG_LOUDNESS)
            .field("running-time", t.nseconds())
            .field("momentary", finite(r.momentary))
            .field("short-term", finite(r.short_term))
            .field("integrated", finite(r.integrated))
            .field("range", r.range)
            .field("true-peak", finite(r.true_peak))
            .build();
        gst::log!(CAT, imp = self, "{s}");
        gst::message::Element::builder(s).src(&*self.obj()).build()
    }

    /// At EOS, a last reading with what came since the one before: a
    /// file's integrated loudness covers all of it.
    pub(super) fn loudness_at_eos(&self) {
        if self.settings().loudness_interval.is_zero() {
            return;
        }
        let reading = {
            let mut st = self.lock_state();
            let l = &mut st.loudness;
            let (Some(t), Some(r)) = (l.last, l.take_reading()) else {
                return;
            };
            (t, r)
        };
        let _ = self
            .obj()
            .post_message(self.loudness_message(reading.0, &reading.1));
    }
}
