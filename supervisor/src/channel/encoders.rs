//! The channel's video encoders: per rendition one or two instances, each
//! in its own pipeline fed from the switch's raw frames through a [`Taps`];
//! the rendition's selector decides which instance's frames the outputs
//! get. Failures (errors, no output, injected faults) are handled here:
//! change over, rebuild with backoff, become the standby again.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst_app::{AppSink, AppSinkCallbacks, AppSrc};
use tracing::{info, warn};

use super::pipeline::{forward, start, teardown};
use super::{fmt_duration, Channel, Origin, Phase};
use crate::backoff::Backoff;
use crate::config::{self, FaultKind, Redundancy};
use crate::encode::probe::Choice;
use crate::encode::schedule::Schedule;
use crate::encode::selector::Selector;
use crate::encode::{self, InstanceStats};

/// A freshly built encoder (hardware can take a while to open) gets this
/// long, at least its `stall_timeout`, to produce its first frame.
const ENCODER_START_GRACE: Duration = Duration::from_secs(5);

/// Where the switch's raw video frames go: the appsrcs of the encoder
/// instances being fed. The lock is contended only when one starts or stops.
/// Raw frames remembered for the latency: 256 slots of 1 ms hold the last
/// ~1.3 s of frames at 25 fps (an encoder slower than that is not sampled).
const RING: usize = 256;

/// One encoded frame in this many is measured for the latency histogram.
const LATENCY_SAMPLE: u64 = 25;

pub(super) struct Taps {
    list: Mutex<Vec<(u64, AppSrc)>>,
    /// The channel's own output cadence (raw frames), for drills.
    pub(super) cadence: crate::output::Cadence,
    /// When each recent raw frame went to the encoders, by PTS (slot:
    /// PTS in ms modulo the ring), for the encode latency: lock-free.
    ring_pts: [std::sync::atomic::AtomicU64; RING],
    ring_at: [std::sync::atomic::AtomicU64; RING],
    /// The output's frame for the status page, kept every 2 s.
    thumb: Mutex<Option<gst::Buffer>>,
    thumb_at: std::sync::atomic::AtomicU64,
    /// The PTS of the last raw frame (`u64::MAX`: none yet): where the
    /// frame grid is, for splice points.
    last_pts: std::sync::atomic::AtomicU64,
    /// The last fresh frame that said its input time (SCTE-35 passing):
    /// (input, its running time there, its PTS here).
    input_map: Mutex<Option<(u32, u64, u64)>>,
}

impl Default for Taps {
    fn default() -> Self {
        Taps {
            list: Mutex::default(),
            cadence: Default::default(),
            ring_pts: std::array::from_fn(|_| Default::default()),
            ring_at: std::array::from_fn(|_| Default::default()),
            thumb: Mutex::default(),
            thumb_at: Default::default(),
            last_pts: std::sync::atomic::AtomicU64::new(u64::MAX),
            input_map: Mutex::default(),
        }
    }
}

impl Taps {
    /// When the raw frame with `pts` went to the encoders (monotonic ns).
    pub(super) fn pushed_at(&self, pts: u64) -> Option<u64> {
        let slot = (pts / 1_000_000) as usize % RING;
        (self.ring_pts[slot].load(Ordering::Relaxed) == pts)
            .then(|| self.ring_at[slot].load(Ordering::Relaxed))
    }

    /// The PTS of the output frame nearest `t` (running time), from the
    /// last frame and the frame rate; `t` itself before the first frame.
    pub(super) fn frame_at(&self, t: u64, fps: (u32, u32)) -> u64 {
        let last = self.last_pts.load(Ordering::Relaxed);
        if last == u64::MAX || t <= last || fps.0 == 0 {
            return t;
        }
        snap(last, t, fps)
    }

    /// Where input `input`'s running time `t` falls on the output (PTS),
    /// by its last fresh frame; None unless that frame was its.
    pub(super) fn output_time_of(&self, input: u32, t: u64) -> Option<u64> {
        let (i, at, pts) = (*self.input_map.lock().unwrap_or_else(|e| e.into_inner()))?;
        (i == input).then(|| (pts + t).saturating_sub(at))
    }

