//! Which encoder instance the outputs carry, and how they change over.
//!
//! - `none` / `active-passive`: the active instance's frames pass at once;
//!   after a change, nothing passes until the new instance's first
//!   keyframe (active-passive: a bounded gap while the standby starts).
//! - `active-active`: both instances encode the same frames with keyframes
//!   forced at the same running times ([`Schedule`]). The outputs get the
//!   active's frames through a delay line: a frame leaves `delay` after it
//!   was encoded, and only once its whole GOP exists. The standby's last
//!   GOPs are kept. When the active fails, its unfinished GOP is dropped
//!   and the standby's GOP that begins where the committed stream ends
//!   takes its place: continuous timestamps, every frame decodable, no
//!   reconnect, and (with `delay` ≥ GOP + detection time) no change in the
//!   output's pace either. The price is `delay` of latency.

use std::collections::VecDeque;

use super::schedule::Schedule;
use crate::config::Redundancy;

/// GOPs of the standby kept for a change-over: a failure detected up to
/// this many GOPs late still changes over without a gap.
const KEPT_GOPS: usize = 3;

/// What the selector needs to know of an encoded frame.
pub trait Frame {
    /// Running time, ns.
    fn pts(&self) -> Option<u64>;
    fn is_key(&self) -> bool;
}

impl Frame for gst::Buffer {
    fn pts(&self) -> Option<u64> {
        gst::BufferRef::pts(self).map(|t| t.nseconds())
    }
    fn is_key(&self) -> bool {
        !self.flags().contains(gst::BufferFlags::DELTA_UNIT)
    }
}

struct Gop<T> {
    start: u64,
    /// (arrival, frame)
    frames: Vec<(u64, T)>,
}

pub struct Selector<T> {
    mode: Redundancy,
    schedule: Schedule,
    /// Active-active: how long a frame waits before it is sent on, ns.
    delay: u64,
    active: usize,
    /// Per instance: the GOP in progress (active-active).
    current: [Option<Gop<T>>; 2],
    /// Per instance: its last complete GOPs, oldest first (the standby's).
    kept: [VecDeque<Gop<T>>; 2],
    /// Committed frames waiting for their time: (due, frame).
    line: VecDeque<(u64, T)>,
    /// Where the committed stream ends: the start of the GOP to commit next.
    next: Option<u64>,
    /// Nothing passes until a keyframe from the active (none / passive).
    need_key: bool,
    /// Frames committed so far, and GOPs skipped because no continuation
    /// existed (a gap in the output).
    pub released: u64,
    pub gaps: u64,
}

impl<T: Frame> Selector<T> {
    /// `delay`: active-active only, ns (see the module docs).
    pub fn new(mode: Redundancy, schedule: Schedule, delay: u64) -> Self {
        Selector {
            mode,
            schedule,
            delay,
            active: 0,
            current: [None, None],
            kept: [VecDeque::new(), VecDeque::new()],
            line: VecDeque::new(),
            next: None,
            need_key: true,
            released: 0,
            gaps: 0,
        }
    }

    pub fn active(&self) -> usize {
        self.active
    }

    /// A frame from instance `i` (0 primary, 1 backup) encoded at `now`
    /// (monotonic ns); returns the frames to send on now, in order.
    pub fn push(&mut self, i: usize, frame: T, now: u64) -> Vec<T> {
        if self.mode != Redundancy::ActiveActive {
            if i != self.active || (self.need_key && !frame.is_key()) {
                return Vec::new();
            }
            self.need_key = false;
            self.released += 1;
            return vec![frame];
        }
        let opens = frame.is_key() && frame.pts().is_some_and(|p| self.schedule.is_boundary(p));
        if !opens {
            // Before its first boundary an instance has nothing usable.
            if let Some(gop) = &mut self.current[i] {
                gop.frames.push((now, frame));
            }
            return self.due(now);
        }
        let start = frame.pts().unwrap_or_default();
        let finished = self.current[i].replace(Gop {
            start,
            frames: vec![(now, frame)],
        });
        if let Some(finished) = finished {
            if i == self.active {
                self.commit(finished, start);
            } else {
                let kept = &mut self.kept[i];
                kept.push_back(finished);
                while kept.len() > KEPT_GOPS {
                    kept.pop_front();
                }
            }
        }
        self.due(now)
    }

    /// Puts a complete GOP `[gop.start, end)` on the delay line if it
    /// continues the committed stream (or starts it, or nothing continues
    /// it any more).
    fn commit(&mut self, gop: Gop<T>, end: u64) {
        match self.next {
            Some(n) if gop.start < n => return, // already committed
            Some(n) if gop.start > n => self.gaps += 1,
            _ => {}
        }
        self.next = Some(end);
        self.released += gop.frames.len() as u64;
        let delay = self.delay;
        self.line.extend(
            gop.frames
                .into_iter()
                .map(|(at, f)| (at.saturating_add(delay), f)),
        );
    }

