//! Where GOPs begin: at the first frame of every keyframe interval on the
//! channel's running time. Every encoder instance is forced to a keyframe
//! there, so redundant encoders (and the renditions of a ladder) share
//! their GOP boundaries, whenever each was (re)started.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The keyframe schedule of one encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Keyframe interval, ns (> 0).
    pub interval: u64,
    /// One frame, ns (> 0).
    pub frame: u64,
}

impl Schedule {
    pub fn new(interval: std::time::Duration, fps: (u32, u32)) -> Self {
        let frame = 1_000_000_000u64 * fps.1.max(1) as u64 / fps.0.max(1) as u64;
        Schedule {
            interval: (interval.as_nanos() as u64).max(frame).max(1),
            frame: frame.max(1),
        }
    }

    /// Whether the frame at `pts` (running time) opens a GOP: it is the
    /// first frame at or after a multiple of the interval.
    pub fn is_boundary(&self, pts: u64) -> bool {
        let k = pts / self.interval;
        pts < self.frame || (pts - self.frame) / self.interval != k
    }
}

/// Keyframes asked for besides the schedule: from a running time on (an
/// output just started and wants one now) and at splice points (SCTE-35
/// cues: the splice frame must be an IDR). Shared by every instance of a
/// rendition, so they all force the same frames.
#[derive(Debug)]
pub struct Requests {
    /// `u64::MAX`: none.
    from: AtomicU64,
    /// Splice points (running time), ascending.
    splices: Mutex<Vec<u64>>,
}

impl Default for Requests {
    fn default() -> Self {
        Requests {
            from: AtomicU64::new(u64::MAX),
            splices: Mutex::default(),
        }
    }
}

/// What one encoder instance has served of the [`Requests`].
#[derive(Debug, Default)]
pub struct Served {
    from: AtomicU64,
    splice: AtomicU64,
}

/// Splice points this far behind the newest are forgotten.
const SPLICE_MEMORY: u64 = 600_000_000_000;

impl Requests {
    /// A keyframe on the first frame at or after `t`.
    pub fn from_now(&self, t: u64) {
        self.from.store(t, Ordering::Relaxed);
    }

    /// A keyframe on the frame nearest `t`.
    pub fn splice_at(&self, t: u64) {
        let mut s = self.splices.lock().unwrap_or_else(|e| e.into_inner());
        s.push(t);
        s.sort_unstable();
        s.dedup();
        let newest = *s.last().unwrap_or(&0);
        s.retain(|&x| x + SPLICE_MEMORY >= newest);
    }

    /// Whether the frame at `pts` (lasting `frame` ns) must be a keyframe
    /// for an instance that has served `served` so far (updated).
    pub fn wanted(&self, pts: u64, frame: u64, served: &Served) -> bool {
        let from = self.from.load(Ordering::Relaxed);
        let mut want =
            from != u64::MAX && pts >= from && served.from.swap(from, Ordering::Relaxed) != from;
        let done = served.splice.load(Ordering::Relaxed);
        let reach = pts + frame / 2;
        let due = {
            let s = self.splices.lock().unwrap_or_else(|e| e.into_inner());
            s.iter().copied().filter(|&t| t > done && t <= reach).max()
        };
        if let Some(t) = due {
            served.splice.store(t, Ordering::Relaxed);
            want = true;
        }
        want
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_splice_point_forces_its_nearest_frame_once_per_instance() {
        let r = Requests::default();
        let (a, b) = (Served::default(), Served::default());
        r.splice_at(1_010_000_000);
        r.splice_at(3_000_000_000);
        let forced = |s: &Served| -> Vec<u64> {
            (0..100u64)
                .map(|n| n * 40_000_000)
                .filter(|&pts| r.wanted(pts, 40_000_000, s))
                .collect()
        };
        // 1.010 s is nearest the frame at 1.000 s (within half a frame).
        assert_eq!(forced(&a), vec![1_000_000_000, 3_000_000_000]);
        assert_eq!(
            forced(&b),
            vec![1_000_000_000, 3_000_000_000],
            "each instance"
        );
        assert_eq!(forced(&a), Vec::<u64>::new(), "served once");
        r.from_now(2_000_000_001);
        assert_eq!(forced(&a), vec![2_040_000_000]);
    }

    #[test]
    fn one_boundary_per_interval_whatever_the_phase() {
        let s = Schedule::new(Duration::from_secs(1), (25, 1));
        for phase in [0u64, 3_000_000, 39_999_999] {
            let b: Vec<u64> = (0..250u64)
                .map(|n| phase + n * 40_000_000)
                .filter(|pts| s.is_boundary(*pts))
                .collect();
            assert_eq!(b.len(), 10, "phase {phase}: {b:?}");
            for w in b.windows(2) {
                assert_eq!(w[1] - w[0], 1_000_000_000, "phase {phase}");
            }
        }
    }

    #[test]
    fn ntsc_rates_keep_one_boundary_per_interval() {
        let s = Schedule::new(Duration::from_secs(2), (30000, 1001));
        let n = (0..3000u64)
            .map(|i| i * 1_000_000_000 * 1001 / 30000)
            .filter(|pts| s.is_boundary(*pts))
            .count();
        assert_eq!(n, 51); // 100.1 s of frames: boundaries at 0, 2, …, 100 s
    }

    #[test]
    fn an_interval_below_a_frame_makes_every_frame_a_boundary() {
        let s = Schedule::new(Duration::from_millis(1), (25, 1));
        assert!((0..10u64).all(|n| s.is_boundary(n * 40_000_000)));
    }
}
