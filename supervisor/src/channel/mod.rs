//! One channel: its channel pipeline (appsrcs → watchdogs → switch pair →
//! encoders → fan-out), its input and output pipelines, and the state
//! machine that keeps them running.
//!
//! Every pipeline's bus forwards its messages, tagged with who sent them
//! and which incarnation, into one queue; all decisions are taken here, in
//! the channel's task, never in a bus callback.
//!
//! One job per file, all of them `impl Channel` on the state held here:
//! `pipeline` (the channel pipeline, starting and stopping pipelines),
//! `inputs` and `outputs` (their lifecycles), `encoders` (the encoder
//! instances), `bus` (what the pipelines say, turned into decisions),
//! `state` (the channel state, the status line, alerts), `snapshot` (what
//! the outside reads), `command` (what operators ask), `drill` (failover
//! drills). The policies are pure and unit-tested: `failover` (output
//! destinations), `state::running_state`, `drill::verdict`.

mod bus;
mod command;
mod cues;
mod drill;
mod encoders;
mod failover;
mod fleet;
mod inputs;
mod links;
mod outputs;
mod pipeline;
mod snapshot;
mod state;

pub use command::{parse_mode, Command, CtlError, Reply};
pub use cues::{check_cue_duration, parse_cue_kind, CueAt};
pub use drill::{check_drill_duration, parse_drill_kind, DrillKind, DrillReport};
pub use fleet::{Role, Seat};
pub use pipeline::TEST_HANG;
pub use snapshot::{
    ChannelEvent, Counters, EncoderRow, InputRow, LinkRow, Loudness, OutputRow, Snapshot,
};
pub use state::{ChannelState, Status};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

use crate::backoff::Backoff;
use crate::config;
use crate::encode::probe::Choice;
use crate::ingest::InputStats;
use crate::output::Fanout;
use crate::uri::{self, InputKind, OutputKind};
use encoders::{Rendition, Taps};
use inputs::Input;
use outputs::Output;
use pipeline::{hang, injected_hang, Core};

/// How often the state machine looks at data flow and timers.
const TICK: Duration = Duration::from_millis(100);

/// Latest frames of a channel by input id (and `program`), for the status
/// page.
pub type Thumbs = Arc<Mutex<std::collections::BTreeMap<String, gst::Sample>>>;
/// A freshly (re)started input gets this long (at least `stall_timeout`)
/// to deliver its first frame: connecting, probing and decoding take time.
pub const START_GRACE: Duration = Duration::from_secs(5);
/// An output whose destination accepts no data for this long is rebuilt;
/// one delivering this long has its failures forgiven.
pub use failover::{STABLE as OUTPUT_STABLE, STALL as OUTPUT_STALL};
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
    /// Built and held in READY: a fleet standby's output, which sends
    /// nothing until this box leads the channel.
    Held,
}

/// What the daemon keeps of a running channel.
pub struct Handle {
    pub id: String,
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
    /// The one-line status; its state is the channel's running state.
    status: Status,
    heartbeat: Arc<AtomicU64>,
    commands: mpsc::UnboundedReceiver<Command>,
    snap_tx: watch::Sender<Snapshot>,
    events: broadcast::Sender<ChannelEvent>,
    /// Per input: raised alarms (`media:kind`).
    alarms: Vec<std::collections::BTreeSet<String>>,
    /// Input changes seen on the video switch.
    switches: u64,
    drill: Option<drill::Drill>,
    /// Stopped on request (D-Bus `Stop`): stays off until `Start`.
    stopped: bool,
    /// Counters published for metrics, and what the rates are taken from.
    counters: Counters,
    rate_base: Option<(Instant, Vec<(u64, u64)>)>,
    /// The SRT links of its inputs and outputs, and the instant their
    /// judges count seconds from; when they were last read.
    links: Vec<links::Link>,
    links_epoch: Instant,
    links_read: Option<Instant>,
    /// The last loudness reading of each input, then of the programme,
    /// and when it came (a stale one is not shown).
    loudness: Vec<Option<(Instant, snapshot::Loudness)>>,
    /// Bytes of output runs that ended (the total goes on across restarts).
    output_bytes_done: Vec<u64>,
    /// Video frames of output runs that ended.
    output_frames_done: Vec<u64>,
    /// Per output: when its current delivery started (as `Phase::Live`
    /// has it, and as ms since the Unix epoch).
    output_live_at: Vec<Option<(Instant, u64)>>,
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
    /// Its seat in the fleet (`None`: runs alone, as without `[fleet]`).
    fleet: Option<fleet::FleetPart>,
    /// SCTE-35 cues not yet sent, and the next splice_event_id.
    cues: cues::Cues,
}

fn make(factory: &str, name: &str) -> anyhow::Result<gst::Element> {
    crate::element::make(factory, Some(name))
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

use crate::config::fmt_duration;

impl Channel {
    /// Builds the channel; nothing runs until [`Channel::run`].
    /// `choices`: per encoder, the backend of each instance (primary, and
    /// backup with redundancy), as [`crate::encode::resolve`] picked them.
    pub fn new(cfg: config::Channel, choices: Vec<Vec<Choice>>) -> (Channel, Handle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = cfg.id.get_ref().clone();
        let backoff = Backoff::new(cfg.backoff.initial, cfg.backoff.max);
        let now = Instant::now();
        let inputs: Vec<Input> = cfg
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
                let count = dests.len();
                outputs.push(Output {
                    id,
                    dests,
                    policy: failover::Destinations::new(
                        count,
                        o.failover_after,
                        o.retry_primary,
                        now,
                    ),
                    renditions: renditions.clone(),
                    start_grace,
                    down_since: None,
                    pipeline: None,
                    errors: None,
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
        let status = Status {
            state: ChannelState::Starting,
            active: None,
            inputs_live: 0,
            inputs: cfg.inputs.len(),
            outputs_up: 0,
            outputs: outputs.len(),
            encoders: String::new(),
        };
        let heartbeat = Arc::new(AtomicU64::new(crate::monotonic_ns()));
        let n_outputs = outputs.len();
        let links = links::links_of(
            &inputs
                .iter()
                .map(|i: &Input| i.kind.clone())
                .collect::<Vec<_>>(),
            &outputs
                .iter()
                .map(|o: &Output| o.dests.iter().map(|(k, _)| k.clone()).collect())
                .collect::<Vec<_>>(),
        );
        let thumbs: Thumbs = Default::default();
        let n_inputs = cfg.inputs.len();
        let (cmd_tx, commands) = mpsc::unbounded_channel();
        let (snap_tx, snapshot) = watch::channel(Snapshot {
            status: status.clone(),
            ..Snapshot::default()
        });
        let (events, _) = broadcast::channel(256);
        let alarms: Vec<std::collections::BTreeSet<String>> =
            vec![Default::default(); cfg.inputs.len()];
        let handle = Handle {
            id: id.clone(),
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
                loudness: vec![None; n_inputs + 1],
                links,
                links_epoch: now,
                links_read: None,
                output_bytes_done: vec![0; n_outputs],
                output_frames_done: vec![0; n_outputs],
                output_live_at: vec![None; n_outputs],
                alerts: crate::alerts::Alerts::default(),
                raised: Default::default(),
                output_grace: Duration::from_secs(10),
                recent: Default::default(),
                thumbs: thumbs.clone(),
                thumbs_at: None,
                fleet: None,
                cues: cues::Cues::default(),
            },
            handle,
        )
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
                    self.tick_cues();
                    self.update_status();
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
}
