//! What the pipelines say: bus messages (errors, end of stream, latency,
//! the switch's and the watchdogs' element messages) turned into the
//! channel's decisions, in the channel's task.

use std::time::Instant;

use gst::prelude::*;
use tracing::{debug, error, info, warn};

use super::inputs::{FIRST_DATA, SRT_CALLER};
use super::pipeline::{element_path, error_reason, PROGRAM_METER};
use super::snapshot::Loudness;
use super::{Channel, ChannelEvent, Event, Origin};
use crate::uri;

impl Channel {
    pub(super) fn handle(&mut self, ev: Event) {
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
            V::Element(e) if fresh => match (ev.origin, e.structure()) {
                (Origin::Input(i), Some(s)) if s.name() == crate::ingest::SCTE35_MESSAGE => {
                    self.input_cue(i, s);
                }
                (Origin::Input(i), Some(s)) if s.name() == crate::ingest::TRACKS_MESSAGE => {
                    self.input_tracks(i, s);
                }
                (_, Some(s)) => self.element_message(&ev.msg, s),
                _ => {}
            },
            _ => {}
        }
    }

    pub(super) fn input_of_pad(&self, pad: Option<&str>) -> Option<usize> {
        pad?.strip_prefix("sink_")?
            .parse::<usize>()
            .ok()
            .filter(|i| *i < self.inputs.len())
    }

    pub(super) fn element_message(&mut self, msg: &gst::Message, s: &gst::StructureRef) {
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
                    warn!(channel = %self.id, event = "switch", from = %name(from), to = %name(to), reason = %reason, stalled_ms = stalled / 1_000_000, holdoff_ms = holdoff / 1_000_000, "{line}");
                } else {
                    info!(channel = %self.id, event = "switch", from = %name(from), to = %name(to), reason = %reason, "{line}");
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
                self.update_status();
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
                    warn!(channel = %self.id, event = "alarm-raised", input = %input.id, media, alarm = %kind, "alarm raised");
                } else {
                    let lasted = s.get::<u64>("duration").unwrap_or(0);
                    info!(channel = %self.id, event = "alarm-cleared", input = %input.id, media, alarm = %kind, lasted_ms = lasted / 1_000_000, "alarm cleared");
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
            "nonstop-loudness" => {
                let Some(reading) = Loudness::from_structure(s) else {
                    return;
                };
                // watchdog_{i}_audio, or the programme's meter.
                let slot = if src == PROGRAM_METER {
                    self.inputs.len()
                } else {
                    let Some(i) = src
                        .strip_prefix("watchdog_")
                        .and_then(|r| r.strip_suffix("_audio"))
                        .and_then(|i| i.parse::<usize>().ok())
                        .filter(|i| *i < self.inputs.len())
                    else {
                        return;
                    };
                    i
                };
                // Published with the next tick's counters.
                self.loudness[slot] = Some((Instant::now(), reading));
            }
            "missing-plugin" => {
                let text = uri::redact_text(&s.to_string());
                warn!(channel = %self.id, element = %element_path(msg), "a GStreamer plugin is missing: {text}");
            }
            _ => {}
        }
    }
}
