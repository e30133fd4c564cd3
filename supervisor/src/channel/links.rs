//! SRT link health of the channel's inputs and outputs: the `stats` of
//! their srtsrc (SRT caller inputs) and srtsink (SRT outputs), or libsrt's
//! own for nonstopd's listener inputs ([`crate::srtin`]), read once a
//! second, judged against `[channel.srt]` ([`crate::linkstats`]), shown as
//! the `Links` rows (D-Bus, metrics, status page), and alerted
//! (`srt-loss`, `srt-rtt`).

use std::time::Instant;

use gst::prelude::*;
use tracing::{info, warn};

use super::Channel;
use crate::linkstats::{Bounds, Judge, LinkStats};
use crate::uri::{InputKind, OutputKind};
use nonstop_api::model::LinkRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Input(usize),
    Output(usize),
}

#[derive(Debug)]
pub(super) struct Link {
    pub(super) end: End,
    judge: Judge,
    last: Option<LinkStats>,
    /// Alarms raised so far, by kind: (loss, rtt).
    pub(super) raised: (u64, u64),
}

impl End {
    /// `input` or `output`, as the rows, metrics and logs name it.
    fn side(self) -> &'static str {
        match self {
            End::Input(_) => "input",
            End::Output(_) => "output",
        }
    }

    /// The element that holds its SRT socket, and whether it sends.
    fn factory(self) -> (&'static str, bool) {
        match self {
            End::Input(_) => ("srtsrc", false),
            End::Output(_) => ("srtsink", true),
        }
    }
}

fn srt_element(pipeline: &gst::Pipeline, name: &str) -> Option<gst::Element> {
    pipeline
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == name))
}

/// The SRT ends: inputs (a caller's srtsrc in the input's uridecodebin,
/// or nonstopd's own listener socket) and outputs (srtsink).
pub(super) fn links_of(inputs: &[InputKind], outputs: &[Vec<OutputKind>]) -> Vec<Link> {
    let srt_in = inputs.iter().enumerate().filter_map(|(i, k)| match k {
        InputKind::Uri { uri, .. } if uri.starts_with("srt://") => Some(End::Input(i)),
        _ => None,
    });
    let srt_out = outputs.iter().enumerate().filter_map(|(o, dests)| {
        dests
            .iter()
            .any(|d| matches!(d, OutputKind::Srt { .. }))
            .then_some(End::Output(o))
    });
    srt_in
        .chain(srt_out)
        .map(|end| Link {
            end,
            judge: Judge::default(),
            last: None,
            raised: (0, 0),
        })
        .collect()
}

impl Channel {
    fn end_id(&self, end: End) -> &str {
        match end {
            End::Input(i) => &self.inputs[i].id,
            End::Output(o) => &self.outputs[o].id,
        }
    }

    /// Reads and judges every link; once a second, from the tick.
    pub(super) fn poll_links(&mut self, t: Instant) {
        if self.links.is_empty() {
            return;
        }
        let secs = t.duration_since(self.links_epoch).as_secs_f64();
        let bounds = Bounds {
            max_loss: self.cfg.srt.max_loss,
            max_rtt: self.cfg.srt.max_rtt,
        };
        for n in 0..self.links.len() {
            let end = self.links[n].end;
            let pipeline = match end {
                End::Input(i) => self.inputs[i].pipeline.as_ref(),
                End::Output(o) => self.outputs[o].pipeline.as_ref(),
            };
            let (name, sends) = end.factory();
            let listener = match end {
                End::Input(i) => self.inputs[i].srt.as_ref(),
                End::Output(_) => None,
            };
            let stats = match listener {
                Some(l) => l.link_stats(),
                None => pipeline.and_then(|p| srt_element(p, name)).and_then(|e| {
                    LinkStats::from_structure(&e.property::<gst::Structure>("stats"), sends)
                }),
            };
            let link = &mut self.links[n];
            let changes = link.judge.feed(secs, stats.as_ref(), &bounds);
            link.last = stats;
            for c in changes {
                let id = self.end_id(end).to_owned();
                let (what, bound) = match c.kind {
                    "loss" => (
                        format!("{:.2} % of packets lost over 5 s", c.value),
                        format!("{} %", bounds.max_loss),
                    ),
                    _ => (
                        format!("round trip {:.0} ms", c.value),
                        format!("{} ms", bounds.max_rtt.as_millis()),
                    ),
                };
                let side = end.side();
                let kind = format!("srt-{}", c.kind);
                if c.raised {
                    let l = &mut self.links[n];
                    match c.kind {
                        "loss" => l.raised.0 += 1,
                        _ => l.raised.1 += 1,
                    }
                    warn!(channel = %self.id, event = "link-alarm-raised", link = side, id = %id, alarm = %kind, "SRT link of {side} {id}: {what}, over {bound}");
                } else {
                    info!(channel = %self.id, event = "link-alarm-cleared", link = side, id = %id, alarm = %kind, "SRT link of {side} {id}: {what}, back under {bound}");
                }
                if let End::Input(i) = end {
                    self.note_alarm(i, "srt", c.kind, c.raised);
                }
                let summary = if c.raised {
                    format!(
                        "{}: SRT link of {side} {id}: {what} (bound {bound})",
                        self.id
                    )
                } else {
                    format!("{}: SRT link of {side} {id} healthy again: {what}", self.id)
                };
                self.alert(&kind, &id, c.raised, summary);
            }
        }
    }

    /// The `Links` rows, as of the last poll (a link with no connection
    /// now has no row).
    pub(super) fn link_rows(&self) -> Vec<LinkRow> {
        self.links
            .iter()
            .filter_map(|l| {
                let s = l.last?;
                Some(LinkRow {
                    kind: l.end.side().to_owned(),
                    id: self.end_id(l.end).to_owned(),
                    rtt_us: (s.rtt_ms * 1000.0).round() as u64,
                    bandwidth_kbps: (s.bandwidth_mbps * 1000.0).round() as u64,
                    rate_kbps: (s.rate_mbps * 1000.0).round() as u64,
                    packets: s.packets,
                    lost: s.lost,
                    retransmitted: s.retransmitted,
                    dropped: s.dropped,
                    loss_ppm: (l.judge.loss_percent() * 10_000.0).round() as u64,
                    alarms: l.judge.raised().iter().map(|k| (*k).to_owned()).collect(),
                })
            })
            .collect()
    }

    /// Alarms raised per link, for the metrics: (kind, id, loss, rtt).
    pub(super) fn link_alarm_counts(&self) -> Vec<(String, String, u64, u64)> {
        self.links
            .iter()
            .map(|l| {
                (
                    l.end.side().to_owned(),
                    self.end_id(l.end).to_owned(),
                    l.raised.0,
                    l.raised.1,
                )
            })
            .collect()
    }
}
