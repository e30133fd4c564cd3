//! Failover drills: a fault put through the real code path for a while,
//! what the channel did about it, and the verdict (`verdict`, pure).

use std::time::{Duration, Instant};

use gst::prelude::*;
use tracing::{info, warn};

use super::{fmt_duration, Channel, CtlError, Phase, Reply};
use crate::config::{Alarm, Redundancy};
use crate::ingest::InputFault;
use crate::uri::InputKind;

/// What a drill measured. Times in ms from the fault (`returned`: from the
/// restore); -1: did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillReport {
    pub kind: String,
    pub target: String,
    pub detected_ms: i64,
    pub switched_ms: i64,
    pub output_gap_ms: i64,
    pub returned_ms: i64,
    pub passed: bool,
    pub reason: String,
}

pub use nonstop_api::drill::DrillKind;

/// `Drill`'s kind.
pub fn parse_drill_kind(kind: &str) -> Result<DrillKind, CtlError> {
    DrillKind::parse(kind).ok_or_else(|| {
        CtlError::InvalidArgument(format!(
            "unknown drill kind \"{kind}\"; expected {}",
            DrillKind::expected()
        ))
    })
}

/// `Drill`'s duration.
pub fn check_drill_duration(duration: Duration) -> Result<(), CtlError> {
    if duration < Duration::from_millis(100) || duration > Duration::from_secs(3600) {
        return Err(CtlError::InvalidArgument(
            "the drill duration must be 100 ms to 1 h".into(),
        ));
    }
    Ok(())
}

pub(super) struct Drill {
    kind: DrillKind,
    name: String,
    /// Input, rendition or output index.
    target: usize,
    target_id: String,
    started: Instant,
    until: Instant,
    restored: Option<Instant>,
    detected: Option<Instant>,
    switched: Option<(Instant, Option<usize>)>,
    returned: Option<Instant>,
    /// The target input was on air when the drill began.
    was_on_air: bool,
    /// Failures of other outputs before the drill (output-fail must not
    /// touch them).
    others_restarts: u64,
    reply: Option<Reply<DrillReport>>,
}

/// The fault an input drill puts on its input.
pub(super) fn input_fault(kind: DrillKind) -> InputFault {
    match kind {
        DrillKind::InputStall => InputFault::Stall,
        DrillKind::InputBlack => InputFault::Black,
        DrillKind::InputSilence => InputFault::Silence,
        DrillKind::EncoderFail | DrillKind::OutputFail => InputFault::None,
    }
}

pub(super) fn ms(d: Option<Duration>) -> i64 {
    d.map_or(-1, |d| d.as_millis() as i64)
}

