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
    /// Places a cue: returns its splice_event_id.
    pub(super) fn insert_cue(
        &mut self,
        kind: CueKind,
        duration: Duration,
        at: CueAt,
    ) -> Result<u32, CtlError> {
        check_cue_duration(kind, duration)?;
        self.running()?;
        let now = self
            .core
            .as_ref()
            .and_then(|c| c.pipeline.current_running_time())
            .ok_or_else(|| CtlError::Busy(format!("channel {} is not running", self.id)))?;
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
        // On a frame of the output, so the splice time is the IDR's PTS.
        let fps = self.cfg.video.framerate;
        let at = self
            .taps
            .frame_at(now.nseconds() + ahead.as_nanos() as u64, fps);
        let cue = Cue {
            id,
            kind,
            at,
            duration: (!duration.is_zero()).then_some(duration),
        };
        // The IDRs: the splice, and the return of a break that ends by
        // itself.
        self.request_splice(cue.at);
        if let Some(d) = cue.duration {
            self.request_splice(self.taps.frame_at(cue.at + d.as_nanos() as u64, fps));
        }
        let wall = SystemTime::now() + ahead;
        info!(channel = %self.id, event = "cue", kind = kind.name(), id,
            at = %humantime::format_rfc3339_millis(wall),
            duration_s = duration.as_secs_f64(), pts_ns = cue.at,
            "SCTE-35 {} #{id} placed at {}{}", kind.name(),
            humantime::format_rfc3339_millis(wall),
            cue.duration.map_or(String::new(), |d| format!(" for {}", crate::config::fmt_duration(d))));
        *self
            .counters
            .cues
            .entry((kind.name().to_owned(), "operator".to_owned()))
            .or_default() += 1;
        self.note_event(format!(
            "SCTE-35 {} #{id} at {}{}",
            kind.name(),
            humantime::format_rfc3339_seconds(wall),
            cue.duration.map_or(String::new(), |d| format!(
                " for {}",
                crate::config::fmt_duration(d)
            ))
        ));
        self.cues.pending.push(cue);
        self.send_cues(now.nseconds());
        Ok(id)
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
        if let Some(now) = self
            .core
            .as_ref()
            .and_then(|c| c.pipeline.current_running_time())
        {
            self.send_cues(now.nseconds());
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
