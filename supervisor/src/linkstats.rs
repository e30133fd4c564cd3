//! SRT link health: what libsrt counts on a connection (srtsrc's and
//! srtsink's `stats` property), reduced to what an operator watches, and
//! the loss and RTT alarms judged on it.
//!
//! GStreamer 1.22's structure: one `application/x-srt-statistics` for a
//! caller; a listener's holds a `callers` array of them, one per caller.
//! A receiver reports packets received and lost; a sender packets sent,
//! lost (reported by the receiver), retransmitted and dropped (too late to
//! send). Counters start over with each connection.

use std::collections::VecDeque;
use std::time::Duration;

/// One link's figures, summed over its callers (RTT: the worst).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkStats {
    pub rtt_ms: f64,
    /// libsrt's estimate of the link's capacity.
    pub bandwidth_mbps: f64,
    /// What goes through: the send rate of a sender, the receive rate of a
    /// receiver.
    pub rate_mbps: f64,
    /// Sent or received.
    pub packets: u64,
    pub lost: u64,
    pub retransmitted: u64,
    pub dropped: u64,
    /// Callers connected (a caller's own link: 1 once connected).
    pub connections: u32,
}

fn int(s: &gst::StructureRef, k: &str) -> u64 {
    s.get::<i64>(k)
        .map(|v| v.max(0) as u64)
        .or_else(|_| s.get::<i32>(k).map(|v| v.max(0) as u64))
        .or_else(|_| s.get::<u64>(k))
        .unwrap_or(0)
}

fn real(s: &gst::StructureRef, k: &str) -> f64 {
    s.get::<f64>(k)
        .ok()
        .filter(|v| v.is_finite())
        .unwrap_or(0.0)
}

/// One connection's figures, from the side that `sends` or receives.
fn one(s: &gst::StructureRef, sends: bool) -> LinkStats {
    let (packets, lost, rate) = if sends {
        ("packets-sent", "packets-sent-lost", "send-rate-mbps")
    } else {
        (
            "packets-received",
            "packets-received-lost",
            "receive-rate-mbps",
        )
    };
    LinkStats {
        rtt_ms: real(s, "rtt-ms"),
        bandwidth_mbps: real(s, "bandwidth-mbps"),
        rate_mbps: real(s, rate),
        packets: int(s, packets),
        lost: int(s, lost),
        // GStreamer 1.22 reports these for a sender only.
        retransmitted: if sends {
            int(s, "packets-retransmitted")
        } else {
            0
        },
        dropped: int(
            s,
            if sends {
                "packets-sent-dropped"
            } else {
                "packets-received-dropped"
            },
        ),
        connections: 1,
    }
}

impl LinkStats {
    /// A listener's callers as one link: counts and rates add up, the
    /// worst RTT and the narrowest bandwidth speak for it.
    fn sum(callers: impl Iterator<Item = LinkStats>) -> Option<LinkStats> {
        callers.reduce(|a, b| LinkStats {
            rtt_ms: a.rtt_ms.max(b.rtt_ms),
            bandwidth_mbps: a.bandwidth_mbps.min(b.bandwidth_mbps),
            rate_mbps: a.rate_mbps + b.rate_mbps,
            packets: a.packets + b.packets,
            lost: a.lost + b.lost,
            retransmitted: a.retransmitted + b.retransmitted,
            dropped: a.dropped + b.dropped,
            connections: a.connections + b.connections,
        })
    }

    /// From srtsrc's (`sends` false) or srtsink's `stats`. None before a
    /// connection: a caller not yet connected, a listener without caller.
    pub fn from_structure(s: &gst::StructureRef, sends: bool) -> Option<LinkStats> {
        if let Ok(callers) = s.get::<glib::ValueArray>("callers") {
            return Self::sum(
                callers
                    .iter()
                    .filter_map(|v| v.get::<gst::Structure>().ok())
                    .map(|c| one(&c, sends)),
            );
        }
        // A caller that has not connected has a structure of zeros (no
        // RTT measured, nothing through): say nothing rather than "0 ms".
        let l = one(s, sends);
        (l.packets > 0 || l.rtt_ms > 0.0).then_some(l)
    }
}