    pub(super) fn last_frame(&self) -> Option<gst::Buffer> {
        self.thumb.lock().ok().and_then(|t| t.clone())
    }

    pub(super) fn push(&self, buffer: &gst::Buffer) {
        let now = crate::monotonic_ns();
        if let Some(pts) = buffer.pts() {
            self.last_pts.store(pts.nseconds(), Ordering::Relaxed);
            if let Some((input, t)) = crate::ingest::input_time(buffer) {
                let mut m = self.input_map.lock().unwrap_or_else(|e| e.into_inner());
                // A repeat says the time of the frame it repeats: not a map.
                if m.is_none_or(|(i, last, _)| (i, last) != (input, t)) {
                    *m = Some((input, t, pts.nseconds()));
                }
            }
            let slot = (pts.nseconds() / 1_000_000) as usize % RING;
            self.ring_at[slot].store(now, Ordering::Relaxed);
            self.ring_pts[slot].store(pts.nseconds(), Ordering::Relaxed);
        }
        if now.saturating_sub(self.thumb_at.load(Ordering::Relaxed)) >= 2_000_000_000 {
            self.thumb_at.store(now, Ordering::Relaxed);
            if let Ok(mut t) = self.thumb.lock() {
                *t = Some(buffer.clone());
            }
        }
        self.cadence.frame(now);
        for (_, src) in self.list.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = src.push_buffer(buffer.clone());
        }
    }

    /// The channel ended: end every fed encoder's input.
    fn eos(&self) {
        for (_, src) in self.list.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = src.end_of_stream();
        }
    }

    fn add(&self, key: u64, src: AppSrc) {
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, src));
    }

    fn remove(&self, key: u64) {
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _)| *k != key);
    }
}

pub(super) struct EncInstance {
    pub(super) choice: Choice,
    pub(super) stats: Arc<InstanceStats>,
    pipeline: Option<gst::Pipeline>,
    input: Option<AppSrc>,
    output: Option<AppSink>,
    pub(super) gen: u64,
    pub(super) phase: Phase,
    /// Receiving raw frames (a passive standby is built but not fed).
    fed: Option<Instant>,
    backoff: Backoff,
    pub(super) restarts: u64,
    /// Healthy for `hold_off` since its last (re)build.
    proven: bool,
}

pub(super) struct Rendition {
    pub(super) id: String,
    pub(super) cfg: config::Encoder,
    pub(super) size: (u32, u32),
    schedule: Schedule,
    pub(super) instances: Vec<EncInstance>,
    selector: Arc<Mutex<Selector<gst::Buffer>>>,
    /// Caps of the encoded stream (the active instance's).
    caps: Arc<Mutex<Option<gst::Caps>>>,
    /// Keyframes wanted besides the schedule (an output's start, splice
    /// points).
    force: Arc<encode::schedule::Requests>,
    faults: Vec<(config::Fault, bool)>,
}

/// Active-active: how long encoded frames wait before the outputs get
/// them: a whole GOP must exist, and a stall must be detectable, before a
/// frame leaves; the margin covers the state machine's tick.
pub(super) fn line_delay(cfg: &config::Encoder) -> u64 {
    (cfg.keyframe_interval + cfg.stall_timeout + Duration::from_millis(300)).as_nanos() as u64
}

fn role(i: usize) -> &'static str {
    if i == 0 {
        "primary"
    } else {
        "backup"
    }
}

fn tap_key(r: usize, i: usize, gen: u64) -> u64 {
    ((r as u64) << 48) | ((i as u64) << 40) | (gen & ((1 << 40) - 1))
}

