//! The output destination policy, pure: which destination an output uses
//! (the primary, then its backups in failover mode), when a failure moves
//! it on, when it tries the primary again. The output lifecycle
//! (`outputs`) does the pipelines; this only decides, so it is unit-tested
//! here with made-up instants.

use std::time::{Duration, Instant};

/// How long an output must deliver before its failures are forgiven.
pub const STABLE: Duration = Duration::from_secs(10);
/// An output whose destination accepts no data for this long is rebuilt.
pub const STALL: Duration = Duration::from_secs(5);

/// One output's destinations and where it stands among them.
#[derive(Debug, Clone)]
pub struct Destinations {
    /// How many there are (the primary first).
    count: usize,
    /// The one in use.
    current: usize,
    /// Failures in a row on the current one.
    fails: u32,
    /// Failures in a row that move the output to the next one (≥ 1).
    failover_after: u32,
    /// On a backup this long, the primary is tried again.
    retry_primary: Duration,
    /// Since when the current one is in use.
    since: Instant,
}

/// What a failure of the output leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The same destination, after the output's backoff.
    Retry,
    /// The next destination, with a fresh backoff.
    Move { from: usize, to: usize },
}

/// What an output that is up (starting or delivering) should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhileUp {
    Nothing,
    /// Rebuild it: its destination accepted nothing for `limit`.
    Stalled {
        limit: Duration,
    },
    /// It has delivered long enough: forget its failures.
    Stable,
    /// It has been on a backup long enough: try the primary.
    RetryPrimary,
}

/// How an output that is up is doing, as `outputs` measures it.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Delivering (it has sent data since it started), not just starting.
    pub live: bool,
    /// Since when it is up (starting or live).
    pub up_since: Instant,
    /// When its byte count last moved (or it started).
    pub last_progress: Instant,
    /// Whether it has sent anything since it started.
    pub sent_any: bool,
    /// How long it may wait for its first data.
    pub start_grace: Duration,
    /// Its backoff has failures on record.
    pub backoff_failing: bool,
}

impl Destinations {
    pub fn new(count: usize, failover_after: u32, retry_primary: Duration, now: Instant) -> Self {
        Destinations {
            count,
            current: 0,
            fails: 0,
            failover_after: failover_after.max(1),
            retry_primary,
            since: now,
        }
    }

    /// The destination in use (0: the primary).
    pub fn current(&self) -> usize {
        self.current
    }

    /// The output failed: count it, and move on when there were enough in
    /// a row and there is somewhere to go.
    pub fn failed(&mut self, now: Instant) -> AfterFailure {
        self.fails += 1;
        if self.count > 1 && self.fails >= self.failover_after {
            let from = self.current;
            self.current = (self.current + 1) % self.count;
            self.fails = 0;
            self.since = now;
            return AfterFailure::Move {
                from,
                to: self.current,
            };
        }
        AfterFailure::Retry
    }

    /// What an output that is up should do at `now`; `Stable` and
    /// `RetryPrimary` take effect here (the caller resets the backoff or
    /// rebuilds the output).
    pub fn while_up(&mut self, p: Progress, now: Instant) -> WhileUp {
        let limit = if p.sent_any { STALL } else { p.start_grace };
        if now.saturating_duration_since(p.last_progress) > limit {
            return WhileUp::Stalled { limit };
        }
        if now.saturating_duration_since(p.up_since) >= STABLE
            && (p.backoff_failing || self.fails > 0)
        {
            self.fails = 0;
            return WhileUp::Stable;
        }
        if self.current != 0
            && p.live
            && now.saturating_duration_since(self.since) >= self.retry_primary
        {
            self.current = 0;
            self.fails = 0;
            self.since = now;
            return WhileUp::RetryPrimary;
        }
        WhileUp::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn up(t0: Instant, live: bool) -> Progress {
        Progress {
            live,
            up_since: t0,
            last_progress: t0,
            sent_any: live,
            start_grace: 8 * S,
            backoff_failing: false,
        }
    }

    #[test]
    fn failures_move_on_after_failover_after_in_a_row_and_wrap_around() {
        let t0 = Instant::now();
        let mut d = Destinations::new(3, 2, 60 * S, t0);
        assert_eq!(d.failed(t0), AfterFailure::Retry);
        assert_eq!(d.failed(t0), AfterFailure::Move { from: 0, to: 1 });
        assert_eq!(d.current(), 1);
        assert_eq!(d.failed(t0), AfterFailure::Retry);
        assert_eq!(d.failed(t0), AfterFailure::Move { from: 1, to: 2 });
        d.failed(t0);
        assert_eq!(d.failed(t0), AfterFailure::Move { from: 2, to: 0 });
    }

    #[test]
    fn a_single_destination_only_retries() {
        let t0 = Instant::now();
        let mut d = Destinations::new(1, 1, 60 * S, t0);
        for _ in 0..5 {
            assert_eq!(d.failed(t0), AfterFailure::Retry);
            assert_eq!(d.current(), 0);
        }
    }

    #[test]
    fn failover_after_zero_counts_as_one() {
        let t0 = Instant::now();
        let mut d = Destinations::new(2, 0, 60 * S, t0);
        assert_eq!(d.failed(t0), AfterFailure::Move { from: 0, to: 1 });
    }

    #[test]
    fn a_stall_is_judged_against_the_start_grace_until_data_flows() {
        let t0 = Instant::now();
        let mut d = Destinations::new(1, 1, 60 * S, t0);
        let starting = up(t0, false);
        assert_eq!(d.while_up(starting, t0 + 8 * S), WhileUp::Nothing);
        assert_eq!(
            d.while_up(starting, t0 + 9 * S),
            WhileUp::Stalled { limit: 8 * S }
        );
        let live = up(t0, true);
        assert_eq!(d.while_up(live, t0 + 5 * S), WhileUp::Nothing);
        assert_eq!(
            d.while_up(live, t0 + 6 * S),
            WhileUp::Stalled { limit: STALL }
        );
    }

    #[test]
    fn failures_are_forgiven_after_delivering_for_a_while() {
        let t0 = Instant::now();
        let mut d = Destinations::new(2, 3, 60 * S, t0);
        d.failed(t0);
        d.failed(t0);
        let mut p = up(t0, true);
        p.last_progress = t0 + 9 * S;
        assert_eq!(d.while_up(p, t0 + 9 * S), WhileUp::Nothing);
        p.last_progress = t0 + 10 * S;
        assert_eq!(d.while_up(p, t0 + 10 * S), WhileUp::Stable);
        // Forgiven: two more failures do not move it yet.
        d.failed(t0);
        assert_eq!(d.failed(t0), AfterFailure::Retry);
    }

    #[test]
    fn the_primary_is_tried_again_only_from_a_live_backup() {
        let t0 = Instant::now();
        let mut d = Destinations::new(2, 1, 30 * S, t0);
        assert_eq!(d.failed(t0), AfterFailure::Move { from: 0, to: 1 });
        let at = t0 + 30 * S;
        let mut p = up(at - S, false);
        p.last_progress = at;
        assert_eq!(d.while_up(p, at), WhileUp::Nothing, "still starting");
        p.live = true;
        assert_eq!(d.while_up(p, at - 2 * S), WhileUp::Nothing, "too soon");
        assert_eq!(d.while_up(p, at), WhileUp::RetryPrimary);
        assert_eq!(d.current(), 0);
        // On the primary, nothing to retry.
        p.last_progress = at + 59 * S;
        assert_eq!(d.while_up(p, at + 59 * S), WhileUp::Nothing);
    }
}
