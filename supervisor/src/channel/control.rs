//! What the outside sees of a channel and may ask of it: a snapshot of its
//! state (published on every change), typed events, commands (switch,
//! mode, restarts, start/stop) and failover drills. The D-Bus layer
//! (`crate::control`) only translates; everything happens here, in the
//! channel's task.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::prelude::*;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{Channel, Phase};
use crate::ingest::{DRILL_BLACK, DRILL_NONE, DRILL_SILENCE, DRILL_STALL};
use crate::uri::InputKind;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputInfo {
    pub id: String,
    /// Redacted.
    pub uri: String,
    /// `starting`, `receiving`, `waiting` (rebuilt after a backoff) or `stopped`.
    pub state: String,
    /// Raised alarms, `media:kind` (e.g. `video:black`).
    pub alarms: Vec<String>,
    /// Wall clock of the last buffer, µs since the epoch; 0: none yet.
    pub last_seen: u64,
    pub restarts: u64,
    /// How long the input must be clean before the channel returns to it:
    /// `return_after`, doubled by flap damping (ms).
    pub return_holdoff_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputInfo {
    pub id: String,
    /// Redacted; the destination in use.
    pub uri: String,
    /// `starting`, `live`, `waiting` or `stopped`.
    pub state: String,
    pub bytes: u64,
    pub restarts: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncoderInfo {
    /// `rendition.instance`, e.g. `video.primary`.
    pub id: String,
    pub backend: String,
    /// `on-air`, `standby`, `idle` (passive standby), `starting`, `failed`.
    pub state: String,
}

/// Counters for metrics, per input / encoder instance / output in config
/// order (rates are over the last second).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub input_received_bytes: Vec<u64>,
    pub input_bitrate_bps: Vec<u64>,
    /// Frames per second × 1000.
    pub input_fps_milli: Vec<u64>,
    pub input_decode_errors: Vec<u64>,
    /// Per input: alarms raised by kind.
    pub input_alarms: Vec<std::collections::BTreeMap<String, u64>>,
    pub switches_by_reason: std::collections::BTreeMap<String, u64>,
    pub frames_emitted: u64,
    pub frames_repeated: u64,
    pub frames_black: u64,
    /// Per encoder instance, in `Snapshot::encoders` order.
    pub encoder_frames: Vec<u64>,
    /// Per rendition id.
    pub encoder_failovers: std::collections::BTreeMap<String, u64>,
    pub output_bytes_total: Vec<u64>,
    /// Milliseconds since the output last started delivering; 0 while down.
    pub output_connected_ms: Vec<u64>,
}

/// Everything the D-Bus properties show, as of the last change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub state: String,
    pub mode: String,
    pub active_input: String,
    pub inputs: Vec<InputInfo>,
    pub outputs: Vec<OutputInfo>,
    pub encoders: Vec<EncoderInfo>,
    pub switches: u64,
    /// For metrics (not D-Bus properties).
    pub counters: Counters,
    /// Recent events for the status page, newest first: (µs since the
    /// epoch, text).
    pub recent: Vec<(u64, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    InputSwitched {
        from: String,
        to: String,
        reason: String,
    },
    Alarm {
        target: String,
        kind: String,
        raised: bool,
    },
    OutputStateChanged {
        id: String,
        state: String,
    },
}

/// A command's refusal, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlError {
    NoSuchInput(String),
    NoSuchOutput(String),
    InvalidArgument(String),
    Busy(String),
}

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtlError::NoSuchInput(m)
            | CtlError::NoSuchOutput(m)
            | CtlError::InvalidArgument(m)
            | CtlError::Busy(m) => f.write_str(m),
        }
    }
}

pub type Reply<T> = oneshot::Sender<Result<T, CtlError>>;

