//! Prometheus metrics (prometheus-client; no hand-written exposition).
//! Everything but the encode latency comes from the channels' published
//! snapshots (and, with `[fleet]`, the fleet agent's view), read at scrape
//! time by a collector: nothing is taken on the media path for it. Names
//! and labels: docs/monitoring.md. The `process_*` families: [`process`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::channel::{Role, Snapshot, Thumbs};
use crate::encode::latency::encode_latency;
use crate::fleet::FleetView;

mod loudness;
pub mod process;
mod srt;

/// What the collector and the status page read of one channel.
#[derive(Debug, Clone)]
pub struct View {
    pub id: String,
    pub snapshot: watch::Receiver<Snapshot>,
    pub thumbs: Thumbs,
}

/// The channels as the metrics and the status page see them; the daemon
/// keeps it in step with its registry.
pub type Views = Arc<Mutex<Vec<View>>>;

/// The members of the fleet as the control API's rows: the manager's
/// `FleetMembers`, the status page's `fleet.members`.
pub fn member_rows(view: &FleetView) -> Vec<nonstop_api::model::MemberRow> {
    view.members
        .iter()
        .map(|m| nonstop_api::model::MemberRow {
            name: m.name.clone(),
            alive: m.alive,
            drained: m.drained,
            capacity: m.capacity,
            leads: m.leads,
        })
        .collect()
}

#[derive(Debug)]
struct Channels {
    views: Views,
    started: Instant,
    /// The fleet agent's view, with `[fleet]`.
    fleet: Option<crate::fleet::View>,
}

/// One metric family from `rows` (labels, value); a single row without
/// labels is written as a plain sample.
fn family<V: Copy>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    rows: &[(Vec<(&str, String)>, V)],
    write: impl Fn(V, MetricEncoder) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, ty)?;
    if let [(labels, v)] = rows {
        if labels.is_empty() {
            return write(*v, m);
        }
    }
    for (labels, v) in rows {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        write(*v, m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, String)>, f64)],
) -> Result<(), std::fmt::Error> {
    family(enc, name, help, MetricType::Gauge, rows, |v, m| {
        ConstGauge::new(v).encode(m)
    })
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Vec<(&str, String)>, u64)],
) -> Result<(), std::fmt::Error> {
    family(enc, name, help, MetricType::Counter, rows, |v, m| {
        ConstCounter::new(v).encode(m)
    })
}

/// Every alarm a watchdog raises, and `missing` (an input without a
/// stream for one of the channel's audio tracks), each exported from the
/// start at 0.
const ALARM_KINDS: [&str; 10] = [
    "stall",
    "freeze",
    "black",
    "silence",
    "loud",
    "quiet",
    "true-peak",
    "jump",
    "no-captions",
    "missing",
];

/// The kinds of SCTE-35 cue a channel places.
const CUE_KINDS: [&str; 3] = ["splice-out", "splice-in", "cancel"];

const SWITCH_REASONS: [&str; 6] = ["start", "stall", "recovered", "manual", "eos", "all-lost"];

/// Why this box took a channel's leadership (the agent's reasons).
const TAKEOVER_REASONS: [&str; 4] = ["start", "leader-lost", "handover", "rejoin"];

