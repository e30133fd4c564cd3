//! Where GOPs begin: at the first frame of every keyframe interval on the
//! channel's running time. Every encoder instance is forced to a keyframe
//! there, so redundant encoders (and the renditions of a ladder) share
//! their GOP boundaries, whenever each was (re)started.

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