#[derive(Debug)]
pub enum Command {
    SwitchTo(String, Reply<()>),
    SetMode(String, Reply<()>),
    RestartInput(String, Reply<()>),
    RestartOutput(String, Reply<()>),
    Start(Reply<()>),
    Stop(Reply<()>),
    Drill {
        kind: String,
        target: String,
        duration: Duration,
        reply: Reply<DrillReport>,
    },
}

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

// The checks of what D-Bus callers send, before the channel is touched:
// public (and pure) so that fuzz/ can drive them with arbitrary strings.

/// `SetMode`'s argument: the switch's mode nick.
pub fn parse_mode(mode: &str) -> Result<&'static str, CtlError> {
    match mode {
        "auto" => Ok("auto"),
        "manual" => Ok("manual"),
        other => Err(CtlError::InvalidArgument(format!(
            "mode \"{other}\" is not auto or manual"
        ))),
    }
}

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

fn wall_us(mono_ns: u64) -> u64 {
    if mono_ns == 0 {
        return 0;
    }
    let ago_us = crate::monotonic_ns().saturating_sub(mono_ns) / 1000;
    nonstop_api::now_us().saturating_sub(ago_us)
}

fn ms(d: Option<Duration>) -> i64 {
    d.map_or(-1, |d| d.as_millis() as i64)
}