/// The `nonstop_fleet_*` families, from the agent's view.
fn fleet(e: &mut DescriptorEncoder, v: &FleetView) -> Result<(), std::fmt::Error> {
    let ch = |c: &str| ("channel", c.to_owned());
    let rows: Vec<_> = v
        .channels
        .iter()
        .flat_map(|(c, cv)| {
            Role::ALL.map(|r| {
                (
                    vec![ch(c), ("role", r.name().to_owned())],
                    f64::from(cv.role == r),
                )
            })
        })
        .collect();
    gauge(
        e,
        "nonstop_fleet_role",
        "1 for the channel's role on this box",
        &rows,
    )?;
    // Every reason from the start, at 0: increase() sees the first one.
    let mut reasons: Vec<&str> = TAKEOVER_REASONS.to_vec();
    reasons.extend(
        v.takeovers
            .keys()
            .map(String::as_str)
            .filter(|r| !TAKEOVER_REASONS.contains(r)),
    );
    let rows: Vec<_> = reasons
        .iter()
        .map(|r| {
            let n = v.takeovers.get(*r).copied().unwrap_or(0);
            (vec![("reason", (*r).to_owned())], n)
        })
        .collect();
    counter(
        e,
        "nonstop_fleet_takeovers",
        "Leaderships this box took, by reason",
        &rows,
    )?;
    gauge(
        e,
        "nonstop_fleet_lease_remaining_seconds",
        "Until this box's lease deadline (0 without a lease)",
        &[(vec![], v.lease_left.as_secs_f64())],
    )?;
    let count = |f: &dyn Fn(&crate::fleet::MemberView) -> bool| {
        v.members.iter().filter(|m| f(m)).count() as f64
    };
    gauge(
        e,
        "nonstop_fleet_members",
        "Members of the fleet: alive, drained",
        &[
            (vec![("state", "alive".to_owned())], count(&|m| m.alive)),
            (vec![("state", "drained".to_owned())], count(&|m| m.drained)),
        ],
    )?;
    gauge(
        e,
        "nonstop_fleet_etcd_up",
        "1 while the fleet agent's etcd calls succeed",
        &[(vec![], f64::from(v.etcd))],
    )?;
    let rows: Vec<_> = v
        .channels
        .iter()
        .flat_map(|(c, cv)| {
            cv.epoch_offsets
                .iter()
                .map(|(peer, s)| (vec![ch(c), ("peer", peer.clone())], *s))
        })
        .collect();
    gauge(
        e,
        "nonstop_fleet_epoch_offset_seconds",
        "How much later this box emits a frame of the channel than the peer does (both on UTC)",
        &rows,
    )?;
    let rows: Vec<_> = v
        .channels
        .iter()
        .map(|(c, cv)| (vec![ch(c)], cv.dropped))
        .collect();
    counter(
        e,
        "nonstop_fleet_fenced_buffers",
        "Buffers the fence stopped at the channel's outputs",
        &rows,
    )
}

