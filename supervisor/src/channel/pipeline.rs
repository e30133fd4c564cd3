//! The channel pipeline (appsrcs → watchdogs → switch pair → raw video
//! to the encoders, AAC to the fan-out): building, starting and stopping
//! it, and how every pipeline's bus reaches the channel's queue.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use gst::prelude::*;
use gst_app::{AppSink, AppSinkCallbacks};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::outputs::feed_key;
use super::{encoders, fmt_duration, make, ns, Channel, Event, Origin, Phase, STOP_GRACE};
use crate::ingest::{self, Bridge};
use crate::uri::{self, InputKind};

/// The channel pipeline and what the rest needs of it.
pub(super) struct Core {
    pub(super) pipeline: gst::Pipeline,
    pub(super) bridges: Vec<Bridge>,
}

/// Forwards the messages the state machine or the log needs; the rest
/// (state changes, QoS, stream status) is dropped on the spot. While
/// [`start`] runs, errors are held back for it instead: a pipeline that
/// fails to start is reported once, with its cause, by whoever started it.
pub(super) fn forward(
    pipeline: &gst::Pipeline,
    tx: &mpsc::UnboundedSender<Event>,
    origin: Origin,
    gen: u64,
) -> Held {
    let held = Held::default();
    let Some(bus) = pipeline.bus() else {
        return held;
    };
    let tx = tx.clone();
    let slot = held.0.clone();
    bus.set_sync_handler(move |_, msg| {
        use gst::MessageView as V;
        if matches!(
            msg.view(),
            V::Error(_) | V::Warning(_) | V::Eos(_) | V::Element(_) | V::Latency(_)
        ) {
            let mut held = slot.lock().unwrap_or_else(|e| e.into_inner());
            match held.as_mut() {
                Some(list) if matches!(msg.view(), V::Error(_)) => list.push(msg.clone()),
                _ => {
                    let _ = tx.send(Event {
                        origin,
                        gen,
                        msg: msg.clone(),
                    });
                }
            }
        }
        gst::BusSyncReply::Drop
    });
    held
}

/// Fault injection for the systemd watchdog's test (tests/systemd_notify.sh):
/// `NONSTOPD_TEST_HANG=ID:SECONDS` blocks channel ID's event loop SECONDS
/// after it starts, as a deadlocked GStreamer call would. Nothing else in
/// nonstopd can be made to hang on purpose, and the keepalive must be seen
/// withheld by a real hang, not only by the unit test of its rule.
pub const TEST_HANG: &str = "NONSTOPD_TEST_HANG";

pub(super) fn injected_hang(channel: &str) -> Option<Duration> {
    let v = std::env::var(TEST_HANG).ok()?;
    let (id, secs) = v.rsplit_once(':')?;
    let secs: f64 = secs
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)?;
    (id == channel).then(|| Duration::from_secs_f64(secs))
}

pub(super) fn hang(channel: &str) -> ! {
    error!(channel = %channel, "{TEST_HANG}: blocking this channel's event loop for good (fault injection)");
    loop {
        std::thread::park();
    }
}

/// Errors a pipeline posted while [`start`] ran (`None`: not starting).
#[derive(Clone, Default)]
pub(super) struct Held(Arc<Mutex<Option<Vec<gst::Message>>>>);

/// Sets `pipeline` PLAYING. A failure says why, from the first error the
/// pipeline posted (GStreamer's generic "state change failed" only if there
/// is nothing better); errors posted meanwhile by a start that succeeded go
/// the usual way.
pub(super) fn start(
    pipeline: &gst::Pipeline,
    held: &Held,
    tx: &mpsc::UnboundedSender<Event>,
    origin: Origin,
    gen: u64,
) -> anyhow::Result<()> {
    *held.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    let started = pipeline.set_state(gst::State::Playing);
    let errors = held
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    if started.is_ok() {
        for msg in errors {
            let _ = tx.send(Event { origin, gen, msg });
        }
        return Ok(());
    }
    let reasons: Vec<String> = errors.iter().filter_map(error_reason).collect();
    let generic = |t: &String| t.contains("failed to post a proper error message");
    match reasons.iter().find(|t| !generic(t)).or(reasons.first()) {
        Some(why) => Err(anyhow!("{why}")),
        None => Err(anyhow!(
            "the pipeline did not start, and said nothing of why"
        )),
    }
}