    /// The committed frames whose time has come.
    pub fn due(&mut self, now: u64) -> Vec<T> {
        let mut out = Vec::new();
        while self.line.front().is_some_and(|(due, _)| *due <= now) {
            out.extend(self.line.pop_front().map(|(_, f)| f));
        }
        out
    }

    /// Instance `i` failed at `now`. If it was on air, the other takes
    /// over (active-active: the standby's kept GOPs that continue the
    /// committed stream go on the line); returns what is due now.
    pub fn fail(&mut self, i: usize, now: u64) -> Vec<T> {
        self.current[i] = None;
        self.kept[i].clear();
        if i != self.active {
            return self.due(now);
        }
        if self.mode == Redundancy::None {
            // One instance: it is rebuilt and goes on air again.
            self.need_key = true;
            return Vec::new();
        }
        let other = 1 - i;
        self.active = other;
        if self.mode != Redundancy::ActiveActive {
            self.need_key = true;
            return Vec::new();
        }
        while let Some(gop) = self.kept[other].pop_front() {
            let end = self.kept[other]
                .front()
                .map(|g| g.start)
                .or(self.current[other].as_ref().map(|g| g.start));
            match (self.next, end) {
                // Already committed.
                (Some(n), Some(e)) if e <= n => continue,
                (_, Some(e)) => self.commit(gop, e),
                (_, None) => {}
            }
        }
        self.due(now)
    }

    /// The stream ends: everything committed, and the active's GOP in
    /// progress if it continues the committed stream, at once.
    pub fn flush(&mut self) -> Vec<T> {
        let a = self.active;
        if self.mode == Redundancy::ActiveActive {
            if let Some(gop) = self.current[a].take() {
                if self.next.is_none_or(|n| gop.start == n) {
                    self.commit(gop, u64::MAX);
                }
            }
        }
        self.line.drain(..).map(|(_, f)| f).collect()
    }