impl Collector for Channels {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snaps: Vec<(String, Snapshot)> = self
            .views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|v| (v.id.clone(), v.snapshot.borrow().clone()))
            .collect();
        let e = &mut enc;
        gauge(
            e,
            "nonstop_build_info",
            "nonstopd's version",
            &[(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0)],
        )?;
        gauge(
            e,
            "nonstop_uptime_seconds",
            "Seconds since nonstopd started",
            &[(vec![], self.started.elapsed().as_secs_f64())],
        )?;
        let ch = |c: &str| ("channel", c.to_owned());
        let mut rows = Vec::new();
        for (c, s) in &snaps {
            for st in crate::channel::ChannelState::ALL {
                rows.push((
                    vec![ch(c), ("state", st.name().to_owned())],
                    f64::from(s.state == st),
                ));
            }
        }
        gauge(
            e,
            "nonstop_channel_state",
            "1 for the channel's state",
            &rows,
        )?;
        let rows: Vec<_> = snaps
            .iter()
            .flat_map(|(c, s)| {
                s.inputs.iter().map(move |i| {
                    (
                        vec![ch(c), ("input", i.id.clone())],
                        f64::from(s.active_input == i.id),
                    )
                })
            })
            .collect();
        gauge(
            e,
            "nonstop_channel_active_input",
            "1 for the input on air",
            &rows,
        )?;
        let rows: Vec<_> = snaps
            .iter()
            .map(|(c, s)| {
                let first = s.inputs.first().is_some_and(|i| i.id == s.active_input);
                (vec![ch(c)], f64::from(first))
            })
            .collect();
        gauge(
            e,
            "nonstop_channel_on_primary",
            "1 while the channel's first input is on air",
            &rows,
        )?;
        // Every reason from the start, at 0: increase() sees the first one.
        let rows: Vec<_> = snaps
            .iter()
            .flat_map(|(c, s)| {
                SWITCH_REASONS.iter().map(move |r| {
                    let n = s.counters.switches_by_reason.get(*r).copied().unwrap_or(0);
                    (vec![ch(c), ("reason", (*r).to_owned())], n)
                })
            })
            .collect();
        counter(
            e,
            "nonstop_channel_switches",
            "Input changes by reason",
            &rows,
        )?;
        let rows: Vec<_> = snaps
            .iter()
            .flat_map(|(c, s)| {
                CUE_KINDS.iter().flat_map(move |k| {
                    ["operator", "input"].map(|src| {
                        let key = ((*k).to_owned(), src.to_owned());
                        let n = s.counters.cues.get(&key).copied().unwrap_or(0);
                        let labels =
                            vec![ch(c), ("kind", (*k).to_owned()), ("source", src.to_owned())];
                        (labels, n)
                    })
                })
            })
            .collect();
        counter(
            e,
            "nonstop_scte35_cues",
            "SCTE-35 cues placed, by kind and source",
            &rows,
        )?;
        let rows: Vec<_> = snaps
            .iter()
            .flat_map(|(c, s)| {
                [
                    ("emitted", s.counters.frames_emitted),
                    ("repeated", s.counters.frames_repeated),
                    ("black", s.counters.frames_black),
                ]
                .map(|(k, n)| (vec![ch(c), ("kind", k.to_owned())], n))
            })
            .collect();
        counter(
            e,
            "nonstop_channel_frames",
            "Video frames the switch emitted",
            &rows,
        )?;

        let now_us = nonstop_api::now_us();
        let input_rows =
            |f: &dyn Fn(&Snapshot, usize) -> Option<f64>| -> Vec<(Vec<(&str, String)>, f64)> {
                snaps
                    .iter()
                    .flat_map(|(c, s)| {
                        s.inputs.iter().enumerate().filter_map(move |(n, i)| {
                            Some((vec![ch(c), ("input", i.id.clone())], f(s, n)?))
                        })
                    })
                    .collect()
            };
        let input_counters =
            |f: &dyn Fn(&Snapshot, usize) -> u64| -> Vec<(Vec<(&str, String)>, u64)> {
                snaps
                    .iter()
                    .flat_map(|(c, s)| {
                        s.inputs
                            .iter()
                            .enumerate()
                            .map(move |(n, i)| (vec![ch(c), ("input", i.id.clone())], f(s, n)))
                    })
                    .collect()
            };
        gauge(
            e,
            "nonstop_input_up",
            "1 while the input delivers data",
            &input_rows(&|s, n| Some(f64::from(s.inputs[n].state == "receiving"))),
        )?;
        gauge(
            e,
            "nonstop_input_last_buffer_age_seconds",
            "Seconds since the input's last buffer",
            &input_rows(&|s, n| {
                let seen = s.inputs[n].last_seen;
                (seen > 0).then(|| now_us.saturating_sub(seen) as f64 / 1e6)
            }),
        )?;
        gauge(
            e,
            "nonstop_input_last_buffer_timestamp_seconds",
            "When the input's last buffer came, Unix time in seconds",
            &input_rows(&|s, n| {
                let seen = s.inputs[n].last_seen;
                (seen > 0).then(|| seen as f64 / 1e6)
            }),
        )?;
        counter(
            e,
            "nonstop_input_frames",
            "Video frames the input decoded",
            &input_counters(&|s, n| s.counters.input_frames.get(n).copied().unwrap_or(0)),
        )?;
        counter(
            e,
            "nonstop_input_received_bytes",
            "Bytes the input's source received",
            &input_counters(&|s, n| s.counters.input_received_bytes.get(n).copied().unwrap_or(0)),
        )?;
        // Bytes, the base unit Prometheus wants (×8 for a bitrate).
        gauge(
            e,
            "nonstop_input_received_bytes_per_second",
            "Bytes the input received over the last second",
            &input_rows(&|s, n| {
                Some(s.counters.input_bitrate_bps.get(n).copied().unwrap_or(0) as f64 / 8.0)
            }),
        )?;
        gauge(
            e,
            "nonstop_input_frames_per_second",
            "Decoded video frames per second",
            &input_rows(&|s, n| {
                Some(s.counters.input_fps_milli.get(n).copied().unwrap_or(0) as f64 / 1000.0)
            }),
        )?;
        counter(
            e,
            "nonstop_input_decode_errors",
            "Errors and warnings from the input's pipeline",
            &input_counters(&|s, n| s.counters.input_decode_errors.get(n).copied().unwrap_or(0)),
        )?;
        gauge(
            e,
            "nonstop_input_return_holdoff_seconds",
            "How long the input must be clean before the channel returns to it (return_after, doubled by flap damping)",
            &input_rows(&|s, n| Some(s.inputs[n].return_holdoff_ms as f64 / 1000.0)),
        )?;
        counter(
            e,
            "nonstop_input_restarts",
            "Rebuilds of the input's pipeline",
            &input_counters(&|s, n| s.inputs[n].restarts),
        )?;
        let rows: Vec<_> = snaps
            .iter()
            .flat_map(|(c, s)| {
                s.inputs.iter().enumerate().flat_map(move |(n, i)| {
                    ALARM_KINDS.map(|k| {
                        let v = s
                            .counters
                            .input_alarms
                            .get(n)
                            .and_then(|m| m.get(k))
                            .copied()
                            .unwrap_or(0);
                        (
                            vec![ch(c), ("input", i.id.clone()), ("kind", k.to_owned())],
                            v,
                        )
                    })
                })
            })
            .collect();
        counter(e, "nonstop_input_alarms", "Watchdog alarms raised", &rows)?;
        loudness::families(e, &snaps)?;
        srt::families(e, &snaps)?;

        let enc_labels = |c: &str, id: &str| {
            let (r, inst) = id.rsplit_once('.').unwrap_or((id, "primary"));
            vec![ch(c), ("encoder", r.to_owned()), ("role", inst.to_owned())]
        };
        let rows: Vec<_> = snaps
            .iter()
            .flat_map(|(c, s)| {
                s.encoders.iter().map(move |x| {
                    let mut l = enc_labels(c, &x.id);
                    l.push(("backend", x.backend.clone()));
                    (l, 1.0)
                })
            })
            .collect();
        gauge(
            e,
            "nonstop_encoder_info",
            "1 per encoder instance, with its backend",
            &rows,
        )?;
        let rows: Vec<_> = snaps
            .iter()
            .flat_map(|(c, s)| {
                s.encoders.iter().enumerate().map(move |(n, x)| {
                    (
                        enc_labels(c, &x.id),
                        s.counters.encoder_frames.get(n).copied().unwrap_or(0),
                    )
                })
            })
            .collect();
        counter(e, "nonstop_encoder_frames", "Frames encoded", &rows)?;
        let rows: Vec<_> = snaps
            .iter()
            .flat_map(|(c, s)| {
                let mut ids: Vec<String> = s
                    .encoders
                    .iter()
                    .map(|x| {
                        x.id.rsplit_once('.')
                            .map_or(x.id.clone(), |(r, _)| r.to_owned())
                    })
                    .collect();
                ids.dedup();
                ids.into_iter().map(move |r| {
                    let n = s.counters.encoder_failovers.get(&r).copied().unwrap_or(0);
                    (vec![ch(c), ("encoder", r)], n)
                })
            })
            .collect();
        counter(
            e,
            "nonstop_encoder_failovers",
            "Changes of the encoder instance on air",
            &rows,
        )?;

        let out_rows = |f: &dyn Fn(&Snapshot, usize) -> f64| -> Vec<(Vec<(&str, String)>, f64)> {
            snaps
                .iter()
                .flat_map(|(c, s)| {
                    s.outputs
                        .iter()
                        .enumerate()
                        .map(move |(n, o)| (vec![ch(c), ("output", o.id.clone())], f(s, n)))
                })
                .collect()
        };
        gauge(
            e,
            "nonstop_output_up",
            "1 while the destination accepts data",
            &out_rows(&|s, n| f64::from(s.outputs[n].state == "live")),
        )?;
        let rows: Vec<_> =
            out_rows(&|s, n| s.counters.output_bytes_total.get(n).copied().unwrap_or(0) as f64)
                .into_iter()
                .map(|(l, v)| (l, v as u64))
                .collect();
        counter(
            e,
            "nonstop_output_bytes",
            "Bytes sent, over all restarts",
            &rows,
        )?;
        let rows: Vec<_> =
            out_rows(&|s, n| s.counters.output_frames_total.get(n).copied().unwrap_or(0) as f64)
                .into_iter()
                .map(|(l, v)| (l, v as u64))
                .collect();
        counter(
            e,
            "nonstop_output_frames",
            "Video frames sent, over all restarts",
            &rows,
        )?;
        let rows: Vec<_> = out_rows(&|s, n| s.outputs[n].restarts as f64)
            .into_iter()
            .map(|(l, v)| (l, v as u64))
            .collect();
        counter(
            e,
            "nonstop_output_reconnects",
            "Rebuilds of the output's pipeline",
            &rows,
        )?;
        gauge(
            e,
            "nonstop_output_connected_seconds",
            "Seconds since the output last started delivering",
            &out_rows(&|s, n| {
                s.counters.output_connected_ms.get(n).copied().unwrap_or(0) as f64 / 1000.0
            }),
        )?;
        let rows: Vec<_> = out_rows(&|s, n| {
            s.counters
                .output_connected_at_ms
                .get(n)
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        })
        .into_iter()
        .filter(|(_, at)| *at > 0.0)
        .collect();
        gauge(
            e,
            "nonstop_output_connected_timestamp_seconds",
            "When the output last started delivering, Unix time in seconds (absent while down)",
            &rows,
        )?;
        if let Some(view) = &self.fleet {
            let v = view.lock().unwrap_or_else(|e| e.into_inner()).clone();
            fleet(e, &v)?;
        }
        Ok(())
    }
}