/// An error message as a reason: its text, the cause GStreamer put on the
/// last line of the debug text (e.g. "bind failed: … Address already in
/// use"), and the element; secrets redacted.
pub(super) fn error_reason(msg: &gst::Message) -> Option<String> {
    let gst::MessageView::Error(e) = msg.view() else {
        return None;
    };
    let text = uri::redact_text(&e.error().to_string());
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    let cause = debug
        .rsplit_once('\n')
        .map(|(_, last)| uri::redact_text(last.trim()))
        .filter(|c| !c.is_empty());
    Some(match cause {
        Some(c) => format!("{text} {c}{} ({})", in_use(&c), element_path(msg)),
        None => format!("{text} ({})", element_path(msg)),
    })
}

/// libsrt says only "Cannot bind to ADDR:PORT … unable to create/configure
/// SRT socket" when the port is taken: find out, and say so.
pub(super) fn in_use(cause: &str) -> String {
    let Some(addr) = cause
        .split("Cannot bind to ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
    else {
        return String::new();
    };
    match std::net::UdpSocket::bind(addr) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            format!(" ({addr} is in use: another socket holds that port)")
        }
        _ => String::new(),
    }
}

/// Stops a pipeline off the event loop: a source stuck in a network call
/// may take a while to unblock, and nothing else may wait for it.
pub(super) fn teardown(pipeline: gst::Pipeline) {
    if let Some(bus) = pipeline.bus() {
        bus.unset_sync_handler();
    }
    tokio::task::spawn_blocking(move || {
        let _ = pipeline.set_state(gst::State::Null);
    });
}

pub(super) fn element_path(msg: &gst::Message) -> String {
    msg.src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default()
}