    /// A rebuilt instance starts afresh (nothing kept from before).
    pub fn reset(&mut self, i: usize) {
        self.current[i] = None;
        self.kept[i].clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct F {
        pts: u64,
        key: bool,
        from: usize,
    }
    impl Frame for F {
        fn pts(&self) -> Option<u64> {
            Some(self.pts)
        }
        fn is_key(&self) -> bool {
            self.key
        }
    }

    const MS: u64 = 1_000_000;

    fn sched() -> Schedule {
        // 5 frames of 40 ms per GOP: boundaries every 200 ms.
        Schedule::new(Duration::from_millis(200), (25, 1))
    }

    fn frame(n: u64, from: usize) -> F {
        let pts = n * 40 * MS;
        F {
            pts,
            key: sched().is_boundary(pts),
            from,
        }
    }

    /// Feeds frames `range` from both instances (unless `mute` says one is
    /// silent) and collects what is released.
    fn run(
        s: &mut Selector<F>,
        range: std::ops::Range<u64>,
        mute: Option<usize>,
        out: &mut Vec<F>,
    ) {
        for n in range {
            for i in 0..2 {
                if Some(i) != mute {
                    out.extend(s.push(i, frame(n, i), now(n)));
                }
            }
        }
    }

    fn now(n: u64) -> u64 {
        n * 40 * MS
    }

    fn continuous(out: &[F]) {
        for w in out.windows(2) {
            assert_eq!(w[1].pts - w[0].pts, 40 * MS, "gap or repeat: {w:?}");
        }
    }

    #[test]
    fn active_active_releases_whole_gops_from_the_primary() {
        let mut s = Selector::new(Redundancy::ActiveActive, sched(), 0);
        let mut out = Vec::new();
        run(&mut s, 0..21, None, &mut out);
        assert_eq!(out.len(), 20, "four GOPs released, the fifth in progress");
        assert!(out.iter().all(|f| f.from == 0));
        assert!(out[0].key && out[5].key);
        continuous(&out);
    }

    #[test]
    fn a_stalled_primary_is_replaced_mid_gop_without_gap_or_glitch() {
        let mut s = Selector::new(Redundancy::ActiveActive, sched(), 0);
        let mut out = Vec::new();
        run(&mut s, 0..12, None, &mut out); // primary stalls after frame 11
        run(&mut s, 12..19, Some(0), &mut out); // detected 7 frames later
        out.extend(s.fail(0, now(19)));
        run(&mut s, 19..31, Some(0), &mut out);
        continuous(&out);
        assert_eq!(out.first().unwrap().pts, 0);
        // GOP 10..15 came from the backup: the primary's never finished.
        assert_eq!(out[10].from, 1);
        assert!(out[10].key);
        assert!(out[..10].iter().all(|f| f.from == 0));
        assert_eq!(s.active(), 1);
        assert_eq!(s.gaps, 0);
    }

    #[test]
    fn detection_up_to_kept_gops_late_still_has_no_gap() {
        let mut s = Selector::new(Redundancy::ActiveActive, sched(), 0);
        let mut out = Vec::new();
        run(&mut s, 0..7, None, &mut out);
        run(&mut s, 7..20, Some(0), &mut out); // 2.6 GOPs before detection
        out.extend(s.fail(0, now(20)));
        run(&mut s, 20..26, Some(0), &mut out);
        continuous(&out);
        assert_eq!(out.len(), 25);
        assert_eq!(s.gaps, 0);
    }

    #[test]
    fn a_failed_standby_changes_nothing_on_air() {
        let mut s = Selector::new(Redundancy::ActiveActive, sched(), 0);
        let mut out = Vec::new();
        run(&mut s, 0..8, None, &mut out);
        assert!(s.fail(1, now(8)).is_empty());
        run(&mut s, 8..16, Some(1), &mut out);
        continuous(&out);
        assert!(out.iter().all(|f| f.from == 0));
        assert_eq!(s.active(), 0);
    }

    #[test]
    fn active_passive_passes_at_once_and_restarts_on_a_keyframe() {
        let mut s = Selector::new(Redundancy::ActivePassive, sched(), 0);
        let mut out = Vec::new();
        for n in 0..7 {
            out.extend(s.push(0, frame(n, 0), now(n)));
        }
        assert_eq!(out.len(), 7, "no delay");
        assert!(s.fail(0, now(7)).is_empty());
        // The standby starts mid-GOP: its first frame is a keyframe anyway
        // (a fresh encoder), later deltas before it are dropped.
        out.extend(s.push(
            1,
            F {
                pts: 9 * 40 * MS,
                key: false,
                from: 1,
            },
            0,
        ));
        out.extend(s.push(
            1,
            F {
                pts: 10 * 40 * MS,
                key: true,
                from: 1,
            },
            0,
        ));
        out.extend(s.push(1, frame(11, 1), 0));
        assert_eq!(out.len(), 9);
        assert_eq!(out[7].pts, 10 * 40 * MS);
        assert!(out[7].key);
    }

    #[test]
    fn a_single_encoder_is_rebuilt_and_resumes_on_a_keyframe() {
        let mut s = Selector::new(Redundancy::None, sched(), 0);
        let mut out = Vec::new();
        for n in 0..4 {
            out.extend(s.push(0, frame(n, 0), now(n)));
        }
        s.fail(0, 0);
        assert_eq!(s.active(), 0);
        out.extend(s.push(
            0,
            F {
                pts: 6 * 40 * MS,
                key: false,
                from: 0,
            },
            0,
        ));
        out.extend(s.push(
            0,
            F {
                pts: 7 * 40 * MS,
                key: true,
                from: 0,
            },
            0,
        ));
        assert_eq!(out.len(), 5);
        assert_eq!(out[4].pts, 7 * 40 * MS);
    }

    #[test]
    fn flush_releases_the_gop_in_progress_at_the_end() {
        let mut s = Selector::new(Redundancy::ActiveActive, sched(), 0);
        let mut out = Vec::new();
        run(&mut s, 0..8, None, &mut out);
        out.extend(s.flush());
        assert_eq!(out.len(), 8);
        continuous(&out);
    }

    #[test]
    fn the_delay_line_keeps_the_pace_through_a_late_detected_stall() {
        // delay = GOP (200 ms) + detection (7 frames) + margin.
        let delay = 200 * MS + 7 * 40 * MS + 40 * MS;
        let mut s = Selector::new(Redundancy::ActiveActive, sched(), delay);
        let mut sent = Vec::new(); // (when, frame)
        let feed = |s: &mut Selector<F>, n: u64, mute: Option<usize>, sent: &mut Vec<(u64, F)>| {
            for i in 0..2 {
                if Some(i) != mute {
                    for f in s.push(i, frame(n, i), now(n)) {
                        sent.push((now(n), f));
                    }
                }
            }
        };
        for n in 0..12 {
            feed(&mut s, n, None, &mut sent);
        }
        for n in 12..19 {
            feed(&mut s, n, Some(0), &mut sent);
        }
        for f in s.fail(0, now(19)) {
            sent.push((now(19), f));
        }
        for n in 19..40 {
            feed(&mut s, n, Some(0), &mut sent);
        }
        let frames: Vec<F> = sent.iter().map(|(_, f)| *f).collect();
        continuous(&frames);
        // Every frame leaves exactly `delay` after it was encoded: the
        // change-over is invisible in the output's pace.
        for (at, f) in &sent {
            assert_eq!(*at - f.pts, delay, "{f:?} sent at {at}");
        }
        assert!(frames.iter().any(|f| f.from == 1));
    }

    #[test]
    fn a_late_keyframe_off_the_schedule_does_not_split_gops() {
        let mut s = Selector::new(Redundancy::ActiveActive, sched(), 0);
        let mut out = Vec::new();
        for n in 0..11 {
            let mut f = frame(n, 0);
            if n == 7 {
                f.key = true; // a scene cut on the primary only
            }
            out.extend(s.push(0, f, now(n)));
            out.extend(s.push(1, frame(n, 1), now(n)));
        }
        assert_eq!(out.len(), 10);
        continuous(&out);
    }
}
