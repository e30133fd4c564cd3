//! One channel: its channel pipeline (appsrcs → watchdogs → switch pair →
//! encoders → fan-out), its input and output pipelines, and the state
//! machine that keeps them running.
//!
//! Every pipeline's bus forwards its messages, tagged with who sent them
//! and which incarnation, into one queue; all decisions are taken here, in
//! the channel's task, never in a bus callback.

mod control;
mod encoders;

pub use control::{
    check_drill_duration, parse_drill_kind, parse_mode, ChannelEvent, Command, Counters, CtlError,
    DrillKind, DrillReport, EncoderInfo, InputInfo, OutputInfo, Reply, Snapshot,
};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use gst::prelude::*;
use gst_app::{AppSink, AppSinkCallbacks, AppSrc};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::config;
use crate::encode::probe::Choice;
use crate::ingest::{self, Bridge, InputStats};
use crate::output::{self, Fanout, Feed};
use crate::srtin;
use crate::uri::{self, InputKind, OutputKind};
use encoders::{Rendition, Taps};
use tokio::sync::broadcast;

/// How often the state machine looks at data flow and timers.
const TICK: Duration = Duration::from_millis(100);

/// Latest frames of a channel by input id (and `program`), for the status
/// page.
pub type Thumbs = Arc<Mutex<std::collections::BTreeMap<String, gst::Sample>>>;
/// A freshly (re)started input gets this long (at least `stall_timeout`)
/// to deliver its first frame: connecting, probing and decoding take time.
pub const START_GRACE: Duration = Duration::from_secs(5);
/// An output whose destination accepts no data for this long is rebuilt.
pub const OUTPUT_STALL: Duration = Duration::from_secs(5);
/// An output running this long without failing has its backoff reset.
pub const OUTPUT_STABLE: Duration = Duration::from_secs(10);
/// How long a stopping channel waits for its outputs to finalize.
pub const STOP_GRACE: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Channel,
    Input(usize),
    Output(usize),
    /// Rendition, instance (0 primary, 1 backup).
    Encoder(usize, usize),
}

/// Application message that the bridge of an input posts (straight into
/// the channel's queue) when its first real buffer arrives.
const FIRST_DATA: &str = "nonstop-first-data";

/// Application message carrying an SRT listener's [`srtin::CallerEvent`].
const SRT_CALLER: &str = "nonstop-srt-caller";

fn caller_message(ev: srtin::CallerEvent) -> gst::Message {
    use srtin::CallerEvent as C;
    let s = match ev {
        C::Connected { peer, replaced } => gst::Structure::builder(SRT_CALLER)
            .field("event", if replaced { "replaced" } else { "connected" })
            .field("peer", peer),
        C::Gone { peer } => gst::Structure::builder(SRT_CALLER)
            .field("event", "gone")
            .field("peer", peer),
        C::Refused { peer, why } => gst::Structure::builder(SRT_CALLER)
            .field("event", "refused")
            .field("peer", peer)
            .field("why", why),
    };
    gst::message::Application::new(s.build())
}

/// A bus message from one of the channel's pipelines.
struct Event {
    origin: Origin,
    /// Incarnation of the pipeline that sent it; stale ones are only logged.
    gen: u64,
    msg: gst::Message,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Built and started; no data yet.
    Starting {
        since: Instant,
    },
    /// Data flowing.
    Live {
        since: Instant,
    },
    /// Failed; rebuilt at `until`.
    Waiting {
        until: Instant,
    },
    Stopped,
}

struct Input {
    id: String,
    shown: String,
    kind: InputKind,
    stats: Arc<InputStats>,
    pipeline: Option<gst::Pipeline>,
    looped: bool,
    gen: u64,
    phase: Phase,
    started_ns: u64,
    backoff: Backoff,
    restarts: u64,
    lost_at: Option<Instant>,
    /// An SRT listener input's socket, kept across its pipeline's rebuilds.
    srt: Option<srtin::Listener>,
}

struct Output {
    id: String,
    /// Destinations: the primary, then the backups (failover mode).
    dests: Vec<(OutputKind, String)>,
    /// The destination in use.
    current: usize,
    /// Failures in a row on the current destination.
    fails: u32,
    failover_after: u32,
    retry_primary: Duration,
    /// Since when the current destination is in use.
    on_dest: Instant,
    /// Indices of the renditions it carries.
    renditions: Vec<usize>,
    /// Since when it has been failing (not delivering); for alerts.
    down_since: Option<Instant>,
    /// How long it may wait for its first data after a start: its
    /// renditions' keyframe interval and delay line on top of the usual.
    start_grace: Duration,
    pipeline: Option<gst::Pipeline>,
    feed: Option<Arc<Feed>>,
    gen: u64,
    phase: Phase,
    progress: (u64, Instant),
    backoff: Backoff,
    restarts: u64,
}

/// The channel pipeline and what the rest needs of it.
struct Core {
    pipeline: gst::Pipeline,
    bridges: Vec<Bridge>,
}

/// A one-line view for logs and systemd's STATUS=.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub state: &'static str,
    pub active: Option<String>,
    pub inputs_live: usize,
    pub inputs: usize,
    pub outputs_up: usize,
    pub outputs: usize,
    /// Per encoder, the backend on air: "video x264".
    pub encoders: String,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}; inputs {}/{}, encoders {}, outputs {}/{})",
            self.state,
            self.active.as_deref().unwrap_or("nothing on air"),
            self.inputs_live,
            self.inputs,
            self.encoders,
            self.outputs_up,
            self.outputs
        )
    }
}

/// What the daemon keeps of a running channel.
pub struct Handle {
    pub id: String,
    pub status: Arc<Mutex<Status>>,
    /// Monotonic ns of the channel task's last tick: a hung task stops it.
    pub heartbeat: Arc<AtomicU64>,
    /// Commands to the channel's task.
    pub commands: mpsc::UnboundedSender<Command>,
    /// The channel's state as of its last change.
    pub snapshot: watch::Receiver<Snapshot>,
    /// Switches, alarms and output state changes, as they happen.
    pub events: broadcast::Sender<ChannelEvent>,
    /// Latest frames for thumbnails.
    pub thumbs: Thumbs,
}

