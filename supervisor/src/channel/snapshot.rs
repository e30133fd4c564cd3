//! What the outside reads of a channel: the snapshot published on every
//! change (D-Bus properties, metrics, the status page), its counters and
//! thumbnails, and the typed events.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::state::shown_state;
use super::{Channel, ChannelState, Phase, Status};

/// The rows of the read model are the control API's own: the snapshot
/// holds them as D-Bus, nonstopctl and the status page show them.
pub use nonstop_api::model::{EncoderRow, InputRow, LinkRow, OutputRow};

/// Counters for metrics, per input / encoder instance / output in config
/// order (rates are over the last second).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub input_received_bytes: Vec<u64>,
    /// Decoded video frames (real ones), since the channel started.
    pub input_frames: Vec<u64>,
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
    /// Encoded video frames sent, over all restarts.
    pub output_frames_total: Vec<u64>,
    /// Milliseconds since the output last started delivering; 0 while down.
    pub output_connected_ms: Vec<u64>,
    /// When the output last started delivering, ms since the Unix epoch;
    /// 0 while down.
    pub output_connected_at_ms: Vec<u64>,
    /// Per input: its sound's last loudness reading (none while it sends
    /// no audio, or with `watchdog.loudness = false`).
    pub input_loudness: Vec<Option<Loudness>>,
    /// The programme's, after the switch.
    pub program_loudness: Option<Loudness>,
    /// Per SRT link: (`input`/`output`, its id, loss alarms raised, RTT
    /// alarms raised).
    pub link_alarms: Vec<(String, String, u64, u64)>,
    /// SCTE-35 cues placed, by (kind, source: `operator`).
    pub cues: std::collections::BTreeMap<(String, String), u64>,
}

/// A loudness reading (`nonstop-loudness`, EBU R128): LUFS, the range in
/// LU, the true peak in dBTP; −200 below the gate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Loudness {
    pub momentary: f64,
    pub short_term: f64,
    pub integrated: f64,
    pub range: f64,
    /// The highest since the reading before.
    pub true_peak: f64,
}

// Never NaN (`from_structure` sees to it): the equality is a true one.
impl Eq for Loudness {}

impl Loudness {
    pub fn from_structure(s: &gst::StructureRef) -> Option<Loudness> {
        let f = |k: &str| {
            s.get::<f64>(k)
                .ok()
                .map(|v| if v.is_nan() { -200.0 } else { v.max(-200.0) })
        };
        Some(Loudness {
            momentary: f("momentary")?,
            short_term: f("short-term")?,
            integrated: f("integrated")?,
            range: f("range")?.max(0.0),
            true_peak: f("true-peak")?,
        })
    }
}

/// Everything the D-Bus properties show, as of the last change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub state: ChannelState,
    pub mode: String,
    pub active_input: String,
    pub inputs: Vec<InputRow>,
    pub outputs: Vec<OutputRow>,
    pub encoders: Vec<EncoderRow>,
    /// Its SRT links with a connection now.
    pub links: Vec<LinkRow>,
    pub switches: u64,
    /// For metrics (not D-Bus properties).
    pub counters: Counters,
    /// Recent events for the status page, newest first: (µs since the
    /// epoch, text).
    pub recent: Vec<(u64, String)>,
    /// The one-line status (systemd's STATUS=, logs).
    pub status: Status,
    /// Its seat in the fleet (`None` without `[fleet]`, or pinned).
    pub fleet: Option<super::Seat>,
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

pub(super) fn wall_us(mono_ns: u64) -> u64 {
    if mono_ns == 0 {
        return 0;
    }
    let ago_us = crate::monotonic_ns().saturating_sub(mono_ns) / 1000;
    nonstop_api::now_us().saturating_sub(ago_us)
}

pub(super) fn phase_name(p: &Phase, live: &'static str) -> &'static str {
    match p {
        Phase::Starting { .. } => "starting",
        Phase::Live { .. } => live,
        Phase::Waiting { .. } => "waiting",
        Phase::Stopped => "stopped",
        Phase::Held => "held",
    }
}

impl Channel {
    pub(super) fn snapshot(&self) -> Snapshot {
        let mode = self.snapshot_mode();
        Snapshot {
            state: shown_state(self.status.state, &self.facts()),
            mode,
            active_input: self
                .active
                .map(|i| self.inputs[i].id.clone())
                .unwrap_or_default(),
            inputs: self
                .inputs
                .iter()
                .enumerate()
                .map(|(i, input)| InputRow {
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
                .map(|o| OutputRow {
                    id: o.id.clone(),
                    uri: o.shown().to_owned(),
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
            links: self.link_rows(),
            recent: self.recent.iter().cloned().collect(),
            status: self.status.clone(),
            fleet: self.seat(),
        }
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

    pub(super) fn snapshot_mode(&self) -> String {
        self.switch()
            .and_then(|s| {
                s.property_value("mode")
                    .serialize()
                    .ok()
                    .map(|v| v.to_string())
            })
            .unwrap_or_else(|| "auto".into())
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
    /// Every 2 s: the latest frame of each input and of the output, for
    /// the status page (a reference to a buffer each; encoding happens
    /// only when a thumbnail is asked for).
    pub(super) fn refresh_thumbs(&mut self) {
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
    pub(super) fn update_counters(&mut self) {
        let now = Instant::now();
        if self
            .links_read
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            self.links_read = Some(now);
            self.poll_links(now);
            self.counters.link_alarms = self.link_alarm_counts();
        }
        // A meter speaks once a second: a reading older than three has
        // stopped (no audio, a rebuilt input) and is not shown as if live.
        let fresh = |r: &Option<(Instant, Loudness)>| {
            r.filter(|(at, _)| at.elapsed() < Duration::from_secs(3))
                .map(|(_, l)| l)
        };
        let n = self.inputs.len();
        self.counters.input_loudness = self.loudness[..n].iter().map(fresh).collect();
        self.counters.program_loudness = fresh(&self.loudness[n]);
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
        c.input_frames = frames.clone();
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
        c.output_frames_total = self
            .outputs
            .iter()
            .zip(&self.output_frames_done)
            .map(|(o, done)| {
                done + o
                    .feed
                    .as_ref()
                    .map_or(0, |f| f.frames.load(Ordering::Relaxed))
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
        // Taken once per start of delivery, so the timestamp holds still.
        let now_ms = nonstop_api::now_us() / 1000;
        self.output_live_at.resize(self.outputs.len(), None);
        c.output_connected_at_ms = self
            .outputs
            .iter()
            .zip(&mut self.output_live_at)
            .map(|(o, at)| match o.phase {
                Phase::Live { since } => {
                    if at.is_none_or(|(s, _)| s != since) {
                        let ms = since.elapsed().as_millis() as u64;
                        *at = Some((since, now_ms.saturating_sub(ms)));
                    }
                    at.map_or(0, |(_, ms)| ms)
                }
                _ => {
                    *at = None;
                    0
                }
            })
            .collect();
    }
}
