//! The output lifecycle: each output's own pipeline fed by the fan-out,
//! watched for progress, rebuilt with backoff, moved between its
//! destinations by the policy in `failover`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;
use tracing::{info, warn};

use super::failover::{AfterFailure, Destinations, Progress, WhileUp};
use super::pipeline::{forward, start, teardown, Held};
use super::{fmt_duration, Channel, ChannelEvent, Origin, Phase};
use crate::backoff::Backoff;
use crate::output::{self, Feed};
use crate::uri::OutputKind;

pub(super) struct Output {
    pub(super) id: String,
    /// Destinations: the primary, then the backups (failover mode).
    pub(super) dests: Vec<(OutputKind, String)>,
    /// Which one is in use, and when to move.
    pub(super) policy: Destinations,
    /// Indices of the renditions it carries.
    pub(super) renditions: Vec<usize>,
    /// Since when it has been failing (not delivering); for alerts.
    pub(super) down_since: Option<Instant>,
    /// How long it may wait for its first data after a start: its
    /// renditions' keyframe interval and delay line on top of the usual.
    pub(super) start_grace: Duration,
    pub(super) pipeline: Option<gst::Pipeline>,
    /// A held output's error collector, for when it is let play.
    pub(super) errors: Option<Held>,
    pub(super) feed: Option<Arc<Feed>>,
    pub(super) gen: u64,
    pub(super) phase: Phase,
    pub(super) progress: (u64, Instant),
    pub(super) backoff: Backoff,
    pub(super) restarts: u64,
}

impl Output {
    /// The destination in use, as shown (redacted).
    pub(super) fn shown(&self) -> &str {
        &self.dests[self.policy.current()].1
    }
}

impl Channel {
    /// What an output needs to know of the channel's audio tracks.
    pub(super) fn audio_outs(&self) -> Vec<output::AudioOut> {
        self.cfg
            .audio
            .iter()
            .map(|t| output::AudioOut {
                id: t.id.clone(),
                language: t.language.as_deref().and_then(crate::config::iso639_2b),
                bitrate: u64::from(t.format.bitrate) * 1000,
            })
            .collect()
    }

    /// What an output needs to know of the renditions it carries.
    pub(super) fn rendition_infos(&self, list: &[usize]) -> Vec<output::Rendition> {
        list.iter()
            .filter_map(|&r| {
                let ren = self.renditions.get(r)?;
                Some(output::Rendition {
                    index: r,
                    id: ren.id.clone(),
                    parser: ren.instances.first()?.choice.plan.parser,
                    size: ren.size,
                    // The variant's own audio: the first track (the
                    // others are renditions of their own in HLS).
                    bandwidth: (ren.cfg.video_bitrate as u64
                        + self.cfg.audio[0].format.bitrate as u64)
                        * 1000,
                    codecs: crate::encode::codecs_string(
                        &ren.cfg,
                        ren.size,
                        self.cfg.video.framerate,
                    ),
                    frame: 1_000_000_000 * u64::from(self.cfg.video.framerate.1.max(1))
                        / u64::from(self.cfg.video.framerate.0.max(1)),
                })
            })
            .collect()
    }

    pub(super) fn start_output(&mut self, o: usize) {
        if self.core.is_none() {
            return;
        }
        self.emit(ChannelEvent::OutputStateChanged {
            id: self.outputs[o].id.clone(),
            state: "starting".into(),
        });
        let infos = self.rendition_infos(&self.outputs[o].renditions);
        let fence = self.fence();
        if self.holds_outputs() {
            return self.hold_output(o, &infos, fence);
        }
        let audio = self.audio_outs();
        let out = &mut self.outputs[o];
        out.gen += 1;
        let name = format!("{}.output.{}", self.id, out.id);
        let (kind, shown) = out.dests[out.policy.current()].clone();
        let result = output::build(
            &name,
            &kind,
            &infos,
            &audio,
            fence.as_ref(),
            self.fleet.is_some(),
        )
        .and_then(|egress| {
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
                let dest = out.policy.current();
                info!(channel = %self.id, event = "output-started", output = %out.id, uri = %shown, destination = dest, file = target.as_deref().unwrap_or(""), restarts = out.restarts, "output started");
                // Start on a keyframe: ask the encoders for one now.
                self.keyframe_now();
            }
            Err(e) => self.output_failed(o, &format!("{e:#}")),
        }
    }

    /// Asks the encoders for a keyframe now: an output starts on one.
    fn keyframe_now(&self) {
        if let Some(now) = self
            .core
            .as_ref()
            .and_then(|c| c.pipeline.current_running_time())
        {
            self.request_keyframes(now);
        }
    }

    /// A fleet standby's output: built, checked, and held in READY (no
    /// connection made, nothing sent) until this box leads.
    fn hold_output(
        &mut self,
        o: usize,
        infos: &[output::Rendition],
        fence: Option<Arc<output::Fence>>,
    ) {
        let epoch = self.fleet.is_some();
        let audio = self.audio_outs();
        let out = &mut self.outputs[o];
        out.gen += 1;
        let name = format!("{}.output.{}", self.id, out.id);
        let (kind, _) = out.dests[out.policy.current()].clone();
        let result =
            output::build(&name, &kind, infos, &audio, fence.as_ref(), epoch).and_then(|egress| {
                let errors = forward(&egress.pipeline, &self.tx, Origin::Output(o), out.gen);
                out.pipeline = Some(egress.pipeline.clone());
                egress
                    .pipeline
                    .set_state(gst::State::Ready)
                    .map_err(|_| anyhow::anyhow!("the output pipeline did not reach READY"))?;
                out.errors = Some(errors);
                out.feed = Some(egress.feed);
                Ok(())
            });
        match result {
            Ok(()) => {
                out.phase = Phase::Held;
                self.emit(ChannelEvent::OutputStateChanged {
                    id: self.outputs[o].id.clone(),
                    state: "held".into(),
                });
            }
            Err(e) => self.output_failed(o, &format!("{e:#}")),
        }
    }