/// The registry served at /metrics; the `nonstop_fleet_*` families only
/// with a fleet.
pub fn registry(views: Views, fleet: Option<crate::fleet::View>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(Channels {
        views,
        started: Instant::now(),
        fleet,
    }));
    // Taken now: the start time is read once (see process.rs).
    let _ = process::start_time_seconds();
    r.register_collector(Box::new(process::Process));
    r.register(
        "nonstop_encoder_latency_seconds",
        "Raw frame in to encoded frame out (sampled: one frame in 25)",
        encode_latency().clone(),
    );
    r
}

/// The OpenMetrics text of `r`.
pub fn render(r: &Registry) -> String {
    let mut s = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut s, r);
    s
}

/// The exposition formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format an `Accept` header prefers, as Prometheus client
    /// libraries negotiate: OpenMetrics only when asked for and preferred
    /// over plain text; plain text otherwise (no header, `*/*`, `text/plain`).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best = (Format::Text, -1.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let format = match media.as_str() {
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Format::Text,
                _ => continue,
            };
            if q > best.1 {
                best = (format, q);
            }
        }
        best.0
    }
}

/// The metrics in `format`. The registry writes OpenMetrics; the text
/// format differs in what matters here: a counter's HELP and TYPE name
/// its `_total` sample, and there is no `# UNIT` nor `# EOF`.
pub fn render_as(r: &Registry, format: Format) -> String {
    let om = render(r);
    match format {
        Format::OpenMetrics => om,
        Format::Text => to_text(&om),
    }
}