impl Rendition {
    pub(super) fn new(
        cfg: config::Encoder,
        video: &config::VideoFormat,
        choices: Vec<Choice>,
        backoff: &Backoff,
    ) -> Self {
        let schedule = Schedule::new(cfg.keyframe_interval, video.framerate);
        let now = Instant::now();
        Rendition {
            id: cfg.id().to_owned(),
            size: cfg.size(video),
            schedule,
            instances: choices
                .into_iter()
                .map(|choice| EncInstance {
                    choice,
                    stats: Arc::new(InstanceStats::default()),
                    pipeline: None,
                    input: None,
                    output: None,
                    gen: 0,
                    phase: Phase::Waiting { until: now },
                    fed: None,
                    backoff: backoff.clone(),
                    restarts: 0,
                    proven: false,
                })
                .collect(),
            selector: Arc::new(Mutex::new(Selector::new(
                cfg.redundancy,
                schedule,
                line_delay(&cfg),
            ))),
            caps: Arc::new(Mutex::new(None)),
            force: Arc::default(),
            faults: cfg.faults.iter().map(|f| (*f, false)).collect(),
            cfg,
        }
    }

    fn active(&self) -> usize {
        self.selector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active()
    }

    /// The backend on air, for status and logs.
    pub(super) fn on_air(&self) -> &str {
        let a = self.active().min(self.instances.len() - 1);
        self.instances[a].choice.plan.backend.name()
    }
}

