//! The input lifecycle: each input's own pipeline feeding its bridge into
//! the channel pipeline, started, watched for data, rebuilt with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::pipeline::{forward, start, teardown};
use super::{fmt_duration, Channel, ChannelEvent, Event, Origin, Phase, START_GRACE};
use crate::backoff::Backoff;
use crate::ingest::{self, InputStats};
use crate::srtin;
use crate::uri::{self, InputKind};

/// Application message that the bridge of an input posts (straight into
/// the channel's queue) when its first real buffer arrives.
pub(super) const FIRST_DATA: &str = "nonstop-first-data";

/// Application message carrying an SRT listener's [`srtin::CallerEvent`].
pub(super) const SRT_CALLER: &str = "nonstop-srt-caller";

pub(super) fn caller_message(ev: srtin::CallerEvent) -> gst::Message {
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

pub(super) struct Input {
    pub(super) id: String,
    pub(super) shown: String,
    pub(super) kind: InputKind,
    pub(super) stats: Arc<InputStats>,
    pub(super) pipeline: Option<gst::Pipeline>,
    pub(super) looped: bool,
    pub(super) gen: u64,
    pub(super) phase: Phase,
    pub(super) started_ns: u64,
    pub(super) backoff: Backoff,
    pub(super) restarts: u64,
    pub(super) lost_at: Option<Instant>,
    /// An SRT listener input's socket, kept across its pipeline's rebuilds.
    pub(super) srt: Option<srtin::Listener>,
}

impl Channel {
    /// Input `i` found its audio streams: log which feeds which track,
    /// and raise `audio-<track>:missing` for each track it lacks (clear it
    /// for one it has again, after a restart).
    pub(super) fn input_tracks(&mut self, i: usize, s: &gst::StructureRef) {
        let missing: Vec<usize> = s
            .get::<String>("missing")
            .unwrap_or_default()
            .split(',')
            .filter_map(|k| k.parse().ok())
            .collect();
        let mapping = s.get::<String>("mapping").unwrap_or_default();
        let input = self.inputs[i].id.clone();
        info!(channel = %self.id, input = %input, "audio tracks: {mapping}");
        for k in 0..self.cfg.audio.len() {
            let media = super::pipeline::track_label(&self.cfg.audio, k);
            let raised = missing.contains(&k);
            let was = self.alarms[i].contains(&format!("{media}:missing"));
            if raised == was {
                continue;
            }
            if raised {
                warn!(channel = %self.id, event = "alarm-raised", input = %input, media = %media, alarm = "missing",
                    "input {input} has no stream for audio track {}: it gets silence", self.cfg.audio[k].id);
                *self.counters.input_alarms[i]
                    .entry("missing".to_owned())
                    .or_default() += 1;
            } else {
                info!(channel = %self.id, event = "alarm-cleared", input = %input, media = %media, alarm = "missing",
                    "input {input} has a stream for audio track {} again", self.cfg.audio[k].id);
            }
            self.note_alarm(i, &media, "missing", raised);
            self.emit(ChannelEvent::Alarm {
                target: format!("{input}:{media}"),
                kind: "missing".to_owned(),
                raised,
            });
        }
        self.publish_snapshot();
    }

    pub(super) fn start_input(&mut self, i: usize) {
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
            &self
                .cfg
                .inputs
                .get(i)
                .map(|c| c.audio.clone())
                .unwrap_or_default(),
            &core.bridges[i],
            &input.stats,
            ingest::Carry {
                captions: self.cfg.captions,
                scte35: self.cfg.pass_scte35,
                index: i as u32,
            },
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

    pub(super) fn input_failed(&mut self, i: usize, why: &str) {
        self.input_down(i, why, false);
    }

    /// The input delivers nothing (`stalled`) or failed. A listening input
    /// (udp, srt listener, rtmp) that merely stalled is rebuilt at once, no
    /// backoff: waiting would only lose a returning sender's first
    /// packets; anything else waits out its backoff.
    pub(super) fn input_down(&mut self, i: usize, why: &str, stalled: bool) {
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
                warn!(channel = %self.id, event = "input-lost", input = %input.id, reason = why, "input lost; listening again");
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
            warn!(channel = %self.id, event = "input-lost", input = %input.id, reason = why, retry_in = %fmt_duration(delay), "input lost; restarting");
        } else {
            info!(channel = %self.id, event = "input-lost", input = %input.id, reason = why, retry_in = %fmt_duration(delay), "input not receiving; restarting");
        }
    }

    /// What an SRT listener input's socket saw. A caller that replaces an
    /// earlier one gets a fresh pipeline at once (its stream waits in the
    /// listener meanwhile): no stall to wait for, no backoff.
    pub(super) fn srt_caller(&mut self, i: usize, s: &gst::StructureRef) {
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

    pub(super) fn check_inputs(&mut self) {
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
                                info!(channel = %self.id, event = "input-receiving", input = %input.id, after = %fmt_duration(at.elapsed()), restarts = input.restarts, "input restored");
                                restored.push(input.id.clone());
                            }
                            None => {
                                info!(channel = %self.id, event = "input-receiving", input = %input.id, uri = %input.shown, startup = %fmt_duration(since.elapsed()), "input receiving")
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

    /// Rebuilds input `i` now (an operator asked): no backoff.
    pub(super) fn restart_input(&mut self, i: usize) {
        let input = &mut self.inputs[i];
        input.gen += 1;
        if let Some(p) = input.pipeline.take() {
            teardown(p);
        }
        self.start_input(i);
    }
}