impl Channel {
    /// Builds and starts the channel pipeline, then every input and output.
    pub fn start(&mut self) -> anyhow::Result<()> {
        self.core_gen += 1;
        let core = self
            .build_core()
            .with_context(|| format!("channel {}: building the channel pipeline", self.id))?;
        let _ = forward(&core.pipeline, &self.tx, Origin::Channel, self.core_gen);
        core.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| anyhow!("channel {}: the channel pipeline did not start", self.id))?;
        self.core = Some(core);
        self.started_at = Some(Instant::now());
        info!(channel = %self.id, event = "channel-started", inputs = self.inputs.len(), encoders = self.renditions.len(), outputs = self.outputs.len(), "channel started");
        for r in 0..self.renditions.len() {
            for i in 0..self.renditions[r].instances.len() {
                self.start_instance(r, i);
            }
        }
        for i in 0..self.inputs.len() {
            self.start_input(i);
        }
        for o in 0..self.outputs.len() {
            self.start_output(o);
        }
        Ok(())
    }

    pub(super) fn build_core(&self) -> anyhow::Result<Core> {
        let cfg = &self.cfg;
        let pipeline = gst::Pipeline::with_name(&format!("{}.channel", self.id));
        // In a fleet every box runs the channel on UTC: running time is the
        // time since the Unix epoch (NTP- or PTP-disciplined), so the frame
        // slots, the keyframe schedule (multiples of the keyframe interval)
        // and the MPEG-TS timestamps are the same on every box, and a
        // handover or a CDN switching boxes sees one timeline.
        let epoch = self.fleet.is_some();
        if epoch {
            let utc: gst::SystemClock = glib::Object::builder()
                .property("clock-type", gst::ClockType::Realtime)
                .build();
            pipeline.use_clock(Some(&utc));
            pipeline.set_start_time(gst::ClockTime::NONE);
            pipeline.set_base_time(gst::ClockTime::ZERO);
        } else {
            pipeline.use_clock(Some(&gst::SystemClock::obtain()));
        }
        // Unique per incarnation: switch groups are process-wide by name.
        let group = format!("nonstopd/{}/{}", self.id, self.core_gen);
        let vswitch = make("nonstopswitch", "vswitch")?;
        // One audio switch per track, all in the video's group: every
        // track cuts with the picture.
        let aswitches: Vec<gst::Element> = cfg
            .audio
            .iter()
            .enumerate()
            .map(|(k, _)| make("nonstopswitch", &crate::element::track_name("aswitch", k)))
            .collect::<anyhow::Result<_>>()?;
        for s in std::iter::once(&vswitch).chain(&aswitches) {
            s.set_property("timeout", ns(cfg.timeout).max(1));
            s.set_property("return-after", ns(cfg.return_after));
            s.set_property("clean-gap", ns(cfg.clean_gap));
            s.set_property("flap-window", ns(cfg.flap_window));
            s.set_property("max-return-after", ns(cfg.max_return_after));
            s.set_property("startup-grace", ns(cfg.startup_grace));
            s.set_property("auto-return", cfg.auto_return);
            s.set_property("loss-repeat", ns(cfg.loss_repeat));
            // The inputs here are appsrcs fed by their own pipelines, not
            // clock-paced sources: holding them saves no clock sleep, it
            // would only add a wakeup per frame and make bursts wait.
            s.set_property("sync-inputs", false);
            s.set_property("group", &group);
            s.set_property("epoch-grid", epoch);
            pipeline.add(s)?;
        }
        let vcaps = ingest::video_caps(&cfg.video);
        let fail_on: Vec<&str> = cfg.watchdog.fail_on.iter().map(|a| a.name()).collect();
        let mut bridges = Vec::new();
        for (i, input) in self.inputs.iter().enumerate() {
            // The input's own list, else the channel's.
            let own: Option<Vec<&str>> = cfg
                .inputs
                .get(i)
                .and_then(|c| c.fail_on.as_ref())
                .map(|l| l.iter().map(|a| a.name()).collect());
            let fail_on = own.as_ref().unwrap_or(&fail_on);
            let mut streams = vec![(Media::Video, vcaps.clone(), &vswitch, 8u64)];
            for (k, t) in cfg.audio.iter().enumerate() {
                let caps = ingest::audio_caps(&t.format);
                streams.push((Media::Audio(k), caps, &aswitches[k], 32u64));
            }
            let mut srcs = Vec::new();
            for (media, caps, switch, depth) in streams {
                let label = media.label(&cfg.audio);
                // A burst beyond the switch's appetite drops the oldest.
                let name = format!("{}_{label}", input.id);
                let src = crate::element::leaky_appsrc(&name, Some(&caps), true, depth);
                pipeline.add(&src)?;
                let mut last: gst::Element = src.clone().upcast();
                // A slate is the last resort: it is never judged.
                if !matches!(input.kind, InputKind::Slate(_)) {
                    let wd = make("nonstopwatchdog", &format!("watchdog_{i}_{label}"))?;
                    let w = &cfg.watchdog;
                    wd.set_property("stall-timeout", ns(w.stall_timeout));
                    match media {
                        Media::Video => {
                            wd.set_property("freeze-timeout", ns(w.freeze_timeout));
                            wd.set_property("freeze-tolerance", w.freeze_tolerance);
                            wd.set_property("black-timeout", ns(w.black_timeout));
                            wd.set_property("black-threshold", w.black_threshold);
                            wd.set_property("black-ratio", w.black_ratio);
                            if cfg.captions == crate::config::Captions::Required {
                                wd.set_property("captions-timeout", ns(w.no_captions_timeout));
                            }
                        }
                        Media::Audio(k) => {
                            wd.set_property("silence-timeout", ns(w.silence_timeout));
                            wd.set_property("silence-threshold", w.silence_threshold);
                            // The first track is the programme's sound: it
                            // is metered and its alarms can fail over. The
                            // others raise alarms only.
                            if k == 0 {
                                set_loudness(&wd, w);
                            }
                        }
                    }
                    if !fail_on.is_empty() && media.judged() {
                        wd.set_property_from_str("fail-on", &fail_on.join("+"));
                    }
                    pipeline.add(&wd)?;
                    last.link(&wd)?;
                    last = wd;
                }
                let pad = switch
                    .request_pad_simple("sink_%u")
                    .ok_or_else(|| anyhow!("nonstopswitch gave no sink pad"))?;
                pad.set_property("priority", i as u32);
                last.static_pad("src")
                    .ok_or_else(|| anyhow!("no src pad"))?
                    .link(&pad)?;
                srcs.push(src);
            }
            let video = srcs.remove(0);
            bridges.push(Bridge { video, audio: srcs });
        }
        // Video: raw frames to the encoder instances (own pipelines).
        let queue = gst::ElementFactory::make("queue").build()?;
        let raw = AppSink::builder()
            .name("raw_video")
            .sync(false)
            .enable_last_sample(false)
            .build();
        pipeline.add_many([&queue, raw.upcast_ref()])?;
        gst::Element::link_many([&vswitch, &queue, raw.upcast_ref()])?;
        encoders::raw_sink(&raw, self.taps.clone());
        // Audio: one AAC encoder per track here, shared by every rendition.
        for (k, (t, switch)) in cfg.audio.iter().zip(&aswitches).enumerate() {
            let chain = crate::encode::audio_chain(&t.format, k)?;
            self.encoded_audio(&pipeline, switch, chain, k)?;
        }
        Ok(Core { pipeline, bridges })
    }

    /// switch → (programme loudness meter) → queue → AAC encoder chain →
    /// appsink feeding the outputs.
    pub(super) fn encoded_audio(
        &self,
        pipeline: &gst::Pipeline,
        switch: &gst::Element,
        encoder: Vec<gst::Element>,
        track: usize,
    ) -> anyhow::Result<()> {
        let queue = gst::ElementFactory::make("queue").build()?;
        let sink = AppSink::builder()
            .name(crate::element::track_name("audio_out", track))
            .sync(false)
            .enable_last_sample(false)
            .build();
        let mut chain = vec![switch.clone()];
        if self.cfg.watchdog.loudness && track == 0 {
            // The programme as it goes to air: metered only, never judged
            // (there is nothing to fail over to after the switch).
            let meter = make("nonstopwatchdog", PROGRAM_METER)?;
            meter.set_property("stall-timeout", 0u64);
            meter.set_property("loudness-interval", ns(LOUDNESS_EVERY));
            chain.push(meter);
        }
        chain.push(queue);
        chain.extend(encoder);
        pipeline.add_many(&chain[1..])?;
        pipeline.add(&sink)?;
        chain.push(sink.clone().upcast());
        gst::Element::link_many(&chain).context("linking the audio encoder")?;
        let fanout = self.fanout.clone();
        let fanout_eos = self.fanout.clone();
        sink.set_callbacks(
            AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    fanout.audio(track, &sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .eos(move |_| fanout_eos.eos_audio(track))
                .build(),
        );
        Ok(())
    }

    /// The channel pipeline failed (an encoder error): rebuild all of it,
    /// after a backoff so a persistent fault does not spin.
    pub(super) fn core_failed(&mut self, why: &str) {
        self.shutdown_now();
        let delay = self.core_backoff.fail();
        self.core_retry = Some(Instant::now() + delay);
        error!(channel = %self.id, event = "channel-failed", reason = why, retry_in = %fmt_duration(delay), "channel pipeline failed; rebuilding the channel");
    }

    pub(super) fn check_core(&mut self) {
        match self.core_retry {
            Some(at) if Instant::now() >= at => {
                self.core_retry = None;
                if let Err(e) = self.start() {
                    self.core_failed(&format!("{e:#}"));
                }
            }
            // Something on air again: a later failure starts the backoff over.
            None if self.core.is_some() && self.active.is_some() => self.core_backoff.reset(),
            _ => {}
        }
    }

    /// Tears everything down at once (no EOS).
    pub(super) fn shutdown_now(&mut self) {
        self.abort_drill("the channel was stopped or rebuilt during the drill");
        for o in 0..self.outputs.len() {
            let out = &mut self.outputs[o];
            self.fanout.remove(feed_key(o, out.gen));
            out.feed = None;
            out.phase = Phase::Stopped;
            if let Some(p) = out.pipeline.take() {
                teardown(p);
            }
        }
        for input in &mut self.inputs {
            input.phase = Phase::Stopped;
            if let Some(p) = input.pipeline.take() {
                teardown(p);
            }
        }
        for p in self.stop_encoders() {
            teardown(p);
        }
        if let Some(core) = self.core.take() {
            teardown(core.pipeline);
        }
        self.active = None;
    }

    /// EOS through encoders and muxers, so recordings and playlists are
    /// complete; waits for the outputs up to [`STOP_GRACE`].
    pub(super) async fn finish(&mut self) {
        self.abort_drill("the channel stopped during the drill");
        info!(channel = %self.id, "stopping: ending the streams");
        // A fleet standby's held outputs never started: nothing to end.
        let mut pending: Vec<usize> = (0..self.outputs.len())
            .filter(|o| self.outputs[*o].pipeline.is_some() && !self.outputs[*o].phase.held())
            .collect();
        if let Some(core) = &self.core {
            core.pipeline.send_event(gst::event::Eos::new());
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while !pending.is_empty() {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => {
                    let done = match (ev.origin, ev.msg.view()) {
                        (Origin::Output(o), gst::MessageView::Eos(_))
                        | (Origin::Output(o), gst::MessageView::Error(_)) => {
                            (ev.gen == self.outputs[o].gen).then_some(o)
                        }
                        _ => None,
                    };
                    if let gst::MessageView::Error(e) = ev.msg.view() {
                        let text = uri::redact_text(&e.error().to_string());
                        warn!(channel = %self.id, element = %element_path(&ev.msg), "while stopping: {text}");
                    }
                    if let Some(o) = done {
                        pending.retain(|p| *p != o);
                    }
                }
                _ => break,
            }
        }
        for o in &pending {
            warn!(channel = %self.id, output = %self.outputs[*o].id, "output did not finish within {}", fmt_duration(STOP_GRACE));
        }
        let mut pipelines: Vec<gst::Pipeline> = Vec::new();
        for input in &mut self.inputs {
            pipelines.extend(input.pipeline.take());
        }
        pipelines.extend(self.core.take().map(|c| c.pipeline));
        pipelines.extend(self.stop_encoders());
        for out in &mut self.outputs {
            pipelines.extend(out.pipeline.take());
        }
        let nulled = tokio::task::spawn_blocking(move || {
            for p in pipelines {
                let _ = p.set_state(gst::State::Null);
            }
        });
        if tokio::time::timeout(Duration::from_secs(2), nulled)
            .await
            .is_err()
        {
            warn!(channel = %self.id, "a pipeline did not stop within 2s; leaving it behind");
        }
        info!(channel = %self.id, event = "channel-stopped", "channel stopped");
    }
}