fn phase_name(p: &Phase, live: &'static str) -> &'static str {
    match p {
        Phase::Starting { .. } => "starting",
        Phase::Live { .. } => live,
        Phase::Waiting { .. } => "waiting",
        Phase::Stopped => "stopped",
    }
}

impl Channel {
    pub(super) fn snapshot(&self) -> Snapshot {
        let mode = self.snapshot_mode();
        Snapshot {
            state: self.status_state().to_owned(),
            mode,
            active_input: self
                .active
                .map(|i| self.inputs[i].id.clone())
                .unwrap_or_default(),
            inputs: self
                .inputs
                .iter()
                .enumerate()
                .map(|(i, input)| InputInfo {
                    id: input.id.clone(),
                    uri: input.shown.clone(),
                    state: phase_name(&input.phase, "receiving").into(),
                    alarms: self.alarms[i].iter().cloned().collect(),
                    last_seen: wall_us(input.stats.last_data()),
                    restarts: input.restarts,
                    return_holdoff_ms: self.return_holdoff(i).as_millis() as u64,
                })
                .collect(),
            outputs: self
                .outputs
                .iter()
                .map(|o| OutputInfo {
                    id: o.id.clone(),
                    uri: o.dests[o.current].1.clone(),
                    state: phase_name(&o.phase, "live").into(),
                    bytes: o
                        .feed
                        .as_ref()
                        .map_or(0, |f| f.bytes.load(Ordering::Relaxed)),
                    restarts: o.restarts,
                })
                .collect(),
            encoders: self.encoder_infos(),
            switches: self.switches,
            counters: self.counters.clone(),
            recent: self.recent.iter().cloned().collect(),
        }
    }

    fn status_state(&self) -> &'static str {
        if self.stopped {
            return "stopped";
        }
        self.status.lock().unwrap_or_else(|e| e.into_inner()).state
    }

    /// Input `i`'s hold-off as the switch keeps it (flap damping included);
    /// `return_after` while the channel pipeline is not running.
    pub(super) fn return_holdoff(&self, i: usize) -> Duration {
        self.switch()
            .and_then(|sw| sw.static_pad(&format!("sink_{i}")))
            .map_or(self.cfg.return_after, |p| {
                Duration::from_nanos(p.property::<u64>("return-holdoff"))
            })
    }

    pub(super) fn switch(&self) -> Option<gst::Element> {
        self.core.as_ref()?.pipeline.by_name("vswitch")
    }

    pub(super) fn publish_snapshot(&self) {
        let snap = self.snapshot();
        self.snap_tx.send_if_modified(|s| {
            if *s == snap {
                false
            } else {
                *s = snap;
                true
            }
        });
    }

    pub(super) fn emit(&self, ev: ChannelEvent) {
        // No subscriber (no D-Bus): nothing to do.
        let _ = self.events.send(ev);
    }

    fn input_index(&self, id: &str) -> Result<usize, CtlError> {
        self.inputs.iter().position(|i| i.id == id).ok_or_else(|| {
            CtlError::NoSuchInput(format!(
                "channel {} has no input \"{id}\"; it has {}",
                self.id,
                self.inputs
                    .iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn output_index(&self, id: &str) -> Result<usize, CtlError> {
        self.outputs.iter().position(|o| o.id == id).ok_or_else(|| {
            CtlError::NoSuchOutput(format!(
                "channel {} has no output \"{id}\"; it has {}",
                self.id,
                self.outputs
                    .iter()
                    .map(|o| o.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn running(&self) -> Result<gst::Element, CtlError> {
        self.switch().ok_or_else(|| {
            CtlError::Busy(format!(
                "channel {} is not running (Start it first)",
                self.id
            ))
        })
    }

    pub(super) fn command(&mut self, cmd: Command) {
        match cmd {
            Command::SwitchTo(id, reply) => {
                let r = self.input_index(&id).and_then(|i| {
                    let switch = self.running()?;
                    let pad = switch.static_pad(&format!("sink_{i}")).ok_or_else(|| {
                        CtlError::InvalidArgument(format!("input {id} has no switch pad"))
                    })?;
                    switch.set_property("active-pad", &pad);
                    info!(channel = %self.id, input = %id, "manual switch requested");
                    Ok(())
                });
                let _ = reply.send(r);
            }
            Command::SetMode(mode, reply) => {
                let r = parse_mode(&mode).and_then(|mode| {
                    self.running().map(|s| {
                        s.set_property_from_str("mode", mode);
                        info!(channel = %self.id, mode = %mode, "mode set");
                    })
                });
                let _ = reply.send(r);
            }
            Command::RestartInput(id, reply) => {
                let r = self.input_index(&id).and_then(|i| {
                    self.running()?;
                    info!(channel = %self.id, input = %id, "restart requested");
                    self.restart_input(i);
                    Ok(())
                });
                let _ = reply.send(r);
            }
            Command::RestartOutput(id, reply) => {
                let r = self.output_index(&id).and_then(|o| {
                    self.running()?;
                    info!(channel = %self.id, output = %id, "restart requested");
                    self.restart_output(o);
                    Ok(())
                });
                let _ = reply.send(r);
            }
            Command::Start(reply) => {
                let r = if self.core.is_some() {
                    Ok(())
                } else {
                    self.stopped = false;
                    self.start().map_err(|e| CtlError::Busy(format!("{e:#}")))
                };
                let _ = reply.send(r);
            }
            Command::Stop(reply) => {
                if self.drill.is_some() {
                    let _ = reply.send(Err(CtlError::Busy(format!(
                        "channel {}: a drill is running",
                        self.id
                    ))));
                    return;
                }
                if self.core.is_some() {
                    warn!(channel = %self.id, "stop requested: the channel goes off air");
                    if let Some(i) = self.active {
                        self.emit(ChannelEvent::InputSwitched {
                            from: self.inputs[i].id.clone(),
                            to: String::new(),
                            reason: "stopped".into(),
                        });
                    }
                    self.shutdown_now();
                }
                self.stopped = true;
                let _ = reply.send(Ok(()));
            }
            Command::Drill {
                kind,
                target,
                duration,
                reply,
            } => self.start_drill(&kind, &target, duration, reply),
        }
        self.publish_status();
        self.publish_snapshot();
    }

    fn start_drill(
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
        warn!(channel = %self.id, drill = kind, target, duration = %super::fmt_duration(duration), "drill started");
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
            DrillKind::InputStall => self.inputs[idx]
                .stats
                .drill
                .store(DRILL_STALL, Ordering::Relaxed),
            DrillKind::InputBlack => self.inputs[idx]
                .stats
                .drill
                .store(DRILL_BLACK, Ordering::Relaxed),
            DrillKind::InputSilence => self.inputs[idx]
                .stats
                .drill
                .store(DRILL_SILENCE, Ordering::Relaxed),
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
                self.inputs[d.target]
                    .stats
                    .drill
                    .store(DRILL_NONE, Ordering::Relaxed);
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

    fn judge(&self, d: &Drill) -> DrillReport {
        let frame = Duration::from_nanos(
            1_000_000_000 * self.cfg.video.framerate.1 as u64
                / self.cfg.video.framerate.0.max(1) as u64,
        );
        let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(d.started));
        let gap = if d.kind.on_input() {
            self.taps.cadence.max_gap()
        } else {
            self.fanout.cadence.max_gap()
        };
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
        let fail_on = |a: crate::config::Alarm| self.cfg.watchdog.fail_on.contains(&a);
        match d.kind {
            DrillKind::InputStall | DrillKind::InputBlack | DrillKind::InputSilence => {
                let (alarm, timeout) = match d.kind {
                    DrillKind::InputStall => (crate::config::Alarm::Stall, self.cfg.timeout),
                    DrillKind::InputBlack => {
                        (crate::config::Alarm::Black, self.cfg.watchdog.black_timeout)
                    }
                    _ => (
                        crate::config::Alarm::Silence,
                        self.cfg.watchdog.silence_timeout,
                    ),
                };
                if d.kind != DrillKind::InputStall && (timeout.is_zero() || !fail_on(alarm)) {
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
                            self.cfg.timeout
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
                                    "nothing was left to switch to: the output went to black"
                                        .into(),
                                ),
                                Some(i) if matches!(self.inputs[i].kind, InputKind::Slate(_)) => {
                                    fail(format!(
                                        "no healthy backup: the channel went to the slate ({})",
                                        self.inputs[i].id
                                    ))
                                }
                                Some(_) => {}
                            }
                        }
                    }
                    if gap > frame * 2 + Duration::from_millis(20) {
                        fail(format!("the output had a {} ms gap", gap.as_millis()));
                    }
                    if d.switched.is_some() && d.returned.is_none() && self.mode_is_auto() {
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
                let redundant =
                    self.renditions[d.target].cfg.redundancy != crate::config::Redundancy::None;
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
                let others: u64 = self
                    .outputs
                    .iter()
                    .enumerate()
                    .filter(|(o, _)| *o != d.target)
                    .map(|(_, o)| o.restarts)
                    .sum();
                if others > d.others_restarts {
                    fail("another output failed during the drill".into());
                }
            }
        }
        report
    }

    fn mode_is_auto(&self) -> bool {
        self.snapshot_mode() == "auto"
    }

    fn snapshot_mode(&self) -> String {
        self.switch()
            .and_then(|s| {
                s.property_value("mode")
                    .serialize()
                    .ok()
                    .map(|v| v.to_string())
            })
            .unwrap_or_else(|| "auto".into())
    }

    /// A drill that cannot finish (the channel stops): reply now.
    pub(super) fn abort_drill(&mut self, why: &str) {
        if let Some(mut d) = self.drill.take() {
            if d.kind.on_input() {
                self.inputs[d.target]
                    .stats
                    .drill
                    .store(DRILL_NONE, Ordering::Relaxed);
            }
            if let Some(reply) = d.reply.take() {
                let mut report = self.judge(&d);
                report.passed = false;
                report.reason = why.to_owned();
                let _ = reply.send(Ok(report));
            }
        }
    }

    /// Alarms of input `i` as `media:kind`, kept for the snapshot.
    pub(super) fn note_alarm(&mut self, i: usize, media: &str, kind: &str, raised: bool) {
        let key = format!("{media}:{kind}");
        let set: &mut BTreeSet<String> = &mut self.alarms[i];
        if raised {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }
}