/// The bounds a link is judged on (0 / zero: not judged).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bounds {
    /// Percent of packets lost over `WINDOW`.
    pub max_loss: f64,
    pub max_rtt: Duration,
}

/// Loss is a share over this window, and a bound must be passed (or kept)
/// this long to raise (or clear) its alarm: a single burst is not a bad
/// link, one good second is not a healed one.
pub const WINDOW: Duration = Duration::from_secs(5);

/// A link's alarms, fed one reading a second.
#[derive(Debug, Default, Clone)]
pub struct Judge {
    /// (seconds since the judge began, packets, lost) of the last WINDOW.
    history: VecDeque<(f64, u64, u64)>,
    loss: Hold,
    rtt: Hold,
}

#[derive(Debug, Default, Clone, Copy)]
struct Hold {
    /// Since when the condition has differed from `raised`.
    since: Option<f64>,
    raised: bool,
}

impl Hold {
    /// Some(new state) when it changes.
    fn update(&mut self, bad: bool, t: f64) -> Option<bool> {
        if bad == self.raised {
            self.since = None;
            return None;
        }
        let since = *self.since.get_or_insert(t);
        if t - since >= WINDOW.as_secs_f64() {
            self.raised = bad;
            self.since = None;
            return Some(bad);
        }
        None
    }
}

/// An alarm that changed: its kind (`loss`, `rtt`), raised or cleared,
/// and the value judged (percent, ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: &'static str,
    pub raised: bool,
    pub value: f64,
}

impl Judge {
    /// The loss over the last window, percent (0 without traffic).
    pub fn loss_percent(&self) -> f64 {
        match (self.history.front(), self.history.back()) {
            (Some(a), Some(b)) => {
                let packets = b.1.saturating_sub(a.1);
                let lost = b.2.saturating_sub(a.2);
                if packets + lost == 0 {
                    0.0
                } else {
                    lost as f64 * 100.0 / (packets + lost) as f64
                }
            }
            _ => 0.0,
        }
    }