    /// This box leads now: a held output plays, from the next keyframe,
    /// which is asked for at once.
    pub(super) fn release_output(&mut self, o: usize) {
        let out = &mut self.outputs[o];
        if !out.phase.held() {
            return;
        }
        let (Some(pipeline), Some(feed)) = (out.pipeline.clone(), out.feed.clone()) else {
            return self.start_output(o);
        };
        let errors = out.errors.take().unwrap_or_default();
        let started = start(&pipeline, &errors, &self.tx, Origin::Output(o), out.gen);
        out.phase = Phase::Starting {
            since: Instant::now(),
        };
        out.progress = (0, Instant::now());
        match started {
            Ok(()) => {
                self.fanout.add(feed_key(o, out.gen), feed);
                info!(channel = %self.id, event = "output-released", output = %out.id, uri = %out.shown(), "output released: this box leads");
                self.emit(ChannelEvent::OutputStateChanged {
                    id: self.outputs[o].id.clone(),
                    state: "starting".into(),
                });
                self.keyframe_now();
            }
            Err(e) => self.output_failed(o, &format!("{e:#}")),
        }
    }

    pub(super) fn output_failed(&mut self, o: usize, why: &str) {
        self.drill_saw_output(o, false);
        self.outputs[o].down_since.get_or_insert_with(Instant::now);
        self.emit(ChannelEvent::OutputStateChanged {
            id: self.outputs[o].id.clone(),
            state: "waiting".into(),
        });
        self.take_down_output(o);
        let out = &mut self.outputs[o];
        out.restarts += 1;
        // Too many failures in a row: the next destination, at once.
        if let AfterFailure::Move { from, to } = out.policy.failed(Instant::now()) {
            out.backoff.reset();
            let delay = out.backoff.fail();
            out.phase = Phase::Waiting {
                until: Instant::now() + delay,
            };
            warn!(channel = %self.id, event = "output-failover", output = %out.id, reason = why, from = from, to = to,
                uri = %out.dests[to].1, "output failed; moving to the next destination");
            return;
        }
        let delay = out.backoff.fail();
        out.phase = Phase::Waiting {
            until: Instant::now() + delay,
        };
        warn!(channel = %self.id, event = "output-failed", output = %out.id, reason = why, retry_in = %fmt_duration(delay), "output failed; restarting");
    }

    /// Rebuilds output `o` now (an operator asked): no backoff.
    pub(super) fn restart_output(&mut self, o: usize) {
        self.take_down_output(o);
        self.start_output(o);
    }

    /// Stops output `o`'s pipeline and its feed; whatever the torn-down
    /// pipeline still posts is stale from now.
    pub(super) fn take_down_output(&mut self, o: usize) {
        let out = &mut self.outputs[o];
        if let Some(f) = &out.feed {
            self.output_bytes_done[o] += f.bytes.load(Ordering::Relaxed);
            self.output_frames_done[o] += f.frames.load(Ordering::Relaxed);
        }
        self.fanout.remove(feed_key(o, out.gen));
        out.gen += 1;
        out.feed = None;
        out.errors = None;
        if let Some(p) = out.pipeline.take() {
            teardown(p);
        }
    }

    /// On a backup destination for `retry_primary`: try the primary again
    /// (the policy has moved it back already).
    pub(super) fn retry_primary(&mut self, o: usize) {
        self.take_down_output(o);
        let out = &self.outputs[o];
        info!(channel = %self.id, output = %out.id, uri = %out.dests[0].1, "trying the primary destination again");
        self.start_output(o);
    }

    pub(super) fn check_outputs(&mut self) {
        let now = Instant::now();
        for o in 0..self.outputs.len() {
            if let Some(since) = self.outputs[o].down_since {
                if since.elapsed() >= self.output_grace {
                    let id = self.outputs[o].id.clone();
                    let summary = format!(
                        "{}: output {id} down for {} ({})",
                        self.id,
                        fmt_duration(since.elapsed()),
                        self.outputs[o].shown()
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
                    let progress = Progress {
                        live: matches!(out.phase, Phase::Live { .. }),
                        up_since: since,
                        last_progress: out.progress.1,
                        sent_any: out.progress.0 != 0,
                        start_grace: out.start_grace,
                        backoff_failing: out.backoff.failures() > 0,
                    };
                    match out.policy.while_up(progress, now) {
                        WhileUp::Stalled { limit } => {
                            let why = format!(
                                "the destination accepted no data for {}",
                                fmt_duration(limit)
                            );
                            self.output_failed(o, &why);
                        }
                        WhileUp::Stable => out.backoff.reset(),
                        WhileUp::RetryPrimary => self.retry_primary(o),
                        WhileUp::Nothing => {}
                    }
                }
                _ => {}
            }
        }
    }
}

pub(super) fn feed_key(o: usize, gen: u64) -> u64 {
    ((o as u64) << 40) | (gen & ((1 << 40) - 1))
}