/// The element that meters the programme's loudness (`nonstop-loudness`).
pub(super) const PROGRAM_METER: &str = "program_loudness";
/// Loudness readings for metrics and the status page: once a second.
const LOUDNESS_EVERY: Duration = Duration::from_secs(1);

/// An audio track's word in element names and alarms: `audio` for the
/// first, `audio-<track id>` for the others.
pub(super) fn track_label(tracks: &[crate::config::AudioTrack], k: usize) -> String {
    match k {
        0 => "audio".into(),
        k => format!("audio-{}", tracks[k].id),
    }
}

/// What a channel pipeline branch of an input carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Video,
    /// The n-th audio track.
    Audio(usize),
}

impl Media {
    /// Names its appsrc and watchdog, and its alarms: `video`, `audio`
    /// (the first track), `audio-<track id>` (the others).
    fn label(self, tracks: &[crate::config::AudioTrack]) -> String {
        match self {
            Media::Video => "video".into(),
            Media::Audio(k) => track_label(tracks, k),
        }
    }

    /// Its alarms can take the input off air (`fail_on`): the picture
    /// and the first track. A second language's silence is reported,
    /// not a reason to leave a source whose programme is fine.
    fn judged(self) -> bool {
        matches!(self, Media::Video | Media::Audio(0))
    }
}