impl Channel {
    /// Builds the instance and starts it; fed at once unless it is a
    /// passive standby.
    pub(super) fn start_instance(&mut self, r: usize, i: usize) {
        let video_caps = crate::ingest::video_caps(&self.cfg.video);
        let fps = self.cfg.video.framerate;
        let channel = self.id.clone();
        let rendition = &mut self.renditions[r];
        let active = rendition.active();
        let mode = rendition.cfg.redundancy;
        let inst = &mut rendition.instances[i];
        inst.gen += 1;
        inst.stats.last_output.store(0, Ordering::Relaxed);
        inst.stats
            .fault
            .store(encode::FAULT_NONE, Ordering::Relaxed);
        inst.proven = false;
        let name = format!("{channel}.encoder.{}.{}", rendition.id, role(i));
        let spec = encode::Spec {
            plan: &inst.choice.plan,
            input_caps: &video_caps,
            size: rendition.size,
            fps,
            schedule: rendition.schedule,
        };
        let built = encode::instance(&name, &spec, &inst.stats, &rendition.force);
        inst.phase = Phase::Starting {
            since: Instant::now(),
        };
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                self.instance_failed(r, i, &format!("{e:#}"));
                return;
            }
        };
        let held = forward(&built.pipeline, &self.tx, Origin::Encoder(r, i), inst.gen);
        // Encoded frames: to the selector, and what it releases to the outputs.
        {
            let selector = rendition.selector.clone();
            let caps = rendition.caps.clone();
            let fanout = self.fanout.clone();
            let stats = inst.stats.clone();
            let taps = self.taps.clone();
            let latency = crate::encode::latency::encode_latency()
                .get_or_create(&crate::encode::latency::EncoderLabels {
                    channel: channel.clone(),
                    encoder: rendition.id.clone(),
                    role: role(i).to_owned(),
                })
                .clone();
            built.output.set_callbacks(
                AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let Some(buffer) = crate::output::running_time(&sample) else {
                            return Ok(gst::FlowSuccess::Ok);
                        };
                        stats
                            .last_output
                            .store(crate::monotonic_ns().max(1), Ordering::Relaxed);
                        let n = stats.frames.fetch_add(1, Ordering::Relaxed);
                        if n.is_multiple_of(LATENCY_SAMPLE) {
                            let at = buffer.pts().and_then(|p| taps.pushed_at(p.nseconds()));
                            if let Some(at) = at {
                                let now = crate::monotonic_ns();
                                latency.observe(now.saturating_sub(at) as f64 / 1e9);
                            }
                        }
                        let out = selector.lock().unwrap_or_else(|e| e.into_inner()).push(
                            i,
                            buffer,
                            crate::monotonic_ns(),
                        );
                        if !out.is_empty() {
                            let c = {
                                let mut c = caps.lock().unwrap_or_else(|e| e.into_inner());
                                if let Some(new) = sample.caps_owned() {
                                    *c = Some(new);
                                }
                                c.clone()
                            };
                            for b in &out {
                                fanout.video(r, b, c.as_ref());
                            }
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .eos({
                        let fanout = self.fanout.clone();
                        let selector = rendition.selector.clone();
                        let caps = rendition.caps.clone();
                        // The instance on air ends the rendition's video,
                        // with the GOP it was still holding.
                        move |_| {
                            let mut sel = selector.lock().unwrap_or_else(|e| e.into_inner());
                            if sel.active() != i {
                                return;
                            }
                            let c = caps.lock().unwrap_or_else(|e| e.into_inner()).clone();
                            for b in &sel.flush() {
                                fanout.video(r, b, c.as_ref());
                            }
                            fanout.eos_video(r);
                        }
                    })
                    .build(),
            );
        }
        let gen = inst.gen;
        if let Err(e) = start(&built.pipeline, &held, &self.tx, Origin::Encoder(r, i), gen) {
            let inst = &mut self.renditions[r].instances[i];
            inst.pipeline = Some(built.pipeline);
            self.instance_failed(r, i, &format!("{e:#}"));
            return;
        }
        let inst = &mut self.renditions[r].instances[i];
        inst.pipeline = Some(built.pipeline);
        inst.input = Some(built.input);
        inst.output = Some(built.output);
        info!(channel = %self.id, encoder = %self.renditions[r].id, instance = role(i),
            backend = self.renditions[r].instances[i].choice.plan.backend.name(),
            element = self.renditions[r].instances[i].choice.plan.factory,
            why = %self.renditions[r].instances[i].choice.why, "encoder started");
        let factory = self.renditions[r].instances[i].choice.plan.factory;
        if self.cfg.captions != crate::config::Captions::Drop
            && !crate::encode::backend::captions_written(factory)
        {
            warn!(channel = %self.id, encoder = %self.renditions[r].id, instance = role(i),
                element = factory, "{factory} cannot write closed captions (GStreamer 1.22): this rendition goes out without them");
        }
        // A passive standby waits unfed; everything else encodes at once.
        let standby = mode == Redundancy::ActivePassive && i != active;
        let active_down = matches!(
            self.renditions[r].instances.get(active).map(|a| a.phase),
            Some(Phase::Waiting { .. })
        );
        if !standby || active_down {
            self.feed(r, i);
        }
        if active != i && active_down {
            self.change_over(r, active, "the instance on air is down");
        }
    }

    fn feed(&mut self, r: usize, i: usize) {
        let inst = &mut self.renditions[r].instances[i];
        if let (None, Some(src)) = (inst.fed, &inst.input) {
            self.taps.add(tap_key(r, i, inst.gen), src.clone());
            inst.fed = Some(Instant::now());
        }
    }

    /// Instance `failed` is off: the other one goes on air (the selector
    /// hands over what it kept); a passive standby starts encoding now.
    fn change_over(&mut self, r: usize, failed: usize, why: &str) {
        let was_active = self.renditions[r].active() == failed;
        let frames = self.renditions[r]
            .selector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fail(failed, crate::monotonic_ns());
        let caps = self.renditions[r]
            .caps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for b in &frames {
            self.fanout.video(r, b, caps.as_ref());
        }
        if !was_active || self.renditions[r].instances.len() < 2 {
            return;
        }
        let other = 1 - failed;
        self.feed(r, other);
        let ren = &self.renditions[r];
        warn!(channel = %self.id, event = "encoder-failover", encoder = %ren.id, from = role(failed), to = role(other),
            backend = ren.instances[other].choice.plan.backend.name(),
            handed_over = frames.len(), reason = why, "encoder failover");
        self.drill_saw_encoder(r, true);
        let id = self.renditions[r].id.clone();
        *self
            .counters
            .encoder_failovers
            .entry(id.clone())
            .or_default() += 1;
        let backend = self.renditions[r].instances[other]
            .choice
            .plan
            .backend
            .name();
        let summary = format!(
            "{}: encoder {id} failed over from {} to {} ({backend}): {why}",
            self.id,
            role(failed),
            role(other)
        );
        self.alert("encoder-failover", &id, true, summary);
    }

    pub(super) fn instance_failed(&mut self, r: usize, i: usize, why: &str) {
        let inst = &mut self.renditions[r].instances[i];
        self.taps.remove(tap_key(r, i, inst.gen));
        // Whatever the torn-down pipeline still posts is stale from now.
        inst.gen += 1;
        inst.fed = None;
        inst.input = None;
        inst.output = None;
        if let Some(p) = inst.pipeline.take() {
            teardown(p);
        }
        let delay = inst.backoff.fail();
        inst.restarts += 1;
        inst.phase = Phase::Waiting {
            until: Instant::now() + delay,
        };
        warn!(channel = %self.id, encoder = %self.renditions[r].id, instance = role(i),
            reason = why, retry_in = %fmt_duration(delay), "encoder failed; rebuilding");
        self.drill_saw_encoder(r, false);
        self.change_over(r, i, why);
    }

    /// Rebuilds due instances, judges output flow, fires scheduled faults.
    pub(super) fn check_encoders(&mut self) {
        let now = Instant::now();
        let now_ns = crate::monotonic_ns();
        for r in 0..self.renditions.len() {
            // Frames due on the delay line even when no encoder delivers.
            let due = self.renditions[r]
                .selector
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .due(now_ns);
            if !due.is_empty() {
                let caps = self.renditions[r]
                    .caps
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                for b in &due {
                    self.fanout.video(r, b, caps.as_ref());
                }
            }
            let since_start = self.started_at.map_or(Duration::ZERO, |t| t.elapsed());
            for f in 0..self.renditions[r].faults.len() {
                let (fault, fired) = self.renditions[r].faults[f];
                if !fired && since_start >= fault.at {
                    self.renditions[r].faults[f].1 = true;
                    let i = fault.instance as usize;
                    if let Some(inst) = self.renditions[r].instances.get(i) {
                        let kind = match fault.kind {
                            FaultKind::Stall => encode::FAULT_STALL,
                            FaultKind::Error => encode::FAULT_ERROR,
                        };
                        inst.stats.fault.store(kind, Ordering::Relaxed);
                        warn!(channel = %self.id, encoder = %self.renditions[r].id, instance = role(i),
                            fault = fault.kind.name(), "injecting a fault");
                    }
                }
            }
            for i in 0..self.renditions[r].instances.len() {
                let stall = self.renditions[r].cfg.stall_timeout;
                let hold_off = self.renditions[r].cfg.hold_off;
                let inst = &mut self.renditions[r].instances[i];
                match inst.phase {
                    Phase::Waiting { until } if now >= until => self.start_instance(r, i),
                    Phase::Starting { since } | Phase::Live { since } => {
                        let Some(fed) = inst.fed else {
                            continue; // an idle standby produces nothing
                        };
                        let last = inst.stats.last_output.load(Ordering::Relaxed);
                        if last > 0 && matches!(inst.phase, Phase::Starting { .. }) {
                            inst.phase = Phase::Live { since };
                        }
                        let limit = if last == 0 {
                            stall.max(ENCODER_START_GRACE)
                        } else {
                            stall
                        };
                        let fed_ns = now_ns.saturating_sub(fed.elapsed().as_nanos() as u64);
                        let quiet = Duration::from_nanos(now_ns.saturating_sub(last.max(fed_ns)));
                        if quiet > limit {
                            let why = format!("no output for {}", fmt_duration(quiet));
                            self.instance_failed(r, i, &why);
                        } else if !inst.proven && last > 0 && since.elapsed() >= hold_off {
                            inst.proven = true;
                            inst.backoff.reset();
                            if inst.restarts > 0 {
                                let on_air = self.renditions[r].active() == i;
                                let id = self.renditions[r].id.clone();
                                let summary =
                                    format!("{}: encoder {id} {} healthy again", self.id, role(i));
                                self.alert("encoder-failover", &id, false, summary);
                                info!(channel = %self.id, encoder = %self.renditions[r].id, instance = role(i),
                                    on_air, "encoder healthy again");
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Stops every encoder instance at once.
    pub(super) fn stop_encoders(&mut self) -> Vec<gst::Pipeline> {
        let mut pipelines = Vec::new();
        for (r, ren) in self.renditions.iter_mut().enumerate() {
            for (i, inst) in ren.instances.iter_mut().enumerate() {
                self.taps.remove(tap_key(r, i, inst.gen));
                inst.fed = None;
                inst.input = None;
                inst.output = None;
                inst.phase = Phase::Stopped;
                pipelines.extend(inst.pipeline.take());
            }
        }
        pipelines
    }

    /// Asks every rendition for a keyframe from `now` (running time) on:
    /// an output just started.
    pub(super) fn request_keyframes(&self, now: gst::ClockTime) {
        for ren in &self.renditions {
            ren.force.from_now(now.nseconds());
        }
    }

    /// Asks every rendition for an IDR on the frame nearest `at` (running
    /// time): a splice point.
    pub(super) fn request_splice(&self, at: u64) {
        for ren in &self.renditions {
            ren.force.splice_at(at);
        }
    }

    /// A drill: the encoder instance on air of rendition `r` errors, as a
    /// crashing encoder does (the fault switch).
    pub(super) fn fail_encoder(&self, r: usize) {
        let ren = &self.renditions[r];
        if let Some(inst) = ren.instances.get(ren.active()) {
            inst.stats
                .fault
                .store(encode::FAULT_ERROR, Ordering::Relaxed);
        }
    }

    /// Each encoder instance, for status.
    pub(super) fn encoder_infos(&self) -> Vec<super::EncoderRow> {
        let mut v = Vec::new();
        for ren in &self.renditions {
            let active = ren.active();
            for (i, inst) in ren.instances.iter().enumerate() {
                let state = match inst.phase {
                    Phase::Waiting { .. } => "failed",
                    Phase::Stopped | Phase::Held => "stopped",
                    _ if inst.fed.is_none() => "idle",
                    Phase::Starting { .. } => "starting",
                    Phase::Live { .. } if i == active => "on-air",
                    Phase::Live { .. } => "standby",
                };
                v.push(super::EncoderRow {
                    id: format!("{}.{}", ren.id, role(i)),
                    backend: inst.choice.plan.backend.name().to_owned(),
                    state: state.to_owned(),
                });
            }
        }
        v
    }

    pub(super) fn encoder_pipeline(&self, r: usize, i: usize) -> Option<&gst::Pipeline> {
        self.renditions.get(r)?.instances.get(i)?.pipeline.as_ref()
    }
}

/// The switch's raw video to the encoders: an appsink callback.
/// The frame time nearest `t` on the grid of `fps` through `origin` (the
/// switch's slots are `origin + floor(k × den / num s)`).
fn snap(origin: u64, t: u64, fps: (u32, u32)) -> u64 {
    let (num, den) = (fps.0.max(1) as u128, fps.1.max(1) as u128);
    let per = den * 1_000_000_000;
    let k = ((t - origin) as u128 * num + per / 2) / per;
    origin + (k * per / num) as u64
}

pub(super) fn raw_sink(sink: &AppSink, taps: Arc<Taps>) {
    let eos = taps.clone();
    sink.set_callbacks(
        AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(buffer) = crate::output::running_time(&sample) {
                    taps.push(&buffer);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .eos(move |_| eos.eos())
            .build(),
    );
}

#[cfg(test)]
mod tests {
    use super::snap;

    #[test]
    fn a_splice_time_snaps_to_the_nearest_frame_of_the_grid() {
        // 25 fps from a frame at 1 s: 1.019 s is nearest 1.0 s.
        assert_eq!(snap(1_000_000_000, 1_019_000_000, (25, 1)), 1_000_000_000);
        assert_eq!(snap(1_000_000_000, 1_021_000_000, (25, 1)), 1_040_000_000);
        assert_eq!(snap(1_000_000_000, 5_000_000_001, (25, 1)), 5_000_000_000);
        // 29.97: frame k of the grid is floor(k × 1001/30000 s) after it.
        assert_eq!(snap(0, 10_000_000_000, (30000, 1001)), 10_010_000_000);
        assert_eq!(snap(0, 10_040_000_000, (30000, 1001)), 10_043_366_666);
    }
}
