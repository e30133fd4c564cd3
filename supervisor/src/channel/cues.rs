//! SCTE-35 cues an operator inserts (D-Bus `InsertCue` / `ScheduleCue`,
//! `nonstopctl cue`). The splice is placed on the channel's timeline: the
//! encoders are asked for an IDR on that frame (and on the return point
//! of a break with a duration), and the section goes to every TS output a
//! few seconds ahead (SCTE 67's pre-roll), with the splice time in that
//! output's own timeline. Each cue is logged, counted and listed.

use std::time::{Duration, SystemTime};

use gst::prelude::*;
use tracing::{info, warn};

use super::command::CtlError;
use super::Channel;
use crate::output::scte35::{self, Cue, CueKind};

/// Sections go to the muxers this long before their splice (and at once
/// for a shorter pre-roll): enough for any receiver, short enough that an
/// output restarted meanwhile still gets it.
const SEND_AHEAD: Duration = Duration::from_secs(8);
/// How far ahead a cue may be scheduled.
const MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// When the splice happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueAt {
    /// This long from now.
    In(Duration),
    /// At this wall-clock (UTC) time.
    Utc(SystemTime),
}

/// The cues of a channel: those waiting to be sent, and the ids.
#[derive(Debug)]
pub(super) struct Cues {
    next_id: u32,
    /// Not yet sent to the outputs.
    pending: Vec<Cue>,
}

impl Default for Cues {
    fn default() -> Self {
        // Ids from the clock: a restarted daemon does not reuse the ids of
        // cues a downstream splicer may still hold.
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Cues {
            next_id: (secs as u32) & 0x3fff_ffff,
            pending: Vec::new(),
        }
    }
}

/// `InsertCue`'s kind, checked (public for the fuzz target).
pub fn parse_cue_kind(kind: &str) -> Result<CueKind, CtlError> {
    CueKind::parse(kind).ok_or_else(|| {
        CtlError::InvalidArgument(format!(
            "cue kind \"{kind}\" is not splice-out or splice-in"
        ))
    })
}

/// A break's duration, checked: none (0) or 1 s to 24 h; only a
/// splice-out has one.
pub fn check_cue_duration(kind: CueKind, duration: Duration) -> Result<(), CtlError> {
    if duration.is_zero() {
        return Ok(());
    }
    if kind == CueKind::SpliceIn {
        return Err(CtlError::InvalidArgument(
            "a splice-in has no duration (give 0)".into(),
        ));
    }
    if duration < Duration::from_secs(1) || duration > MAX_AHEAD {
        return Err(CtlError::InvalidArgument(format!(
            "a break of {} is out of range: 1s to 24h",
            crate::config::fmt_duration(duration)
        )));
    }
    Ok(())
}

impl Channel {
    /// The channel pipeline's running time now, if it runs.
    fn now_rt(&self) -> Result<u64, CtlError> {
        self.running()?;
        self.core
            .as_ref()
            .and_then(|c| c.pipeline.current_running_time())
            .map(|t| t.nseconds())
            .ok_or_else(|| CtlError::Busy(format!("channel {} is not running", self.id)))
    }

    /// Places an operator's cue: returns its splice_event_id.
    pub(super) fn insert_cue(
        &mut self,
        kind: CueKind,
        duration: Duration,
        at: CueAt,
    ) -> Result<u32, CtlError> {
        check_cue_duration(kind, duration)?;
        let now = self.now_rt()?;
        let ahead = match at {
            CueAt::In(d) => d,
            CueAt::Utc(t) => t.duration_since(SystemTime::now()).map_err(|_| {
                CtlError::InvalidArgument(format!(
                    "{} is in the past",
                    humantime::format_rfc3339_millis(t)
                ))
            })?,
        };
        if ahead > MAX_AHEAD {
            return Err(CtlError::InvalidArgument(
                "a cue can be placed at most 24h ahead".into(),
            ));
        }
        let id = self.cues.next_id;
        self.cues.next_id = self.cues.next_id.wrapping_add(1) & 0x3fff_ffff;
        let cue = Cue {
            id,
            kind,
            at: now + ahead.as_nanos() as u64,
            duration: (!duration.is_zero()).then_some(duration),
            auto_return: true,
        };
        self.place(cue, now, "operator");
        Ok(id)
    }