pub struct Channel {
    id: String,
    cfg: config::Channel,
    core: Option<Core>,
    core_gen: u64,
    /// After a channel pipeline failure: rebuild at this time, with backoff.
    core_retry: Option<Instant>,
    core_backoff: Backoff,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    renditions: Vec<Rendition>,
    /// The switch's raw video, to the encoder instances being fed.
    taps: Arc<Taps>,
    started_at: Option<Instant>,
    fanout: Arc<Fanout>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    active: Option<usize>,
    status: Arc<Mutex<Status>>,
    heartbeat: Arc<AtomicU64>,
    commands: mpsc::UnboundedReceiver<Command>,
    snap_tx: watch::Sender<Snapshot>,
    events: broadcast::Sender<ChannelEvent>,
    /// Per input: raised alarms (`media:kind`).
    alarms: Vec<std::collections::BTreeSet<String>>,
    /// Input changes seen on the video switch.
    switches: u64,
    drill: Option<control::Drill>,
    /// Stopped on request (D-Bus `Stop`): stays off until `Start`.
    stopped: bool,
    /// Counters published for metrics, and what the rates are taken from.
    counters: Counters,
    rate_base: Option<(Instant, Vec<(u64, u64)>)>,
    /// Bytes of output runs that ended (the total goes on across restarts).
    output_bytes_done: Vec<u64>,
    /// Where alerts go (webhooks, besides log and D-Bus).
    alerts: crate::alerts::Alerts,
    /// Alerts raised and not cleared yet: (kind, target).
    raised: std::collections::BTreeSet<(String, String)>,
    /// An output down this long is alerted.
    output_grace: Duration,
    /// Recent events for the status page, newest first.
    recent: std::collections::VecDeque<(u64, String)>,
    /// Latest frames for the status page's thumbnails, by input id and
    /// `program`; refreshed every 2 s.
    thumbs: Thumbs,
    thumbs_at: Option<Instant>,
}

