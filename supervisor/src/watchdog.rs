//! systemd's watchdog (`WatchdogSec=`): the keepalive `WATCHDOG=1` is sent
//! from a thread of its own, and only while every channel's event loop and
//! the daemon's own loop are turning, so systemd restarts a hung nonstopd.
//!
//! Why a thread: a channel loop blocked in a call (a deadlocked GStreamer
//! state change) holds one of the runtime's workers, and with it, as
//! measured by tests/systemd_notify.sh, the runtime's timers. A keepalive
//! sent from the event loop then stopped too, but without a word on which
//! channel hung; from here the warning names it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::warn;

/// A loop's last turn, in ns on [`crate::monotonic_ns`].
pub type Beat = Arc<AtomicU64>;

/// The loops the keepalive waits on: every running channel's, by id (the
/// daemon keeps the list in step with its registry).
pub type Beats = Arc<Mutex<Vec<(String, Beat)>>>;

/// The watchdog period systemd asked for, if any. Like libsystemd, a
/// missing WATCHDOG_PID means "for us" (sd-notify's helper insists on it).
pub fn period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The loops that have not turned for longer than `period` (last beats,
/// ns): while there is one, the keepalive is withheld.
pub fn stuck<'a>(beats: &[(&'a str, u64)], now: u64, period: Duration) -> Vec<&'a str> {
    beats
        .iter()
        .filter(|(_, beat)| now.saturating_sub(*beat) > period.as_nanos() as u64)
        .map(|(id, _)| *id)
        .collect()
}

/// The keepalive thread. `main` is the daemon loop's beat; the thread ends
/// once `running` is false (the daemon is stopping: systemd's stop timeout
/// takes over from there).
pub struct Keepalive {
    running: Arc<AtomicBool>,
}

impl Keepalive {
    /// Starts sending `WATCHDOG=1` every `period / 2` while no loop is stuck.
    pub fn start(period: Duration, channels: Beats, main: Beat) -> std::io::Result<Keepalive> {
        let running = Arc::new(AtomicBool::new(true));
        let run = running.clone();
        let every = (period / 2).max(Duration::from_millis(100));
        std::thread::Builder::new()
            .name("nonstop-watchdog".into())
            .spawn(move || {
                let mut was_stuck = Vec::new();
                while run.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    let now = crate::monotonic_ns();
                    let list: Vec<(String, u64)> = channels
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .map(|(id, b)| (id.clone(), b.load(Ordering::Relaxed)))
                        .collect();
                    let mut beats: Vec<(&str, u64)> =
                        list.iter().map(|(i, b)| (i.as_str(), *b)).collect();
                    beats.push((DAEMON, main.load(Ordering::Relaxed)));
                    let stuck: Vec<String> = stuck(&beats, now, period)
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                    if !run.load(Ordering::Relaxed) {
                        break;
                    }
                    if stuck.is_empty() {
                        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                    } else if stuck != was_stuck {
                        // Once per change: systemd acts within the period.
                        warn!(channels = ?stuck, "channel event loop not turning; withholding the watchdog keepalive");
                    }
                    was_stuck = stuck;
                }
            })?;
        Ok(Keepalive { running })
    }

    pub fn stop(&self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// The daemon's own loop, as named among the channels in the warning.
pub const DAEMON: &str = "(nonstopd)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_stopped_turning_withholds_the_keepalive() {
        let s = 1_000_000_000;
        let period = Duration::from_secs(5);
        let beats = [("news", 100 * s), ("sport", 96 * s), ("hung", 90 * s)];
        // At 100 s: news just turned, sport 4 s ago, hung 10 s ago.
        assert_eq!(stuck(&beats, 100 * s, period), ["hung"]);
        // Exactly one period is not yet stuck; all turning: keepalive.
        assert!(stuck(&beats[..2], 101 * s, period).is_empty());
        assert_eq!(stuck(&beats, 102 * s, period), ["sport", "hung"]);
    }
}