/// An input's audio watchdog: its loudness meter and alarms.
fn set_loudness(wd: &gst::Element, w: &crate::config::Watchdog) {
    if w.loudness {
        wd.set_property("loudness-interval", ns(LOUDNESS_EVERY));
    }
    wd.set_property("loud-timeout", ns(w.loud_timeout));
    wd.set_property("loud-threshold", w.loud_threshold);
    wd.set_property("quiet-timeout", ns(w.quiet_timeout));
    wd.set_property("quiet-threshold", w.quiet_threshold);
    wd.set_property("true-peak-timeout", ns(w.true_peak_timeout));
    wd.set_property("true-peak-limit", w.true_peak_limit);
    wd.set_property("jump-timeout", ns(w.jump_timeout));
    wd.set_property("jump-threshold", w.jump_threshold);
}

#[cfg(test)]
mod tests {
    use super::super::Channel;
    use gst::prelude::*;

    /// What the config says about switching and content checks reaches
    /// nonstopswitch and each input's nonstopwatchdog.
    #[test]
    fn the_config_reaches_the_switch_and_the_watchdogs() {
        gst::init().unwrap();
        let _ = gstnonstop::plugin_register_static();
        let text = r#"
[[channel]]
id = "c"
auto_return = false
loss_repeat = "3s"
[channel.watchdog]
fail_on = ["stall", "black"]
freeze_timeout = "2s"
freeze_tolerance = 4
black_threshold = 0.2
black_ratio = 0.9
silence_threshold = -60.5
loud_timeout = "5s"
loud_threshold = -18
true_peak_limit = -2
jump_timeout = "300ms"
[[channel.input]]
id = "a"
uri = "test://smpte"
fail_on = ["stall", "freeze", "silence", "loud", "true-peak"]
[[channel.input]]
id = "b"
uri = "test://ball"
[[channel.input]]
id = "s"
uri = "slate://colour/black"
"#;
        let cfg = crate::config::Config::parse("t.toml", text).unwrap();
        let (ch, _handle) = Channel::new(cfg.channels[0].clone(), Vec::new());
        let core = ch.build_core().unwrap();
        let by = |n: &str| core.pipeline.by_name(n).unwrap_or_else(|| panic!("no {n}"));
        for s in ["vswitch", "aswitch"] {
            assert!(!by(s).property::<bool>("auto-return"), "{s}");
            assert_eq!(by(s).property::<u64>("loss-repeat"), 3_000_000_000, "{s}");
        }
        let flags = |n: &str| {
            let v = by(n).property_value("fail-on");
            let (_, names) = glib::FlagsValue::from_value(&v).unwrap();
            let mut names: Vec<&str> = names.iter().map(|f| f.nick()).collect();
            names.sort();
            names.join("+")
        };
        // Input a has its own list; b the channel's; the slate none at all.
        let a = "freeze+loud+silence+stall+true-peak";
        assert_eq!(flags("watchdog_0_video"), a);
        assert_eq!(flags("watchdog_0_audio"), a);
        assert_eq!(flags("watchdog_1_video"), "black+stall");
        assert!(core.pipeline.by_name("watchdog_2_video").is_none());
        let v = by("watchdog_1_video");
        assert_eq!(v.property::<f64>("freeze-tolerance"), 4.0);
        assert_eq!(v.property::<f64>("black-threshold"), 0.2);
        assert_eq!(v.property::<f64>("black-ratio"), 0.9);
        assert_eq!(v.property::<u64>("freeze-timeout"), 2_000_000_000);
        assert_eq!(
            by("watchdog_1_audio").property::<f64>("silence-threshold"),
            -60.5
        );
        // Loudness: metered once a second on every judged input and on
        // the programme; the alarms as configured, the rest at defaults.
        let a = by("watchdog_1_audio");
        assert_eq!(a.property::<u64>("loudness-interval"), 1_000_000_000);
        assert_eq!(a.property::<u64>("loud-timeout"), 5_000_000_000);
        assert_eq!(a.property::<f64>("loud-threshold"), -18.0);
        assert_eq!(a.property::<f64>("true-peak-limit"), -2.0);
        assert_eq!(a.property::<u64>("true-peak-timeout"), 0);
        assert_eq!(a.property::<u64>("jump-timeout"), 300_000_000);
        assert_eq!(a.property::<f64>("quiet-threshold"), -40.0);
        let p = by(super::PROGRAM_METER);
        assert_eq!(p.property::<u64>("loudness-interval"), 1_000_000_000);
        assert_eq!(p.property::<u64>("stall-timeout"), 0);
        assert_eq!(
            p.property::<u64>("loud-timeout"),
            0,
            "the programme is never judged"
        );

        // loudness = false: no programme meter, and the inputs' watchdogs
        // meter only for the alarms they have.
        let off = text.replace("loud_timeout = \"5s\"", "loudness = false");
        let cfg = crate::config::Config::parse("t.toml", &off).unwrap();
        let (ch, _handle) = Channel::new(cfg.channels[0].clone(), Vec::new());
        let core = ch.build_core().unwrap();
        assert!(core.pipeline.by_name(super::PROGRAM_METER).is_none());
        let a = core.pipeline.by_name("watchdog_1_audio").unwrap();
        assert_eq!(a.property::<u64>("loudness-interval"), 0);
        let v = core.pipeline.by_name("watchdog_1_video").unwrap();
        assert_eq!(
            v.property::<u64>("captions-timeout"),
            0,
            "captions carried, not required: not judged"
        );

        // captions = "required": every judged input's pictures are.
        let required = text
            .replace(
                "loss_repeat = \"3s\"",
                "loss_repeat = \"3s\"\ncaptions = \"required\"",
            )
            .replace(
                "jump_timeout = \"300ms\"",
                "jump_timeout = \"300ms\"\nno_captions_timeout = \"2s\"",
            );
        let cfg = crate::config::Config::parse("t.toml", &required).unwrap();
        let (ch, _handle) = Channel::new(cfg.channels[0].clone(), Vec::new());
        let core = ch.build_core().unwrap();
        for w in ["watchdog_0_video", "watchdog_1_video"] {
            let v = core.pipeline.by_name(w).unwrap();
            assert_eq!(v.property::<u64>("captions-timeout"), 2_000_000_000, "{w}");
        }
    }
}