fn make(factory: &str, name: &str) -> anyhow::Result<gst::Element> {
    crate::element::make(factory, Some(name))
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

use crate::config::fmt_duration;

/// Forwards the messages the state machine or the log needs; the rest
/// (state changes, QoS, stream status) is dropped on the spot. While
/// [`start`] runs, errors are held back for it instead: a pipeline that
/// fails to start is reported once, with its cause, by whoever started it.
fn forward(
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

fn injected_hang(channel: &str) -> Option<Duration> {
    let v = std::env::var(TEST_HANG).ok()?;
    let (id, secs) = v.rsplit_once(':')?;
    let secs: f64 = secs
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)?;
    (id == channel).then(|| Duration::from_secs_f64(secs))
}

fn hang(channel: &str) -> ! {
    error!(channel = %channel, "{TEST_HANG}: blocking this channel's event loop for good (fault injection)");
    loop {
        std::thread::park();
    }
}

/// Errors a pipeline posted while [`start`] ran (`None`: not starting).
#[derive(Clone, Default)]
struct Held(Arc<Mutex<Option<Vec<gst::Message>>>>);

/// Sets `pipeline` PLAYING. A failure says why, from the first error the
/// pipeline posted (GStreamer's generic "state change failed" only if there
/// is nothing better); errors posted meanwhile by a start that succeeded go
/// the usual way.
fn start(
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
fn error_reason(msg: &gst::Message) -> Option<String> {
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
fn in_use(cause: &str) -> String {
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
fn teardown(pipeline: gst::Pipeline) {
    if let Some(bus) = pipeline.bus() {
        bus.unset_sync_handler();
    }
    tokio::task::spawn_blocking(move || {
        let _ = pipeline.set_state(gst::State::Null);
    });
}

fn element_path(msg: &gst::Message) -> String {
    msg.src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default()
}

impl Channel {
    /// Builds the channel; nothing runs until [`Channel::run`].
    /// `choices`: per encoder, the backend of each instance (primary, and
    /// backup with redundancy), as [`crate::encode::resolve`] picked them.
    pub fn new(cfg: config::Channel, choices: Vec<Vec<Choice>>) -> (Channel, Handle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = cfg.id.get_ref().clone();
        let backoff = Backoff::new(cfg.backoff.initial, cfg.backoff.max);
        let now = Instant::now();
        let inputs = cfg
            .inputs
            .iter()
            .map(|i| Input {
                id: i.id.get_ref().clone(),
                shown: uri::redact(i.uri.get_ref()),
                // Checked when the config was loaded.
                kind: uri::input_kind(i.uri.get_ref()).unwrap_or(InputKind::Slate(
                    uri::Slate::Colour {
                        argb: 0xff00_0000,
                        text: None,
                    },
                )),
                stats: Arc::new(InputStats::default()),
                pipeline: None,
                looped: false,
                gen: 0,
                phase: Phase::Waiting { until: now },
                started_ns: 0,
                backoff: backoff.clone(),
                restarts: 0,
                lost_at: None,
                srt: None,
            })
            .collect();
        let mut outputs = Vec::new();
        for o in &cfg.outputs {
            let mut dests: Vec<(OutputKind, String)> = std::iter::once(o.uri.get_ref())
                .chain(o.backup.iter().map(|b| b.get_ref()))
                .filter_map(|u| Some((uri::output_kind(u).ok()?, uri::redact(u))))
                .collect();
            let renditions: Vec<usize> = match &o.encoders {
                Some(names) => names
                    .iter()
                    .filter_map(|n| cfg.encoders.iter().position(|e| e.id() == n.get_ref()))
                    .collect(),
                None if matches!(dests.first(), Some((OutputKind::Hls { .. }, _))) => {
                    (0..cfg.encoders.len()).collect()
                }
                None => vec![0],
            };
            let base_id = o.id.get_ref().clone();
            let start_grace = OUTPUT_STALL
                + renditions
                    .iter()
                    .filter_map(|&r| cfg.encoders.get(r))
                    .map(|e| {
                        let line = match e.redundancy {
                            config::Redundancy::ActiveActive => {
                                Duration::from_nanos(encoders::line_delay(e))
                            }
                            _ => Duration::ZERO,
                        };
                        e.keyframe_interval + line
                    })
                    .max()
                    .unwrap_or_default();
            // `both`: one output per destination, all at once.
            let groups: Vec<(String, Vec<(OutputKind, String)>)> = match o.mode {
                config::OutputMode::Both => dests
                    .drain(..)
                    .enumerate()
                    .map(|(n, d)| {
                        let id = if n == 0 {
                            base_id.clone()
                        } else {
                            format!("{base_id}.backup{n}")
                        };
                        (id, vec![d])
                    })
                    .collect(),
                config::OutputMode::Failover => vec![(base_id.clone(), dests)],
            };
            for (id, dests) in groups {
                outputs.push(Output {
                    id,
                    dests,
                    current: 0,
                    fails: 0,
                    failover_after: o.failover_after.max(1),
                    retry_primary: o.retry_primary,
                    on_dest: now,
                    renditions: renditions.clone(),
                    start_grace,
                    down_since: None,
                    pipeline: None,
                    feed: None,
                    gen: 0,
                    phase: Phase::Waiting { until: now },
                    progress: (0, now),
                    backoff: backoff.clone(),
                    restarts: 0,
                });
            }
        }
        let renditions = cfg
            .encoders
            .iter()
            .cloned()
            .zip(choices)
            .map(|(e, c)| Rendition::new(e, &cfg.video, c, &backoff))
            .collect();
        let status = Arc::new(Mutex::new(Status {
            state: "starting",
            active: None,
            inputs_live: 0,
            inputs: cfg.inputs.len(),
            outputs_up: 0,
            outputs: outputs.len(),
            encoders: String::new(),
        }));
        let heartbeat = Arc::new(AtomicU64::new(crate::monotonic_ns()));
        let n_outputs = outputs.len();
        let thumbs: Thumbs = Default::default();
        let n_inputs = cfg.inputs.len();
        let (cmd_tx, commands) = mpsc::unbounded_channel();
        let (snap_tx, snapshot) = watch::channel(Snapshot::default());
        let (events, _) = broadcast::channel(256);
        let alarms: Vec<std::collections::BTreeSet<String>> =
            vec![Default::default(); cfg.inputs.len()];
        let handle = Handle {
            id: id.clone(),
            status: status.clone(),
            heartbeat: heartbeat.clone(),
            commands: cmd_tx,
            snapshot,
            events: events.clone(),
            thumbs: thumbs.clone(),
        };
        (
            Channel {
                id,
                cfg,
                core: None,
                core_gen: 0,
                core_retry: None,
                core_backoff: backoff.clone(),
                inputs,
                outputs,
                renditions,
                taps: Arc::new(Taps::default()),
                started_at: None,
                fanout: Arc::new(Fanout::default()),
                tx,
                rx,
                active: None,
                status,
                heartbeat,
                commands,
                snap_tx,
                events,
                alarms,
                switches: 0,
                drill: None,
                stopped: false,
                counters: Counters {
                    input_decode_errors: vec![0; n_inputs],
                    input_alarms: vec![Default::default(); n_inputs],
                    ..Counters::default()
                },
                rate_base: None,
                output_bytes_done: vec![0; n_outputs],
                alerts: crate::alerts::Alerts::default(),
                raised: Default::default(),
                output_grace: Duration::from_secs(10),
                recent: Default::default(),
                thumbs: thumbs.clone(),
                thumbs_at: None,
            },
            handle,
        )
    }

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
        info!(channel = %self.id, inputs = self.inputs.len(), encoders = self.renditions.len(), outputs = self.outputs.len(), "channel started");
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

    fn build_core(&self) -> anyhow::Result<Core> {
        let cfg = &self.cfg;
        let pipeline = gst::Pipeline::with_name(&format!("{}.channel", self.id));
        pipeline.use_clock(Some(&gst::SystemClock::obtain()));
        // Unique per incarnation: switch groups are process-wide by name.
        let group = format!("nonstopd/{}/{}", self.id, self.core_gen);
        let vswitch = make("nonstopswitch", "vswitch")?;
        let aswitch = make("nonstopswitch", "aswitch")?;
        for s in [&vswitch, &aswitch] {
            s.set_property("timeout", ns(cfg.timeout).max(1));
            s.set_property("return-after", ns(cfg.return_after));
            s.set_property("clean-gap", ns(cfg.clean_gap));
            s.set_property("flap-window", ns(cfg.flap_window));
            s.set_property("max-return-after", ns(cfg.max_return_after));
            s.set_property("startup-grace", ns(cfg.startup_grace));
            // The inputs here are appsrcs fed by their own pipelines, not
            // clock-paced sources: holding them saves no clock sleep, it
            // would only add a wakeup per frame and make bursts wait.
            s.set_property("sync-inputs", false);
            s.set_property("group", &group);
        }
        pipeline.add_many([&vswitch, &aswitch])?;
        let vcaps = ingest::video_caps(&cfg.video);
        let acaps = ingest::audio_caps(&cfg.audio);
        let fail_on: Vec<&str> = cfg.watchdog.fail_on.iter().map(|a| a.name()).collect();
        let mut bridges = Vec::new();
        for (i, input) in self.inputs.iter().enumerate() {
            let mut pair = Vec::new();
            for (media, caps, switch, depth) in [
                ("video", &vcaps, &vswitch, 8u64),
                ("audio", &acaps, &aswitch, 32u64),
            ] {
                let src = AppSrc::builder()
                    .name(format!("{}_{media}", input.id))
                    .caps(caps)
                    .format(gst::Format::Time)
                    .is_live(true)
                    .max_buffers(depth)
                    .max_bytes(0)
                    .max_time(gst::ClockTime::ZERO)
                    .build();
                // A burst beyond the switch's appetite drops the oldest.
                src.set_property_from_str("leaky-type", "downstream");
                pipeline.add(&src)?;
                let mut last: gst::Element = src.clone().upcast();
                // A slate is the last resort: it is never judged.
                if !matches!(input.kind, InputKind::Slate(_)) {
                    let wd = make("nonstopwatchdog", &format!("watchdog_{i}_{media}"))?;
                    wd.set_property("stall-timeout", ns(cfg.watchdog.stall_timeout));
                    if media == "video" {
                        wd.set_property("freeze-timeout", ns(cfg.watchdog.freeze_timeout));
                        wd.set_property("black-timeout", ns(cfg.watchdog.black_timeout));
                    } else {
                        wd.set_property("silence-timeout", ns(cfg.watchdog.silence_timeout));
                    }
                    if !fail_on.is_empty() {
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
                pair.push(src);
            }
            let audio = pair.pop().expect("two appsrcs");
            let video = pair.pop().expect("two appsrcs");
            bridges.push(Bridge { video, audio });
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
        // Audio: one AAC encoder here, shared by every rendition.
        self.encoded_audio(&pipeline, &aswitch, crate::encode::audio_chain(&cfg.audio)?)?;
        Ok(Core { pipeline, bridges })
    }

    /// switch → queue → AAC encoder chain → appsink feeding the outputs.
    fn encoded_audio(
        &self,
        pipeline: &gst::Pipeline,
        switch: &gst::Element,
        encoder: Vec<gst::Element>,
    ) -> anyhow::Result<()> {
        let queue = gst::ElementFactory::make("queue").build()?;
        let sink = AppSink::builder()
            .name("audio_out")
            .sync(false)
            .enable_last_sample(false)
            .build();
        let mut chain = vec![switch.clone(), queue];
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
                    fanout.audio(&sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .eos(move |_| fanout_eos.eos_audio())
                .build(),
        );
        Ok(())
    }

    fn start_input(&mut self, i: usize) {
        let Some(core) = &self.core else {
            return;
        };
        let input = &mut self.inputs[i];
        input.gen += 1;
        input.stats.reset();
        {
            let (tx, gen) = (self.tx.clone(), input.gen);
            let first = gst::message::Application::new(gst::Structure::new_empty(FIRST_DATA));
            *input
                .stats
                .on_first
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(move || {
                let _ = tx.send(Event {
                    origin: Origin::Input(i),
                    gen,
                    msg: first.clone(),
                });
            }));
        }
        let name = format!("{}.input.{}", self.id, input.id);
        // An SRT listener's socket is opened once and outlives pipelines.
        if let (None, InputKind::Uri { uri, .. }) = (&input.srt, &input.kind) {
            if uri::srt_listener(uri) {
                match srtin::Options::from_uri(uri).and_then(srtin::Listener::open) {
                    Ok(l) => input.srt = Some(l),
                    Err(e) => {
                        input.started_ns = crate::monotonic_ns();
                        self.input_failed(i, &format!("{e:#}"));
                        return;
                    }
                }
            }
        }
        let built = ingest::build(
            &name,
            &input.kind,
            &self.cfg.video,
            &self.cfg.audio,
            &core.bridges[i],
            &input.stats,
        );
        let result = built.and_then(|ingest| {
            let held = forward(&ingest.pipeline, &self.tx, Origin::Input(i), input.gen);
            let started = start(
                &ingest.pipeline,
                &held,
                &self.tx,
                Origin::Input(i),
                input.gen,
            );
            input.looped = ingest.looped;
            input.pipeline = Some(ingest.pipeline);
            if let (Some(feed), Some(l)) = (ingest.feed, &input.srt) {
                let (tx, gen) = (self.tx.clone(), input.gen);
                l.attach(
                    feed,
                    Arc::new(move |ev| {
                        let _ = tx.send(Event {
                            origin: Origin::Input(i),
                            gen,
                            msg: caller_message(ev),
                        });
                    }),
                );
            }
            started
        });
        input.started_ns = crate::monotonic_ns();
        input.phase = Phase::Starting {
            since: Instant::now(),
        };
        debug!(channel = %self.id, input = %input.id, uri = %input.shown, "input starting");
        if let Err(e) = result {
            self.input_failed(i, &format!("{e:#}"));
        }
    }

    fn input_failed(&mut self, i: usize, why: &str) {
        self.input_down(i, why, false);
    }

    /// The input delivers nothing (`stalled`) or failed. A listening input
    /// (udp, srt listener) that merely stalled is rebuilt at once, no
    /// backoff: waiting would only lose a returning sender's first
    /// packets; anything else waits out its backoff.
    fn input_down(&mut self, i: usize, why: &str, stalled: bool) {
        let input = &mut self.inputs[i];
        // Whatever the torn-down pipeline still posts is stale from now.
        input.gen += 1;
        if let Some(l) = &input.srt {
            l.detach();
        }
        if let Some(p) = input.pipeline.take() {
            teardown(p);
        }
        let was_live = matches!(input.phase, Phase::Live { .. });
        let listens = matches!(input.kind, InputKind::Uri { listens: true, .. });
        if was_live {
            self.drill_saw_input(i);
            let id = self.inputs[i].id.clone();
            let summary = format!("{}: input {id} lost ({why})", self.id);
            self.alert("input-lost", &id, true, summary);
        }
        let input = &mut self.inputs[i];
        input.restarts += 1;
        if was_live {
            input.lost_at = Some(Instant::now());
        }
        if stalled && listens {
            if was_live {
                warn!(channel = %self.id, input = %input.id, reason = why, "input lost; listening again");
            } else {
                debug!(channel = %self.id, input = %input.id, reason = why, "input still not receiving; listening afresh");
            }
            self.start_input(i);
            return;
        }
        let delay = input.backoff.fail();
        input.phase = Phase::Waiting {
            until: Instant::now() + delay,
        };
        if was_live {
            warn!(channel = %self.id, input = %input.id, reason = why, retry_in = %fmt_duration(delay), "input lost; restarting");
        } else {
            info!(channel = %self.id, input = %input.id, reason = why, retry_in = %fmt_duration(delay), "input not receiving; restarting");
        }
    }

    /// What an SRT listener input's socket saw. A caller that replaces an
    /// earlier one gets a fresh pipeline at once (its stream waits in the
    /// listener meanwhile): no stall to wait for, no backoff.
    fn srt_caller(&mut self, i: usize, s: &gst::StructureRef) {
        let get = |k: &str| s.get::<String>(k).unwrap_or_default();
        let (event, peer) = (get("event"), get("peer"));
        let input = &self.inputs[i];
        match event.as_str() {
            "replaced" => {
                info!(channel = %self.id, input = %input.id, peer = %peer, "srt caller connected; it replaces the previous caller");
                let why = format!("a new caller ({peer}) replaced the previous one");
                self.input_down(i, &why, true);
            }
            "connected" => {
                info!(channel = %self.id, input = %input.id, peer = %peer, "srt caller connected");
                // Its stream takes a moment to decode (SRT latency, the
                // first keyframe): the wait for data starts now, or a
                // rebuild due from the wait without a caller would throw
                // that first keyframe away.
                let input = &mut self.inputs[i];
                if let Phase::Starting { .. } = input.phase {
                    input.phase = Phase::Starting {
                        since: Instant::now(),
                    };
                }
            }
            "gone" => {
                info!(channel = %self.id, input = %input.id, peer = %peer, "srt caller gone; listening")
            }
            _ => {
                warn!(channel = %self.id, input = %input.id, peer = %peer, reason = %get("why"), "srt caller refused")
            }
        }
    }

    fn check_inputs(&mut self) {
        let now = Instant::now();
        let now_ns = crate::monotonic_ns();
        let mut restored = Vec::new();
        for i in 0..self.inputs.len() {
            let stall = self
                .cfg
                .watchdog
                .stall_timeout
                .max(Duration::from_millis(1));
            let input = &mut self.inputs[i];
            match input.phase {
                Phase::Waiting { until } if now >= until => self.start_input(i),
                Phase::Starting { since } => {
                    let last = input.stats.last_data();
                    if last > 0 {
                        input.phase = Phase::Live { since: now };
                        match input.lost_at.take() {
                            Some(at) => {
                                info!(channel = %self.id, input = %input.id, after = %fmt_duration(at.elapsed()), restarts = input.restarts, "input restored");
                                restored.push(input.id.clone());
                            }
                            None => {
                                info!(channel = %self.id, input = %input.id, uri = %input.shown, startup = %fmt_duration(since.elapsed()), "input receiving")
                            }
                        }
                    } else if since.elapsed() > stall.max(START_GRACE) {
                        // An SRT listener with no caller has nothing a
                        // fresh pipeline would do better: it waits on.
                        if input.srt.as_ref().is_some_and(|l| l.peer().is_none()) {
                            input.phase = Phase::Starting { since: now };
                            continue;
                        }
                        let why =
                            format!("no data within {}", fmt_duration(stall.max(START_GRACE)));
                        self.input_down(i, &why, true);
                    }
                }
                Phase::Live { since } => {
                    let last = input.stats.last_data().max(input.started_ns);
                    let quiet = Duration::from_nanos(now_ns.saturating_sub(last));
                    if quiet > stall {
                        let why = format!("no data for {}", fmt_duration(quiet));
                        self.input_down(i, &why, true);
                    } else if since.elapsed() >= self.cfg.return_after
                        && input.backoff.failures() > 0
                    {
                        input.backoff.reset();
                    }
                }
                _ => {}
            }
        }
        for id in restored {
            let summary = format!("{}: input {id} restored", self.id);
            self.alert("input-lost", &id, false, summary);
        }
    }

    /// What an output needs to know of the renditions it carries.
    fn rendition_infos(&self, list: &[usize]) -> Vec<output::Rendition> {
        list.iter()
            .filter_map(|&r| {
                let ren = self.renditions.get(r)?;
                Some(output::Rendition {
                    index: r,
                    id: ren.id.clone(),
                    parser: ren.instances.first()?.choice.plan.parser,
                    size: ren.size,
                    bandwidth: (ren.cfg.video_bitrate as u64 + self.cfg.audio.bitrate as u64)
                        * 1000,
                    codecs: crate::encode::codecs_string(
                        &ren.cfg,
                        ren.size,
                        self.cfg.video.framerate,
                    ),
                })
            })
            .collect()
    }

    fn start_output(&mut self, o: usize) {
        if self.core.is_none() {
            return;
        }
        self.emit(ChannelEvent::OutputStateChanged {
            id: self.outputs[o].id.clone(),
            state: "starting".into(),
        });
        let infos = self.rendition_infos(&self.outputs[o].renditions);
        let out = &mut self.outputs[o];
        out.gen += 1;
        let name = format!("{}.output.{}", self.id, out.id);
        let (kind, shown) = out.dests[out.current].clone();
        let result = output::build(&name, &kind, &infos).and_then(|egress| {
            let held = forward(&egress.pipeline, &self.tx, Origin::Output(o), out.gen);
            let started = start(
                &egress.pipeline,
                &held,
                &self.tx,
                Origin::Output(o),
                out.gen,
            );
            out.pipeline = Some(egress.pipeline);
            started?;
            self.fanout.add(feed_key(o, out.gen), egress.feed.clone());
            out.feed = Some(egress.feed);
            Ok(egress.target)
        });
        out.phase = Phase::Starting {
            since: Instant::now(),
        };
        out.progress = (0, Instant::now());
        match result {
            Ok(target) => {
                let target = target.map(|t| t.display().to_string());
                let dest = out.current;
                info!(channel = %self.id, output = %out.id, uri = %shown, destination = dest, file = target.as_deref().unwrap_or(""), restarts = out.restarts, "output started");
                // Start on a keyframe: ask the encoders for one now.
                if let Some(now) = self
                    .core
                    .as_ref()
                    .and_then(|c| c.pipeline.current_running_time())
                {
                    self.request_keyframes(now);
                }
            }
            Err(e) => self.output_failed(o, &format!("{e:#}")),
        }
    }

    fn output_failed(&mut self, o: usize, why: &str) {
        self.drill_saw_output(o, false);
        self.outputs[o].down_since.get_or_insert_with(Instant::now);
        self.emit(ChannelEvent::OutputStateChanged {
            id: self.outputs[o].id.clone(),
            state: "waiting".into(),
        });
        self.take_down_output(o);
        let out = &mut self.outputs[o];
        out.restarts += 1;
        out.fails += 1;
        // Too many failures in a row: the next destination, at once.
        if out.dests.len() > 1 && out.fails >= out.failover_after {
            let from = out.current;
            out.current = (out.current + 1) % out.dests.len();
            out.fails = 0;
            out.on_dest = Instant::now();
            out.backoff.reset();
            let delay = out.backoff.fail();
            out.phase = Phase::Waiting {
                until: Instant::now() + delay,
            };
            warn!(channel = %self.id, output = %out.id, reason = why, from = from, to = out.current,
                uri = %out.dests[out.current].1, "output failed; moving to the next destination");
            return;
        }
        let delay = out.backoff.fail();
        out.phase = Phase::Waiting {
            until: Instant::now() + delay,
        };
        warn!(channel = %self.id, output = %out.id, reason = why, retry_in = %fmt_duration(delay), "output failed; restarting");
    }

    /// Rebuilds input `i` now (an operator asked): no backoff.
    pub(super) fn restart_input(&mut self, i: usize) {
        let input = &mut self.inputs[i];
        input.gen += 1;
        if let Some(p) = input.pipeline.take() {
            teardown(p);
        }
        self.start_input(i);
    }

    /// Rebuilds output `o` now (an operator asked): no backoff.
    pub(super) fn restart_output(&mut self, o: usize) {
        self.take_down_output(o);
        self.start_output(o);
    }

    /// Stops output `o`'s pipeline and its feed; whatever the torn-down
    /// pipeline still posts is stale from now.
    fn take_down_output(&mut self, o: usize) {
        let out = &mut self.outputs[o];
        if let Some(f) = &out.feed {
            self.output_bytes_done[o] += f.bytes.load(Ordering::Relaxed);
        }
        self.fanout.remove(feed_key(o, out.gen));
        out.gen += 1;
        out.feed = None;
        if let Some(p) = out.pipeline.take() {
            teardown(p);
        }
    }

    /// On a backup destination for `retry_primary`: try the primary again.
    fn retry_primary(&mut self, o: usize) {
        self.take_down_output(o);
        let out = &mut self.outputs[o];
        out.current = 0;
        out.fails = 0;
        out.on_dest = Instant::now();
        info!(channel = %self.id, output = %out.id, uri = %out.dests[0].1, "trying the primary destination again");
        self.start_output(o);
    }

    fn check_outputs(&mut self) {
        let now = Instant::now();
        for o in 0..self.outputs.len() {
            if let Some(since) = self.outputs[o].down_since {
                if since.elapsed() >= self.output_grace {
                    let id = self.outputs[o].id.clone();
                    let summary = format!(
                        "{}: output {id} down for {} ({})",
                        self.id,
                        fmt_duration(since.elapsed()),
                        self.outputs[o].dests[self.outputs[o].current].1
                    );
                    self.alert("output-down", &id, true, summary);
                }
            }
            let out = &mut self.outputs[o];
            match out.phase {
                Phase::Waiting { until } if now >= until => self.start_output(o),
                Phase::Starting { since } | Phase::Live { since } => {
                    let bytes = out
                        .feed
                        .as_ref()
                        .map_or(0, |f| f.bytes.load(Ordering::Relaxed));
                    if bytes != out.progress.0 {
                        out.progress = (bytes, now);
                        if matches!(out.phase, Phase::Starting { .. }) {
                            out.phase = Phase::Live { since };
                            let id = out.id.clone();
                            self.emit(ChannelEvent::OutputStateChanged {
                                id,
                                state: "live".into(),
                            });
                            self.drill_saw_output(o, true);
                            if self.outputs[o].down_since.take().is_some() {
                                let id = self.outputs[o].id.clone();
                                let summary = format!("{}: output {id} delivers again", self.id);
                                self.alert("output-down", &id, false, summary);
                            }
                            continue;
                        }
                    }
                    let limit = if out.progress.0 == 0 {
                        out.start_grace
                    } else {
                        OUTPUT_STALL
                    };
                    if now.duration_since(out.progress.1) > limit {
                        let why = format!(
                            "the destination accepted no data for {}",
                            fmt_duration(limit)
                        );
                        self.output_failed(o, &why);
                    } else if since.elapsed() >= OUTPUT_STABLE
                        && (out.backoff.failures() > 0 || out.fails > 0)
                    {
                        out.backoff.reset();
                        out.fails = 0;
                    } else if out.current != 0
                        && matches!(out.phase, Phase::Live { .. })
                        && out.on_dest.elapsed() >= out.retry_primary
                    {
                        self.retry_primary(o);
                    }
                }
                _ => {}
            }
        }
    }

    fn handle(&mut self, ev: Event) {
        use gst::MessageView as V;
        let current = match ev.origin {
            Origin::Channel => self.core_gen,
            Origin::Input(i) => self.inputs[i].gen,
            Origin::Output(o) => self.outputs[o].gen,
            Origin::Encoder(r, i) => self.renditions[r].instances[i].gen,
        };
        let fresh = ev.gen == current;
        let who = match ev.origin {
            Origin::Channel => ("channel", String::new()),
            Origin::Input(i) => ("input", self.inputs[i].id.clone()),
            Origin::Output(o) => ("output", self.outputs[o].id.clone()),
            Origin::Encoder(r, i) => (
                "encoder",
                format!(
                    "{}.{}",
                    self.renditions[r].id,
                    if i == 0 { "primary" } else { "backup" }
                ),
            ),
        };
        match ev.msg.view() {
            V::Error(e) => {
                let path = element_path(&ev.msg);
                let dbg = uri::redact_text(&e.debug().map(|d| d.to_string()).unwrap_or_default());
                let text = uri::redact_text(&e.error().to_string());
                error!(channel = %self.id, kind = who.0, id = %who.1, element = %path, debug = %dbg, "{text}");
                if let Origin::Input(i) = ev.origin {
                    self.counters.input_decode_errors[i] += 1;
                }
                if fresh {
                    let why = error_reason(&ev.msg).unwrap_or_else(|| format!("{text} ({path})"));
                    match ev.origin {
                        Origin::Input(i) => self.input_failed(i, &why),
                        Origin::Output(o) => self.output_failed(o, &why),
                        Origin::Encoder(r, i) => self.instance_failed(r, i, &why),
                        Origin::Channel => self.core_failed(&why),
                    }
                }
            }
            V::Warning(w) => {
                let path = element_path(&ev.msg);
                let text = uri::redact_text(&w.error().to_string());
                warn!(channel = %self.id, kind = who.0, id = %who.1, element = %path, "{text}");
                if let Origin::Input(i) = ev.origin {
                    self.counters.input_decode_errors[i] += 1;
                }
            }
            V::Eos(_) if fresh => match ev.origin {
                Origin::Input(i) if self.inputs[i].looped => {
                    if let Some(p) = &self.inputs[i].pipeline {
                        debug!(channel = %self.id, input = %self.inputs[i].id, "looping");
                        if p.seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
                            .is_err()
                        {
                            self.input_failed(i, "end of stream, and seeking back failed");
                        }
                    }
                }
                Origin::Input(i) => self.input_failed(i, "end of stream"),
                Origin::Output(o) => self.output_failed(o, "end of stream"),
                Origin::Encoder(..) | Origin::Channel => {}
            },
            V::Latency(_) => {
                let p = match ev.origin {
                    Origin::Channel => self.core.as_ref().map(|c| &c.pipeline),
                    Origin::Input(i) => self.inputs[i].pipeline.as_ref(),
                    Origin::Output(o) => self.outputs[o].pipeline.as_ref(),
                    Origin::Encoder(r, i) => self.encoder_pipeline(r, i),
                };
                if let (true, Some(p)) = (fresh, p) {
                    let _ = p.recalculate_latency();
                }
            }
            V::Application(a) if fresh && a.structure().is_some_and(|s| s.name() == FIRST_DATA) => {
                self.check_inputs();
            }
            V::Application(a) if fresh && a.structure().is_some_and(|s| s.name() == SRT_CALLER) => {
                if let (Origin::Input(i), Some(s)) = (ev.origin, a.structure()) {
                    self.srt_caller(i, s);
                }
            }
            V::Element(e) if fresh => {
                if let Some(s) = e.structure() {
                    self.element_message(&ev.msg, s);
                }
            }
            _ => {}
        }
    }

    fn input_of_pad(&self, pad: Option<&str>) -> Option<usize> {
        pad?.strip_prefix("sink_")?
            .parse::<usize>()
            .ok()
            .filter(|i| *i < self.inputs.len())
    }

    fn element_message(&mut self, msg: &gst::Message, s: &gst::StructureRef) {
        let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
        match s.name().as_str() {
            // The video switch speaks for the pair: they cut together.
            "nonstop-switch" if src == "vswitch" => {
                let from =
                    self.input_of_pad(s.get::<Option<String>>("from").ok().flatten().as_deref());
                let to = self.input_of_pad(s.get::<Option<String>>("to").ok().flatten().as_deref());
                let reason = s.get::<String>("reason").unwrap_or_default();
                let stalled = s.get::<u64>("stall-duration").unwrap_or(0);
                let holdoff = s.get::<u64>("return-holdoff").unwrap_or(0);
                let name =
                    |i: Option<usize>| i.map_or("none".to_owned(), |i| self.inputs[i].id.clone());
                let line = format!("switched {} → {}", name(from), name(to));
                if to.is_none() || reason == "stall" || reason == "all-lost" {
                    // holdoff_ms: how long the input left must now be clean
                    // before the channel returns to it (flap damping).
                    warn!(channel = %self.id, from = %name(from), to = %name(to), reason = %reason, stalled_ms = stalled / 1_000_000, holdoff_ms = holdoff / 1_000_000, "{line}");
                } else {
                    info!(channel = %self.id, from = %name(from), to = %name(to), reason = %reason, "{line}");
                }
                self.switches += 1;
                let (from_name, to_name) = (name(from), name(to));
                self.note_event(format!("switched {from_name} → {to_name} ({reason})"));
                *self
                    .counters
                    .switches_by_reason
                    .entry(reason.clone())
                    .or_default() += 1;
                let primary = self.inputs[0].id.clone();
                if from == Some(0) && to != Some(0) && reason != "manual" {
                    let summary =
                        format!("{}: {primary} failed ({reason}); {to_name} on air", self.id);
                    self.alert("failover", &self.id.clone(), true, summary);
                } else if to == Some(0) {
                    let summary = format!("{}: back on {primary}", self.id);
                    self.alert("failover", &self.id.clone(), false, summary);
                }
                self.emit(ChannelEvent::InputSwitched {
                    from: from.map(|i| self.inputs[i].id.clone()).unwrap_or_default(),
                    to: to.map(|i| self.inputs[i].id.clone()).unwrap_or_default(),
                    reason,
                });
                self.active = to;
                self.drill_saw_switch(from, to);
                self.publish_status();
                self.publish_snapshot();
            }
            // An input off air had a hole too short to stall it: its clean
            // window, which its return waits on, starts over.
            "nonstop-input" if s.get::<&str>("state").ok() == Some("interrupted") => {
                let Some(idx) = self.input_of_pad(s.get::<&str>("pad").ok()) else {
                    return;
                };
                let gap = s.get::<u64>("gap").unwrap_or(0) / 1_000_000;
                let media = src.strip_suffix("switch").unwrap_or(&src);
                info!(channel = %self.id, input = %self.inputs[idx].id, media, gap_ms = gap, "input interrupted; its return waits again");
            }
            "nonstop-alarm" => {
                let mut parts = src.split('_');
                let (Some("watchdog"), Some(i), Some(media)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return;
                };
                let Some(idx) = i.parse::<usize>().ok().filter(|i| *i < self.inputs.len()) else {
                    return;
                };
                let input = &self.inputs[idx];
                let kind = s.get::<String>("kind").unwrap_or_default();
                let state = s.get::<String>("state").unwrap_or_default();
                let raised = state == "raised";
                if raised {
                    warn!(channel = %self.id, input = %input.id, media, alarm = %kind, "alarm raised");
                } else {
                    let lasted = s.get::<u64>("duration").unwrap_or(0);
                    info!(channel = %self.id, input = %input.id, media, alarm = %kind, lasted_ms = lasted / 1_000_000, "alarm cleared");
                }
                let target = format!("{}:{media}", input.id);
                self.note_alarm(idx, media, &kind, raised);
                if raised {
                    *self.counters.input_alarms[idx]
                        .entry(kind.clone())
                        .or_default() += 1;
                }
                self.emit(ChannelEvent::Alarm {
                    target,
                    kind,
                    raised,
                });
                if raised {
                    self.drill_saw_input(idx);
                }
                self.publish_snapshot();
            }
            "missing-plugin" => {
                let text = uri::redact_text(&s.to_string());
                warn!(channel = %self.id, element = %element_path(msg), "a GStreamer plugin is missing: {text}");
            }
            _ => {}
        }
    }

    /// The channel pipeline failed (an encoder error): rebuild all of it,
    /// after a backoff so a persistent fault does not spin.
    fn core_failed(&mut self, why: &str) {
        self.shutdown_now();
        let delay = self.core_backoff.fail();
        self.core_retry = Some(Instant::now() + delay);
        error!(channel = %self.id, reason = why, retry_in = %fmt_duration(delay), "channel pipeline failed; rebuilding the channel");
    }

    fn check_core(&mut self) {
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
    fn shutdown_now(&mut self) {
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

    fn publish_status(&mut self) {
        let inputs_live = self
            .inputs
            .iter()
            .filter(|i| matches!(i.phase, Phase::Live { .. }))
            .count();
        // Starting counts as up: only a failed output degrades the channel.
        let outputs_up = self
            .outputs
            .iter()
            .filter(|o| matches!(o.phase, Phase::Live { .. } | Phase::Starting { .. }))
            .count();
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let state = match self.active {
            None if status.state == "starting" => "starting",
            None => "off-air",
            Some(i) if matches!(self.inputs[i].kind, InputKind::Slate(_)) => "off-air",
            Some(i) if i > 0 || outputs_up < self.outputs.len() => "degraded",
            Some(_) => "on-air",
        };
        let next = Status {
            state,
            active: self.active.map(|i| self.inputs[i].id.clone()),
            inputs_live,
            inputs: self.inputs.len(),
            outputs_up,
            outputs: self.outputs.len(),
            encoders: self
                .renditions
                .iter()
                .map(|r| format!("{} {}", r.id, r.on_air()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let (old, new) = (status.state, next.state);
        if new != old {
            let line = format!("channel {new}");
            if new == "on-air" {
                info!(channel = %self.id, state = new, "{line}");
            } else {
                warn!(channel = %self.id, state = new, "{line}");
            }
        }
        let on_air = next.active.clone();
        *status = next;
        drop(status);
        if new != old && (new == "off-air" || old == "off-air") {
            let id = self.id.clone();
            let summary = match (new == "off-air", on_air) {
                (true, Some(slate)) => format!("{id}: off air, the slate ({slate}) is on air"),
                (true, None) => format!("{id}: off air, nothing on air (black)"),
                (false, Some(input)) => format!("{id}: back on air with {input}"),
                (false, None) => format!("{id}: {new}"),
            };
            self.alert("off-air", &id, new == "off-air", summary);
        }
    }

    /// Where this channel's alerts go, and how long an output may be down
    /// before it is alerted.
    pub fn set_alerts(&mut self, alerts: crate::alerts::Alerts, output_grace: Duration) {
        self.alerts = alerts;
        self.output_grace = output_grace;
    }

    /// Raises or clears an alert once (a repeat of the same state is not
    /// sent): webhooks, the log, and the D-Bus `Alarm` signal.
    fn alert(&mut self, kind: &str, target: &str, raised: bool, summary: String) {
        let key = (kind.to_owned(), target.to_owned());
        let changed = if raised {
            self.raised.insert(key)
        } else {
            self.raised.remove(&key)
        };
        if !changed {
            return;
        }
        self.note_event(summary.clone());
        self.emit(ChannelEvent::Alarm {
            target: target.to_owned(),
            kind: kind.to_owned(),
            raised,
        });
        self.alerts.send(crate::alerts::Alert {
            channel: self.id.clone(),
            target: target.to_owned(),
            kind: kind.to_owned(),
            raised,
            time_us: nonstop_api::now_us(),
            summary,
        });
    }

    /// Keeps `text` among the status page's recent events.
    fn note_event(&mut self, text: String) {
        self.recent.push_front((nonstop_api::now_us(), text));
        self.recent.truncate(20);
    }

    /// Every 2 s: the latest frame of each input and of the output, for
    /// the status page (a reference to a buffer each; encoding happens
    /// only when a thumbnail is asked for).
    fn refresh_thumbs(&mut self) {
        if self
            .thumbs_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(2))
        {
            return;
        }
        self.thumbs_at = Some(Instant::now());
        let mut map = std::collections::BTreeMap::new();
        for input in &self.inputs {
            if let Some(s) = input.stats.thumb.lock().ok().and_then(|t| t.clone()) {
                map.insert(input.id.clone(), s);
            }
        }
        if let Some(b) = self.taps.last_frame() {
            let caps = crate::ingest::video_caps(&self.cfg.video);
            map.insert(
                "program".to_owned(),
                gst::Sample::builder().buffer(&b).caps(&caps).build(),
            );
        }
        *self.thumbs.lock().unwrap_or_else(|e| e.into_inner()) = map;
    }

    /// Refreshes the counters published for metrics (once per tick; rates
    /// once per second).
    fn update_counters(&mut self) {
        let c = &mut self.counters;
        c.input_received_bytes = self
            .inputs
            .iter()
            .map(|i| i.stats.source_bytes.load(Ordering::Relaxed))
            .collect();
        let frames: Vec<u64> = self
            .inputs
            .iter()
            .map(|i| i.stats.video_frames.load(Ordering::Relaxed))
            .collect();
        let now = Instant::now();
        match &self.rate_base {
            Some((at, base)) if now.duration_since(*at) >= Duration::from_secs(1) => {
                let dt = now.duration_since(*at).as_secs_f64();
                c.input_bitrate_bps = c
                    .input_received_bytes
                    .iter()
                    .zip(base)
                    .map(|(b, (b0, _))| ((b.saturating_sub(*b0)) as f64 * 8.0 / dt) as u64)
                    .collect();
                c.input_fps_milli = frames
                    .iter()
                    .zip(base)
                    .map(|(f, (_, f0))| ((f.saturating_sub(*f0)) as f64 * 1000.0 / dt) as u64)
                    .collect();
                self.rate_base = Some((
                    now,
                    c.input_received_bytes.iter().copied().zip(frames).collect(),
                ));
            }
            Some(_) => {}
            None => {
                self.rate_base = Some((
                    now,
                    c.input_received_bytes.iter().copied().zip(frames).collect(),
                ))
            }
        }
        if let Some(sw) = self
            .core
            .as_ref()
            .and_then(|c| c.pipeline.by_name("vswitch"))
        {
            c.frames_emitted = sw.property::<u64>("frames-out");
            c.frames_repeated = sw.property::<u64>("frames-repeated");
            c.frames_black = sw.property::<u64>("frames-black");
        }
        c.encoder_frames = self
            .renditions
            .iter()
            .flat_map(|r| r.instances.iter())
            .map(|i| i.stats.frames.load(Ordering::Relaxed))
            .collect();
        c.output_bytes_total = self
            .outputs
            .iter()
            .zip(&self.output_bytes_done)
            .map(|(o, done)| {
                done + o
                    .feed
                    .as_ref()
                    .map_or(0, |f| f.bytes.load(Ordering::Relaxed))
            })
            .collect();
        c.output_connected_ms = self
            .outputs
            .iter()
            .map(|o| match o.phase {
                Phase::Live { since } => since.elapsed().as_millis() as u64,
                _ => 0,
            })
            .collect();
    }

    /// The earliest time a waiting input, output or encoder is due to be
    /// rebuilt.
    fn next_rebuild(&self) -> Option<Instant> {
        let waiting = |p: &Phase| match p {
            Phase::Waiting { until } => Some(*until),
            _ => None,
        };
        self.inputs
            .iter()
            .filter_map(|i| waiting(&i.phase))
            .chain(self.outputs.iter().filter_map(|o| waiting(&o.phase)))
            .chain(
                self.renditions
                    .iter()
                    .flat_map(|r| r.instances.iter())
                    .filter_map(|i| waiting(&i.phase)),
            )
            .chain(self.core_retry)
            .min()
    }

    /// Runs until `stop` turns true, then ends every stream cleanly.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.heartbeat
            .store(crate::monotonic_ns(), Ordering::Relaxed);
        let hang_at = injected_hang(&self.id).map(|after| Instant::now() + after);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A rebuild falls due between ticks: wake for it exactly.
            let due = self
                .next_rebuild()
                .unwrap_or_else(|| Instant::now() + TICK)
                .max(Instant::now() + Duration::from_millis(1));
            tokio::select! {
                Some(ev) = self.rx.recv() => self.handle(ev),
                Some(cmd) = self.commands.recv() => self.command(cmd),
                _ = tokio::time::sleep_until(due.into()) => {
                    self.check_core();
                    self.check_encoders();
                    self.check_inputs();
                    self.check_outputs();
                }
                _ = tick.tick() => {
                    if hang_at.is_some_and(|t| Instant::now() >= t) {
                        hang(&self.id);
                    }
                    self.heartbeat.store(crate::monotonic_ns(), Ordering::Relaxed);
                    self.check_core();
                    self.check_encoders();
                    self.check_inputs();
                    self.check_outputs();
                    self.check_drill();
                    self.publish_status();
                    self.update_counters();
                    self.refresh_thumbs();
                    self.publish_snapshot();
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
        self.finish().await;
    }

    /// EOS through encoders and muxers, so recordings and playlists are
    /// complete; waits for the outputs up to [`STOP_GRACE`].
    async fn finish(&mut self) {
        self.abort_drill("the channel stopped during the drill");
        info!(channel = %self.id, "stopping: ending the streams");
        let mut pending: Vec<usize> = (0..self.outputs.len())
            .filter(|o| self.outputs[*o].pipeline.is_some())
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
        info!(channel = %self.id, "channel stopped");
    }
}

fn feed_key(o: usize, gen: u64) -> u64 {
    ((o as u64) << 40) | (gen & ((1 << 40) - 1))
}