    pub fn raised(&self) -> Vec<&'static str> {
        [("loss", self.loss.raised), ("rtt", self.rtt.raised)]
            .iter()
            .filter(|(_, r)| *r)
            .map(|(k, _)| *k)
            .collect()
    }

    /// One reading at `t` seconds (None: no connection now, which clears
    /// nothing by itself: a link that is down is the stall alarm's, and
    /// its counters start over when it is back).
    pub fn feed(&mut self, t: f64, stats: Option<&LinkStats>, b: &Bounds) -> Vec<Change> {
        let Some(s) = stats else {
            self.history.clear();
            return Vec::new();
        };
        if self
            .history
            .back()
            .is_some_and(|l| s.packets < l.1 || s.lost < l.2)
        {
            self.history.clear(); // a new connection: its counters began again
        }
        self.history.push_back((t, s.packets, s.lost));
        while self
            .history
            .front()
            .is_some_and(|f| t - f.0 > WINDOW.as_secs_f64() + 0.5)
        {
            self.history.pop_front();
        }
        let loss = self.loss_percent();
        let mut out = Vec::new();
        let rtt_bad = !b.max_rtt.is_zero() && s.rtt_ms > b.max_rtt.as_secs_f64() * 1000.0;
        let loss_bad = b.max_loss > 0.0 && loss > b.max_loss;
        if let Some(raised) = self.loss.update(loss_bad, t) {
            out.push(Change {
                kind: "loss",
                raised,
                value: loss,
            });
        }
        if let Some(raised) = self.rtt.update(rtt_bad, t) {
            out.push(Change {
                kind: "rtt",
                raised,
                value: s.rtt_ms,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(fields: &str) -> gst::Structure {
        gst::init().unwrap();
        fields.parse().unwrap_or_else(|e| panic!("{e}: {fields}"))
    }

    #[test]
    fn a_sender_and_a_listener_with_its_callers_read_as_gstreamer_1_22_writes_them() {
        // As srtsink printed it (caller mode), trimmed.
        let sink = stats("application/x-srt-statistics, packets-sent=(gint64)3069, packets-sent-lost=(int)7, packets-retransmitted=(int)12, packets-sent-dropped=(int)2, send-rate-mbps=(double)1.9, bandwidth-mbps=(double)121.2, rtt-ms=(double)41.5, packets-received=(gint64)0, packets-received-lost=(int)0");
        let l = LinkStats::from_structure(&sink, true).unwrap();
        assert_eq!(
            (l.packets, l.lost, l.retransmitted, l.dropped, l.connections),
            (3069, 7, 12, 2, 1)
        );
        assert_eq!(
            (l.rtt_ms, l.rate_mbps, l.bandwidth_mbps),
            (41.5, 1.9, 121.2)
        );
        // srtsrc as a listener: its callers (a GValueArray of these; 1.22
        // cannot parse one from text, the e2e tests read a real one).
        let c1 = stats("application/x-srt-statistics, packets-received=(gint64)1000, packets-received-lost=(int)10, receive-rate-mbps=(double)2.0, bandwidth-mbps=(double)50.0, rtt-ms=(double)20.0");
        let c2 = stats("application/x-srt-statistics, packets-received=(gint64)500, packets-received-lost=(int)0, receive-rate-mbps=(double)1.0, bandwidth-mbps=(double)80.0, rtt-ms=(double)35.0");
        let l = LinkStats::sum([one(&c1, false), one(&c2, false)].into_iter()).unwrap();
        assert_eq!((l.packets, l.lost, l.connections), (1500, 10, 2));
        assert_eq!((l.rtt_ms, l.rate_mbps, l.bandwidth_mbps), (35.0, 3.0, 50.0));
        // No caller yet, or a caller not connected: no figures at all.
        assert_eq!(LinkStats::sum(std::iter::empty()), None);
        let idle = stats("application/x-srt-statistics, packets-sent=(gint64)0, rtt-ms=(double)0");
        assert_eq!(LinkStats::from_structure(&idle, true), None);
    }

    fn at(packets: u64, lost: u64, rtt_ms: f64) -> LinkStats {
        LinkStats {
            packets,
            lost,
            rtt_ms,
            connections: 1,
            ..Default::default()
        }
    }

    #[test]
    fn loss_over_the_window_raises_after_it_held_and_clears_after_it_healed() {
        let b = Bounds {
            max_loss: 1.0,
            max_rtt: Duration::ZERO,
        };
        let mut j = Judge::default();
        let mut changes = Vec::new();
        // 1000 packets a second; 2 % lost from second 10 to second 20.
        let (mut p, mut l) = (0, 0);
        for t in 0..40 {
            p += 1000;
            if (10..20).contains(&t) {
                l += 20;
            }
            for c in j.feed(t as f64, Some(&at(p, l, 5.0)), &b) {
                changes.push((t, c.kind, c.raised));
            }
        }
        // The 5 s window's share passes 1 % at 12 s (60 of 5060), held
        // 5 s: raised at 17; it is under 1 % again at 22 s (40 of 5040),
        // held 5 s: cleared at 27.
        assert_eq!(changes, [(17, "loss", true), (27, "loss", false)]);
        assert!(j.raised().is_empty());
    }

    #[test]
    fn rtt_and_a_new_connection() {
        let b = Bounds {
            max_loss: 1.0,
            max_rtt: Duration::from_millis(200),
        };
        let mut j = Judge::default();
        let mut raised_at = None;
        for t in 0..10 {
            let rtt = if t >= 2 { 350.0 } else { 20.0 };
            for c in j.feed(t as f64, Some(&at(1000 * (t + 1), 0, rtt)), &b) {
                assert_eq!((c.kind, c.raised, c.value), ("rtt", true, 350.0));
                raised_at = Some(t);
            }
        }
        assert_eq!(raised_at, Some(7), "over 200 ms from 2 s, for 5 s");
        assert_eq!(j.raised(), ["rtt"]);
        // The connection is replaced: counters start again. That is not
        // a loss of a million packets, nor a negative one.
        assert!(j.feed(10.0, Some(&at(10, 0, 20.0)), &b).is_empty());
        assert_eq!(j.loss_percent(), 0.0);
        // No connection: no reading, nothing judged.
        assert!(j.feed(11.0, None, &b).is_empty());
    }
}