    /// An input's cue (its TS's splice_insert, as tsdemux has it): placed
    /// when the input is on air, on the output frame its splice time
    /// became; else let go.
    pub(super) fn input_cue(&mut self, i: usize, s: &gst::StructureRef) {
        let input = self.inputs[i].id.clone();
        let Some(section) = s.get::<gst_mpegts::Section>("section").ok() else {
            warn!(channel = %self.id, input = %input, "an SCTE-35 event without its section");
            return;
        };
        let splices = match scte35::read_splices(&section) {
            Ok(v) if v.is_empty() => return,
            Ok(v) => v,
            Err(what) => {
                warn!(channel = %self.id, input = %input, "SCTE-35 {what} from the input is not passed: only splice_insert is");
                return;
            }
        };
        if self.active != Some(i) {
            for sp in &splices {
                info!(channel = %self.id, input = %input, id = sp.id, "SCTE-35 {} #{} from {input}, not on air: not passed", sp.kind.name(), sp.id);
            }
            return;
        }
        let Ok(now) = self.now_rt() else {
            return;
        };
        let times = s.get::<gst::Structure>("running-time-map").ok();
        for sp in splices {
            // The splice's running time in the input, then on the output.
            let input_t = times
                .as_ref()
                .and_then(|m| m.get::<u64>(format!("event-{}-splice-time", sp.id)).ok());
            let at = match (sp.immediate, input_t) {
                (false, Some(t)) => self.taps.output_time_of(i as u32, t),
                _ => None,
            };
            if sp.kind != CueKind::Cancel && !sp.immediate && at.is_none() {
                warn!(channel = %self.id, input = %input, id = sp.id, "SCTE-35 #{}: its splice time cannot be placed on the output; passed as immediate", sp.id);
            }
            let cue = Cue {
                id: sp.id,
                kind: sp.kind,
                // Immediate, or past: the next frame.
                at: at.unwrap_or(0).max(now),
                duration: sp.duration,
                auto_return: sp.auto_return,
            };
            self.place(cue, now, "input");
        }
    }

    /// Puts `cue` on a frame of the output, asks the encoders for its
    /// IDRs, logs and counts it, and sends it when due.
    fn place(&mut self, mut cue: Cue, now: u64, source: &str) {
        // On a frame of the output, so the splice time is the IDR's PTS.
        let fps = self.cfg.video.framerate;
        cue.at = self.taps.frame_at(cue.at, fps);
        if cue.kind != CueKind::Cancel {
            // The IDRs: the splice, and the return of a break that ends
            // by itself.
            self.request_splice(cue.at);
            if let (Some(d), true) = (cue.duration, cue.auto_return) {
                self.request_splice(self.taps.frame_at(cue.at + d.as_nanos() as u64, fps));
            }
        }
        let wall = SystemTime::now() + Duration::from_nanos(cue.at.saturating_sub(now));
        let span = cue.duration.map_or(String::new(), |d| {
            format!(" for {}", crate::config::fmt_duration(d))
        });
        let (kind, id) = (cue.kind.name(), cue.id);
        info!(channel = %self.id, event = "cue", kind, id, source,
            at = %humantime::format_rfc3339_millis(wall),
            duration_s = cue.duration.map_or(0.0, |d| d.as_secs_f64()), pts_ns = cue.at,
            "SCTE-35 {kind} #{id} placed at {}{span} ({source})", humantime::format_rfc3339_millis(wall));
        *self
            .counters
            .cues
            .entry((kind.to_owned(), source.to_owned()))
            .or_default() += 1;
        self.note_event(format!(
            "SCTE-35 {kind} #{id} at {}{span} ({source})",
            humantime::format_rfc3339_seconds(wall)
        ));
        self.cues.pending.push(cue);
        self.send_cues(now);
    }

    /// Sends the cues due within [`SEND_AHEAD`] of `now` (running time) to
    /// every TS output running now.
    pub(super) fn send_cues(&mut self, now: u64) {
        let ahead = SEND_AHEAD.as_nanos() as u64;
        let due: Vec<Cue> = {
            let (due, later) = self
                .cues
                .pending
                .drain(..)
                .partition(|c| c.at <= now + ahead);
            self.cues.pending = later;
            due
        };
        for cue in due {
            let mut reached = Vec::new();
            for out in &self.outputs {
                let (Some(p), Some(f)) = (&out.pipeline, &out.feed) else {
                    continue;
                };
                let Some(base) = f.timeline_base() else {
                    continue;
                };
                f.mark_cue(&cue, base);
                if scte35::send(p, f, &cue, base) {
                    reached.push(out.id.as_str());
                }
            }
            if reached.is_empty() {
                warn!(channel = %self.id, id = cue.id, "SCTE-35 #{}: no TS output is running to carry it", cue.id);
            } else {
                info!(channel = %self.id, id = cue.id, outputs = %reached.join(","),
                    "SCTE-35 #{} sent to {}", cue.id, reached.join(", "));
            }
        }
    }

    /// The tick's part: cues scheduled further ahead, once due.
    pub(super) fn tick_cues(&mut self) {
        if self.cues.pending.is_empty() {
            return;
        }
        if let Ok(now) = self.now_rt() {
            self.send_cues(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_durations_are_checked() {
        assert_eq!(parse_cue_kind("splice-out").unwrap(), CueKind::SpliceOut);
        let e = parse_cue_kind("out").unwrap_err().to_string();
        assert_eq!(e, "cue kind \"out\" is not splice-out or splice-in");
        assert!(check_cue_duration(CueKind::SpliceOut, Duration::from_secs(30)).is_ok());
        assert!(check_cue_duration(CueKind::SpliceOut, Duration::ZERO).is_ok());
        assert!(check_cue_duration(CueKind::SpliceIn, Duration::ZERO).is_ok());
        assert_eq!(
            check_cue_duration(CueKind::SpliceIn, Duration::from_secs(5))
                .unwrap_err()
                .to_string(),
            "a splice-in has no duration (give 0)"
        );
        assert_eq!(
            check_cue_duration(CueKind::SpliceOut, Duration::from_millis(10))
                .unwrap_err()
                .to_string(),
            "a break of 10ms is out of range: 1s to 24h"
        );
    }
}