impl Channel {
    pub(super) fn start_drill(
        &mut self,
        kind: &str,
        target: &str,
        duration: Duration,
        reply: Reply<DrillReport>,
    ) {
        if self.drill.is_some() {
            let _ = reply.send(Err(CtlError::Busy(format!(
                "channel {}: a drill is already running",
                self.id
            ))));
            return;
        }
        let k = match parse_drill_kind(kind) {
            Ok(k) => k,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if self.running().is_err() {
            let _ = reply.send(Err(CtlError::Busy(format!(
                "channel {} is not running",
                self.id
            ))));
            return;
        }
        if let Err(e) = check_drill_duration(duration) {
            let _ = reply.send(Err(e));
            return;
        }
        // encoder-fail without a target: the first encoder, named in the report.
        let target = match (k, target.is_empty()) {
            (DrillKind::EncoderFail, true) => self
                .renditions
                .first()
                .map(|r| r.id.clone())
                .unwrap_or_default(),
            _ => target.to_owned(),
        };
        let target = target.as_str();
        let idx = match k {
            _ if k.on_input() => self.input_index(target),
            DrillKind::EncoderFail => self
                .renditions
                .iter()
                .position(|r| r.id == target)
                .ok_or_else(|| {
                    CtlError::InvalidArgument(format!(
                        "channel {} has no encoder \"{target}\"",
                        self.id
                    ))
                }),
            _ => self.output_index(target),
        };
        let idx = match idx {
            Ok(i) => i,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let now = Instant::now();
        warn!(channel = %self.id, drill = kind, target, duration = %fmt_duration(duration), "drill started");
        self.taps.cadence.reset_gap();
        self.fanout.cadence.reset_gap();
        let others_restarts = self
            .outputs
            .iter()
            .enumerate()
            .filter(|(o, _)| *o != idx || k != DrillKind::OutputFail)
            .map(|(_, o)| o.restarts)
            .sum();
        match k {
            DrillKind::InputStall | DrillKind::InputBlack | DrillKind::InputSilence => {
                self.inputs[idx].stats.set_fault(input_fault(k))
            }
            DrillKind::EncoderFail => self.fail_encoder(idx),
            DrillKind::OutputFail => {
                if let Some(sink) = self.outputs[idx]
                    .pipeline
                    .as_ref()
                    .and_then(|p| p.children().first().cloned())
                {
                    gst::element_error!(
                        sink,
                        gst::ResourceError::Write,
                        ["drill: the destination failed"]
                    );
                }
            }
        }
        self.drill = Some(Drill {
            kind: k,
            name: kind.to_owned(),
            target: idx,
            target_id: target.to_owned(),
            started: now,
            until: now + duration,
            restored: None,
            detected: None,
            switched: None,
            returned: None,
            was_on_air: k.on_input() && self.active == Some(idx),
            others_restarts,
            reply: Some(reply),
        });
    }

    /// The drill's target input was seen to fail (alarm, loss, switch).
    pub(super) fn drill_saw_input(&mut self, i: usize) {
        if let Some(d) = &mut self.drill {
            if d.kind.on_input() && d.target == i && d.restored.is_none() && d.detected.is_none() {
                d.detected = Some(Instant::now());
            }
        }
    }

    pub(super) fn drill_saw_switch(&mut self, from: Option<usize>, to: Option<usize>) {
        let Some(d) = &mut self.drill else {
            return;
        };
        if !d.kind.on_input() {
            return;
        }
        let now = Instant::now();
        if from == Some(d.target) && d.switched.is_none() && d.restored.is_none() {
            d.switched = Some((now, to));
            d.detected.get_or_insert(now);
        }
        if to == Some(d.target) && d.restored.is_some() && d.returned.is_none() {
            d.returned = Some(now);
        }
    }

    pub(super) fn drill_saw_encoder(&mut self, r: usize, failover: bool) {
        if let Some(d) = &mut self.drill {
            if d.kind == DrillKind::EncoderFail && d.target == r {
                let now = Instant::now();
                d.detected.get_or_insert(now);
                if failover && d.switched.is_none() {
                    d.switched = Some((now, None));
                }
            }
        }
    }

    pub(super) fn drill_saw_output(&mut self, o: usize, started: bool) {
        if let Some(d) = &mut self.drill {
            if d.kind == DrillKind::OutputFail && d.target == o {
                let now = Instant::now();
                if started {
                    if d.detected.is_some() && d.switched.is_none() {
                        d.switched = Some((now, None));
                    }
                } else {
                    d.detected.get_or_insert(now);
                }
            }
        }
    }

    /// Restores the fault when its time is up; reports when done.
    pub(super) fn check_drill(&mut self) {
        // The target returns after its hold-off, which flap damping may
        // have doubled (a drill counts as a failover like any other).
        let holdoff = match &self.drill {
            Some(d) if d.kind.on_input() => self.return_holdoff(d.target),
            Some(_) => self.cfg.return_after,
            None => return,
        };
        let Some(d) = &mut self.drill else {
            return;
        };
        let now = Instant::now();
        if d.restored.is_none() && now >= d.until {
            if d.kind.on_input() {
                self.inputs[d.target].stats.set_fault(InputFault::None);
            }
            d.restored = Some(now);
            info!(channel = %self.id, drill = %d.name, "drill: fault removed");
        }
        let Some(restored) = d.restored else {
            return;
        };
        // Waits for the return to the target (if it should come back).
        let expect_return = d.kind.on_input() && d.was_on_air && d.switched.is_some();
        let give_up = restored + holdoff + Duration::from_secs(3);
        let output_live = d.kind != DrillKind::OutputFail
            || matches!(self.outputs[d.target].phase, Phase::Live { .. });
        if (expect_return && d.returned.is_none() && now < give_up)
            || (!output_live && now < give_up)
        {
            return;
        }
        let Some(mut d) = self.drill.take() else {
            return;
        };
        let report = self.judge(&d);
        info!(channel = %self.id, drill = %report.kind, target = %report.target, passed = report.passed,
            detected_ms = report.detected_ms, switched_ms = report.switched_ms, output_gap_ms = report.output_gap_ms,
            returned_ms = report.returned_ms, reason = %report.reason, "drill finished");
        if let Some(reply) = d.reply.take() {
            let _ = reply.send(Ok(report));
        }
    }

    pub(super) fn judge(&self, d: &Drill) -> DrillReport {
        let (num, den) = self.cfg.video.framerate;
        let cx = Context {
            frame: Duration::from_nanos(1_000_000_000 * den as u64 / num.max(1) as u64),
            timeout: self.cfg.timeout,
            black_timeout: self.cfg.watchdog.black_timeout,
            silence_timeout: self.cfg.watchdog.silence_timeout,
            fails_over_on: self.cfg.watchdog.fail_on.clone(),
            gap: if d.kind.on_input() {
                self.taps.cadence.max_gap()
            } else {
                self.fanout.cadence.max_gap()
            },
            input_ids: self.inputs.iter().map(|i| i.id.clone()).collect(),
            slates: (0..self.inputs.len())
                .filter(|&i| matches!(self.inputs[i].kind, InputKind::Slate(_)))
                .collect(),
            redundant: d.kind == DrillKind::EncoderFail
                && self.renditions[d.target].cfg.redundancy != Redundancy::None,
            others_restarts: self
                .outputs
                .iter()
                .enumerate()
                .filter(|(o, _)| *o != d.target)
                .map(|(_, o)| o.restarts)
                .sum(),
            auto: self.mode_is_auto(),
        };
        verdict(d, &cx)
    }

    pub(super) fn mode_is_auto(&self) -> bool {
        self.snapshot_mode() == "auto"
    }

    /// A drill that cannot finish (the channel stops): reply now.
    pub(super) fn abort_drill(&mut self, why: &str) {
        if let Some(mut d) = self.drill.take() {
            if d.kind.on_input() {
                self.inputs[d.target].stats.set_fault(InputFault::None);
            }
            if let Some(reply) = d.reply.take() {
                let mut report = self.judge(&d);
                report.passed = false;
                report.reason = why.to_owned();
                let _ = reply.send(Ok(report));
            }
        }
    }
}

/// What the verdict needs of the channel besides the drill's record.
pub(super) struct Context {
    /// One frame of the channel's video.
    frame: Duration,
    /// The switch's timeout, and the watchdog's black and silence ones.
    timeout: Duration,
    black_timeout: Duration,
    silence_timeout: Duration,
    /// The alarms the channel fails over on.
    fails_over_on: Vec<Alarm>,
    /// The largest gap in the output the drill's cadence saw.
    gap: Duration,
    /// Input ids, and which inputs are slates.
    input_ids: Vec<String>,
    slates: Vec<usize>,
    /// encoder-fail: the target rendition has a second encoder.
    redundant: bool,
    /// Failures of outputs other than the target, now.
    others_restarts: u64,
    /// The switch is in auto mode (a manual one does not return).
    auto: bool,
}

/// The drill's verdict: what it measured and whether the channel did what
/// it promises; the first broken promise is the reason.
pub(super) fn verdict(d: &Drill, cx: &Context) -> DrillReport {
    let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(d.started));
    let (frame, gap) = (cx.frame, cx.gap);
    let mut report = DrillReport {
        kind: d.name.clone(),
        target: d.target_id.clone(),
        detected_ms: ms(since(d.detected)),
        switched_ms: ms(since(d.switched.map(|s| s.0))),
        output_gap_ms: gap.as_millis() as i64,
        returned_ms: ms(d
            .returned
            .and_then(|r| d.restored.map(|s| r.saturating_duration_since(s)))),
        passed: true,
        reason: String::new(),
    };
    let mut fail = |why: String| {
        if report.passed {
            report.passed = false;
            report.reason = why;
        }
    };
    match d.kind {
        DrillKind::InputStall | DrillKind::InputBlack | DrillKind::InputSilence => {
            let (alarm, timeout) = match d.kind {
                DrillKind::InputStall => (Alarm::Stall, cx.timeout),
                DrillKind::InputBlack => (Alarm::Black, cx.black_timeout),
                _ => (Alarm::Silence, cx.silence_timeout),
            };
            if d.kind != DrillKind::InputStall
                && (timeout.is_zero() || !cx.fails_over_on.contains(&alarm))
            {
                fail(format!(
                    "the channel does not fail over on {}: set watchdog.{}_timeout and add \"{}\" to watchdog.fail_on",
                    alarm.name(), alarm.name(), alarm.name()
                ));
            }
            if d.detected.is_none() {
                fail(format!(
                    "the fault on input {} was not detected",
                    d.target_id
                ));
            }
            if d.was_on_air {
                // Detection + the switch's timeout, a frame of slack for
                // the slot grid, and the state machine's tick.
                let bound = timeout
                    + frame * 2
                    + Duration::from_millis(300)
                    + if d.kind == DrillKind::InputStall {
                        Duration::ZERO
                    } else {
                        cx.timeout
                    };
                match d.switched {
                    None => fail(format!("input {} stayed on air", d.target_id)),
                    Some((at, to)) => {
                        let took = at.saturating_duration_since(d.started);
                        if took > bound {
                            fail(format!(
                                "switched after {} ms, more than the {} ms expected",
                                took.as_millis(),
                                bound.as_millis()
                            ));
                        }
                        match to {
                            None => fail(
                                "nothing was left to switch to: the output went to black".into(),
                            ),
                            Some(i) if cx.slates.contains(&i) => fail(format!(
                                "no healthy backup: the channel went to the slate ({})",
                                cx.input_ids[i]
                            )),
                            Some(_) => {}
                        }
                    }
                }
                if gap > frame * 2 + Duration::from_millis(20) {
                    fail(format!("the output had a {} ms gap", gap.as_millis()));
                }
                if d.switched.is_some() && d.returned.is_none() && cx.auto {
                    fail(format!(
                        "the channel did not return to {} after the fault",
                        d.target_id
                    ));
                }
            }
        }
        DrillKind::EncoderFail => {
            if d.detected.is_none() {
                fail("the encoder failure was not detected".into());
            }
            let redundant = cx.redundant;
            if redundant && d.switched.is_none() {
                fail("no change-over to the other encoder".into());
            }
            if !redundant {
                fail("no redundant encoder: the rendition was off air until its encoder was rebuilt (set redundancy)".into());
            }
        }
        DrillKind::OutputFail => {
            if d.detected.is_none() {
                fail("the output failure was not detected".into());
            }
            if d.switched.is_none() {
                fail(format!("output {} did not restart", d.target_id));
            }
            if cx.others_restarts > d.others_restarts {
                fail("another output failed during the drill".into());
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn drill(kind: DrillKind, t0: Instant) -> Drill {
        Drill {
            kind,
            name: kind.name().to_owned(),
            target: 0,
            target_id: "primary".into(),
            started: t0,
            until: t0 + 5000 * MS,
            restored: Some(t0 + 5000 * MS),
            detected: None,
            switched: None,
            returned: None,
            was_on_air: kind.on_input(),
            others_restarts: 0,
            reply: None,
        }
    }

    fn context() -> Context {
        Context {
            frame: 40 * MS,
            timeout: 500 * MS,
            black_timeout: 2000 * MS,
            silence_timeout: Duration::ZERO,
            fails_over_on: vec![Alarm::Stall, Alarm::Black],
            gap: 40 * MS,
            input_ids: vec!["primary".into(), "backup".into(), "slate".into()],
            slates: vec![2],
            redundant: false,
            others_restarts: 0,
            auto: true,
        }
    }

    /// An input drill that went as promised: detected, switched to the
    /// backup in time, back after the restore.
    fn good_stall(t0: Instant) -> Drill {
        let mut d = drill(DrillKind::InputStall, t0);
        d.detected = Some(t0 + 500 * MS);
        d.switched = Some((t0 + 520 * MS, Some(1)));
        d.returned = Some(t0 + 6000 * MS);
        d
    }

    #[test]
    fn a_clean_input_stall_passes_with_its_times() {
        let t0 = Instant::now();
        let r = verdict(&good_stall(t0), &context());
        assert!(r.passed, "{}", r.reason);
        assert_eq!(
            (r.detected_ms, r.switched_ms, r.output_gap_ms, r.returned_ms),
            (500, 520, 40, 1000)
        );
        assert_eq!(
            (r.kind.as_str(), r.target.as_str()),
            ("input-stall", "primary")
        );
    }

    #[test]
    fn a_late_switch_fails_with_the_bound() {
        let t0 = Instant::now();
        let mut d = good_stall(t0);
        // 500 ms timeout + two frames + 300 ms of tick and slack.
        d.switched = Some((t0 + 881 * MS, Some(1)));
        let r = verdict(&d, &context());
        assert_eq!(
            r.reason,
            "switched after 881 ms, more than the 880 ms expected"
        );
        d.switched = Some((t0 + 880 * MS, Some(1)));
        assert!(verdict(&d, &context()).passed);
    }

    #[test]
    fn the_slate_black_a_gap_or_no_return_each_fail() {
        let t0 = Instant::now();
        let mut d = good_stall(t0);
        d.switched = Some((t0 + 520 * MS, Some(2)));
        assert_eq!(
            verdict(&d, &context()).reason,
            "no healthy backup: the channel went to the slate (slate)"
        );
        d.switched = Some((t0 + 520 * MS, None));
        assert_eq!(
            verdict(&d, &context()).reason,
            "nothing was left to switch to: the output went to black"
        );
        let mut cx = context();
        cx.gap = 101 * MS;
        assert_eq!(
            verdict(&good_stall(t0), &cx).reason,
            "the output had a 101 ms gap"
        );
        let mut d = good_stall(t0);
        d.returned = None;
        assert_eq!(
            verdict(&d, &context()).reason,
            "the channel did not return to primary after the fault"
        );
        // In manual mode the channel stays where it was put.
        cx = context();
        cx.auto = false;
        assert!(verdict(&d, &cx).passed);
    }

    #[test]
    fn an_alarm_the_channel_does_not_fail_over_on_fails_the_drill() {
        let t0 = Instant::now();
        let mut d = good_stall(t0);
        d.kind = DrillKind::InputSilence;
        let r = verdict(&d, &context());
        assert!(
            r.reason
                .starts_with("the channel does not fail over on silence"),
            "{}",
            r.reason
        );
        d.kind = DrillKind::InputBlack;
        // Black: its own timeout plus the switch's.
        d.switched = Some((t0 + 2880 * MS, Some(1)));
        assert!(verdict(&d, &context()).passed);
    }

    #[test]
    fn an_undetected_input_fault_fails_first() {
        let t0 = Instant::now();
        let mut d = drill(DrillKind::InputStall, t0);
        d.was_on_air = false;
        assert_eq!(
            verdict(&d, &context()).reason,
            "the fault on input primary was not detected"
        );
        d.detected = Some(t0 + 10 * MS);
        assert!(
            verdict(&d, &context()).passed,
            "off air: no switch expected"
        );
    }

    #[test]
    fn encoder_and_output_drills() {
        let t0 = Instant::now();
        let mut d = drill(DrillKind::EncoderFail, t0);
        d.detected = Some(t0);
        d.switched = Some((t0, None));
        let mut cx = context();
        assert!(verdict(&d, &cx).reason.starts_with("no redundant encoder"));
        cx.redundant = true;
        assert!(verdict(&d, &cx).passed);
        d.switched = None;
        assert_eq!(
            verdict(&d, &cx).reason,
            "no change-over to the other encoder"
        );

        let mut d = drill(DrillKind::OutputFail, t0);
        d.target_id = "hls".into();
        d.detected = Some(t0);
        assert_eq!(verdict(&d, &context()).reason, "output hls did not restart");
        d.switched = Some((t0 + 100 * MS, None));
        assert!(verdict(&d, &context()).passed);
        let mut cx = context();
        cx.others_restarts = 1;
        assert_eq!(
            verdict(&d, &cx).reason,
            "another output failed during the drill"
        );
    }
}
