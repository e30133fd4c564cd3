//! Restart delays for failed inputs and outputs: exponential, capped, with
//! jitter so that many inputs failing together (a switch reboot upstream)
//! do not all reconnect in the same instant.

use std::time::Duration;

/// Share of the delay that jitter may take away: delays fall in
/// `[base × (1 − JITTER), base]`, so a configured bound is never exceeded.
const JITTER: f64 = 0.2;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Failures in a row since the last reset.
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// The un-jittered delay before the next attempt.
    pub fn base(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Records a failure and returns how long to wait before rebuilding;
    /// `unit` is a random number in [0, 1).
    pub fn fail_with(&mut self, unit: f64) -> Duration {
        let base = self.base();
        self.failures = self.failures.saturating_add(1);
        base.mul_f64(1.0 - JITTER * unit.clamp(0.0, 1.0))
    }

    pub fn fail(&mut self) -> Duration {
        self.fail_with(fastrand::f64())
    }

    /// The source has been healthy long enough: start again from `initial`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(ms(500), ms(30_000));
        let delays: Vec<_> = (0..10).map(|_| b.fail_with(0.0)).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000].map(ms)
        );
        assert_eq!(b.failures(), 10);
    }

    #[test]
    fn jitter_shortens_but_never_lengthens() {
        let mut b = Backoff::new(ms(1000), ms(1000));
        assert_eq!(b.fail_with(1.0), ms(800));
        assert_eq!(b.fail_with(0.5), ms(900));
        for _ in 0..1000 {
            let d = b.fail();
            assert!(d > ms(799) && d <= ms(1000), "{d:?}");
        }
    }

    #[test]
    fn reset_starts_over_and_huge_counts_do_not_overflow() {
        let mut b = Backoff::new(ms(500), ms(30_000));
        for _ in 0..100 {
            b.fail_with(0.0);
        }
        assert_eq!(b.base(), ms(30_000));
        b.reset();
        assert_eq!(b.fail_with(0.0), ms(500));
    }

    #[test]
    fn a_cap_below_initial_is_raised_to_it() {
        let mut b = Backoff::new(ms(2000), ms(100));
        assert_eq!(b.fail_with(0.0), ms(2000));
        assert_eq!(b.fail_with(0.0), ms(2000));
    }
}