fn to_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) {
                    format!("{name}_total")
                } else {
                    name.to_owned()
                };
                // OpenMetrics escapes quotes in HELP; the text format does not.
                let tail = if p == "# HELP " {
                    tail.replace("\\\"", "\"")
                } else {
                    tail.to_owned()
                };
                out.push_str(&format!("{p}{name} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{Counters, InputRow, OutputRow};

    #[test]
    fn the_collector_renders_what_the_snapshot_says() {
        let snap = Snapshot {
            state: crate::channel::ChannelState::Degraded,
            mode: "auto".into(),
            active_input: "backup".into(),
            inputs: ["primary", "backup"]
                .map(|id| InputRow {
                    id: id.into(),
                    uri: format!("srt://host?passphrase=secret-{id}"),
                    state: if id == "backup" {
                        "receiving"
                    } else {
                        "waiting"
                    }
                    .into(),
                    restarts: u64::from(id == "primary") * 3,
                    return_holdoff_ms: if id == "primary" { 20_000 } else { 5_000 },
                    // The backup's last buffer 1.5 s ago; none yet from the primary.
                    last_seen: if id == "backup" {
                        nonstop_api::now_us() - 1_500_000
                    } else {
                        0
                    },
                    ..Default::default()
                })
                .to_vec(),
            links: vec![crate::channel::LinkRow {
                kind: "output".into(),
                id: "cdn".into(),
                rtt_us: 41_500,
                bandwidth_kbps: 120_000,
                rate_kbps: 2_500,
                packets: 9000,
                lost: 12,
                retransmitted: 30,
                dropped: 1,
                loss_ppm: 2500,
                alarms: vec!["loss".into()],
            }],
            outputs: ["cdn", "rec"]
                .map(|id| OutputRow {
                    id: id.into(),
                    state: if id == "cdn" { "live" } else { "waiting" }.into(),
                    ..Default::default()
                })
                .to_vec(),
            counters: Counters {
                switches_by_reason: [("stall".to_owned(), 2)].into(),
                input_received_bytes: vec![1000, 2000],
                input_frames: vec![0, 750],
                output_bytes_total: vec![5000, 0],
                output_frames_total: vec![250, 0],
                output_connected_ms: vec![12_500, 0],
                output_connected_at_ms: vec![1_795_250_635_086, 0],
                // The primary sends no sound; the backup and the programme
                // are metered.
                input_loudness: vec![
                    None,
                    Some(crate::channel::Loudness {
                        momentary: -22.5,
                        short_term: -23.25,
                        integrated: -24.0,
                        range: 6.5,
                        true_peak: -3.5,
                    }),
                ],
                link_alarms: vec![("input".into(), "primary".into(), 2, 0)],
                program_loudness: Some(crate::channel::Loudness {
                    momentary: -200.0,
                    short_term: -30.0,
                    integrated: -23.0,
                    range: 0.0,
                    true_peak: -200.0,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let (_tx, rx) = watch::channel(snap);
        let views: Views = Arc::new(Mutex::new(vec![View {
            id: "news".into(),
            snapshot: rx,
            thumbs: Default::default(),
        }]));
        let text = render(&registry(views, None));
        for line in [
            "nonstop_channel_state{channel=\"news\",state=\"degraded\"} 1.0",
            "nonstop_channel_state{channel=\"news\",state=\"on-air\"} 0.0",
            "nonstop_channel_active_input{channel=\"news\",input=\"backup\"} 1.0",
            "nonstop_channel_active_input{channel=\"news\",input=\"primary\"} 0.0",
            "nonstop_channel_switches_total{channel=\"news\",reason=\"stall\"} 2",
            "nonstop_input_up{channel=\"news\",input=\"primary\"} 0.0",
            "nonstop_input_restarts_total{channel=\"news\",input=\"primary\"} 3",
            "nonstop_input_return_holdoff_seconds{channel=\"news\",input=\"primary\"} 20.0",
            "nonstop_input_received_bytes_total{channel=\"news\",input=\"backup\"} 2000",
            "nonstop_output_bytes_total{channel=\"news\",output=\"cdn\"} 5000",
            "nonstop_output_up{channel=\"news\",output=\"cdn\"} 1.0",
            "nonstop_input_frames_total{channel=\"news\",input=\"backup\"} 750",
            "nonstop_input_frames_total{channel=\"news\",input=\"primary\"} 0",
            "nonstop_output_frames_total{channel=\"news\",output=\"cdn\"} 250",
            "nonstop_output_frames_total{channel=\"news\",output=\"rec\"} 0",
            "nonstop_output_connected_seconds{channel=\"news\",output=\"cdn\"} 12.5",
            "nonstop_output_connected_timestamp_seconds{channel=\"news\",output=\"cdn\"} 1795250635.086",
            "nonstop_input_loudness_lufs{channel=\"news\",input=\"backup\",window=\"momentary\"} -22.5",
            "nonstop_input_loudness_lufs{channel=\"news\",input=\"backup\",window=\"short-term\"} -23.25",
            "nonstop_input_loudness_lufs{channel=\"news\",input=\"backup\",window=\"integrated\"} -24.0",
            "nonstop_input_loudness_range_lu{channel=\"news\",input=\"backup\"} 6.5",
            "nonstop_input_true_peak_dbtp{channel=\"news\",input=\"backup\"} -3.5",
            "nonstop_program_loudness_lufs{channel=\"news\",window=\"momentary\"} -200.0",
            "nonstop_program_loudness_lufs{channel=\"news\",window=\"integrated\"} -23.0",
            "nonstop_program_true_peak_dbtp{channel=\"news\"} -200.0",
            "nonstop_input_alarms_total{channel=\"news\",input=\"primary\",kind=\"true-peak\"} 0",
            "nonstop_srt_rtt_seconds{channel=\"news\",link=\"output\",id=\"cdn\"} 0.0415",
            "nonstop_srt_bandwidth_bytes_per_second{channel=\"news\",link=\"output\",id=\"cdn\"} 15000000.0",
            "nonstop_srt_rate_bytes_per_second{channel=\"news\",link=\"output\",id=\"cdn\"} 312500.0",
            "nonstop_srt_loss_ratio{channel=\"news\",link=\"output\",id=\"cdn\"} 0.0025",
            "nonstop_srt_packets_total{channel=\"news\",link=\"output\",id=\"cdn\"} 9000",
            "nonstop_srt_packets_lost_total{channel=\"news\",link=\"output\",id=\"cdn\"} 12",
            "nonstop_srt_packets_retransmitted_total{channel=\"news\",link=\"output\",id=\"cdn\"} 30",
            "nonstop_srt_packets_dropped_total{channel=\"news\",link=\"output\",id=\"cdn\"} 1",
            "nonstop_srt_alarms_total{channel=\"news\",link=\"input\",id=\"primary\",kind=\"loss\"} 2",
            "nonstop_srt_alarms_total{channel=\"news\",link=\"input\",id=\"primary\",kind=\"rtt\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        // An input without a loudness reading has no loudness sample.
        assert!(!text.contains("nonstop_input_loudness_lufs{channel=\"news\",input=\"primary\""));
        // An output that is down has no connection time; an input with
        // no buffer yet has no last-buffer time.
        assert!(!text.contains(
            "nonstop_output_connected_timestamp_seconds{channel=\"news\",output=\"rec\"}"
        ));
        assert!(!text.contains(
            "nonstop_input_last_buffer_timestamp_seconds{channel=\"news\",input=\"primary\"}"
        ));
        // The backup's last buffer: its age and its time agree with now.
        let sample = |name: &str| -> f64 {
            let prefix = format!("{name}{{channel=\"news\",input=\"backup\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .parse()
                .unwrap()
        };
        let now = nonstop_api::now_us() as f64 / 1e6;
        let age = sample("nonstop_input_last_buffer_age_seconds");
        let at = sample("nonstop_input_last_buffer_timestamp_seconds");
        assert!((1.5..2.5).contains(&age), "age {age}");
        assert!((now - at - 1.5).abs() < 1.0, "at {at}, now {now}");
        // The process families, under the client libraries' names.
        for family in [
            "# TYPE process_start_time_seconds gauge",
            "# TYPE process_open_fds gauge",
            "# TYPE process_max_fds gauge",
            "# TYPE process_resident_memory_bytes gauge",
            "# TYPE process_virtual_memory_bytes gauge",
            "# TYPE process_cpu_seconds counter",
        ] {
            assert!(text.contains(family), "missing {family} in\n{text}");
        }
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} sample in\n{text}"))
                .parse()
                .unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 1.0);
        // A test process may not have used a 10 ms clock tick yet;
        // tests/monitoring.sh sees nonstopd's grow.
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!((now - value("process_start_time_seconds")) < 3600.0);
        assert!(!text.contains("secret"), "a URI leaked into the metrics");
        assert!(text.ends_with("# EOF\n"));

        // The text format: counters' HELP and TYPE name the _total sample.
        let plain = to_text(&text);
        assert!(plain.contains("# TYPE nonstop_input_restarts_total counter\n"));
        assert!(plain.contains("# HELP nonstop_input_restarts_total "));
        assert!(plain.contains("# TYPE nonstop_input_up gauge\n"));
        assert!(plain.contains("# TYPE nonstop_input_frames_total counter\n"));
        assert!(plain.contains("# TYPE nonstop_output_frames_total counter\n"));
        assert!(plain.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(!plain.contains("# EOF") && !plain.contains("# UNIT"));
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(samples(&plain), samples(&text), "the samples are the same");
        assert!(
            !text.contains("nonstop_fleet"),
            "fleet series without a fleet"
        );
    }

    #[test]
    fn the_fleet_families_render_the_agents_view() {
        use crate::fleet::{ChannelView, MemberView};
        let member = |name: &str, alive, drained| MemberView {
            name: name.into(),
            capacity: 1,
            drained,
            alive,
            leads: 0,
        };
        let view = FleetView {
            node: "box-a".into(),
            etcd: true,
            lease_left: std::time::Duration::from_millis(1500),
            members: vec![
                member("box-a", true, false),
                member("box-b", true, true),
                member("box-c", false, true),
            ],
            channels: [
                (
                    "news".to_owned(),
                    ChannelView {
                        role: Role::Active,
                        leader: "box-a".into(),
                        token: 42,
                        replicas: vec!["box-a".into(), "box-b".into()],
                        dropped: 12,
                        epoch_offsets: [("box-b".to_owned(), -0.0012)].into(),
                    },
                ),
                (
                    "sport".to_owned(),
                    ChannelView {
                        role: Role::Standby,
                        leader: "box-b".into(),
                        ..Default::default()
                    },
                ),
            ]
            .into(),
            takeovers: [("leader-lost".to_owned(), 2)].into(),
            // The lease id is not shown (and later fields keep their defaults).
            ..FleetView::default()
        };
        let views: Views = Default::default();
        let r = registry(views, Some(Arc::new(Mutex::new(view))));
        let text = render(&r);
        for line in [
            "nonstop_fleet_role{channel=\"news\",role=\"active\"} 1.0",
            "nonstop_fleet_role{channel=\"news\",role=\"standby\"} 0.0",
            "nonstop_fleet_role{channel=\"news\",role=\"off\"} 0.0",
            "nonstop_fleet_role{channel=\"sport\",role=\"standby\"} 1.0",
            "nonstop_fleet_takeovers_total{reason=\"leader-lost\"} 2",
            "nonstop_fleet_takeovers_total{reason=\"start\"} 0",
            "nonstop_fleet_takeovers_total{reason=\"handover\"} 0",
            "nonstop_fleet_takeovers_total{reason=\"rejoin\"} 0",
            "nonstop_fleet_lease_remaining_seconds 1.5",
            "nonstop_fleet_members{state=\"alive\"} 2.0",
            "nonstop_fleet_members{state=\"drained\"} 2.0",
            "nonstop_fleet_etcd_up 1.0",
            "nonstop_fleet_fenced_buffers_total{channel=\"news\"} 12",
            "nonstop_fleet_fenced_buffers_total{channel=\"sport\"} 0",
            "nonstop_fleet_epoch_offset_seconds{channel=\"news\",peer=\"box-b\"} -0.0012",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        let plain = to_text(&text);
        assert!(plain.contains("# TYPE nonstop_fleet_takeovers_total counter\n"));
        assert!(plain.contains("# TYPE nonstop_fleet_fenced_buffers_total counter\n"));
        assert!(plain.contains("# TYPE nonstop_fleet_members gauge\n"));
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        use Format::*;
        let prometheus_2_42 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, want) in [
            (None, Text),
            (Some("*/*"), Text),
            (Some("text/plain;version=0.0.4"), Text),
            (
                Some("text/plain; version=0.0.4; q=0.9, application/openmetrics-text; q=0.5"),
                Text,
            ),
            (Some(prometheus_2_42), OpenMetrics),
            (
                Some("application/openmetrics-text; version=1.0.0"),
                OpenMetrics,
            ),
            (Some("application/json"), Text),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }
}
