//! The SRT link families, from the channels' `Links` rows (a link with no
//! connection now has no sample) and their alarm counts (every link, from
//! the start).

use prometheus_client::encoding::DescriptorEncoder;

use super::{counter, gauge};
use crate::channel::{LinkRow, Snapshot};

type Labels = Vec<(&'static str, String)>;

fn labels(channel: &str, kind: &str, id: &str) -> Labels {
    vec![
        ("channel", channel.to_owned()),
        ("link", kind.to_owned()),
        ("id", id.to_owned()),
    ]
}

pub(super) fn families(
    e: &mut DescriptorEncoder,
    snaps: &[(String, Snapshot)],
) -> Result<(), std::fmt::Error> {
    let rows: Vec<(&str, &LinkRow)> = snaps
        .iter()
        .flat_map(|(c, s)| s.links.iter().map(move |l| (c.as_str(), l)))
        .collect();
    let gauges = |f: fn(&LinkRow) -> f64| -> Vec<(Labels, f64)> {
        rows.iter()
            .map(|(c, l)| (labels(c, &l.kind, &l.id), f(l)))
            .collect()
    };
    let counters = |f: fn(&LinkRow) -> u64| -> Vec<(Labels, u64)> {
        rows.iter()
            .map(|(c, l)| (labels(c, &l.kind, &l.id), f(l)))
            .collect()
    };
    gauge(
        e,
        "nonstop_srt_rtt_seconds",
        "Round-trip time of the SRT link",
        &gauges(|l| l.rtt_us as f64 / 1e6),
    )?;
    gauge(
        e,
        "nonstop_srt_bandwidth_bytes_per_second",
        "libsrt's estimate of the SRT link's capacity, in bytes (x8: bits) per second",
        &gauges(|l| l.bandwidth_kbps as f64 * 125.0),
    )?;
    gauge(
        e,
        "nonstop_srt_rate_bytes_per_second",
        "What goes through the SRT link (sent or received), in bytes (x8: bits) per second",
        &gauges(|l| l.rate_kbps as f64 * 125.0),
    )?;
    gauge(
        e,
        "nonstop_srt_loss_ratio",
        "Share of the SRT link's packets lost over the last 5 s",
        &gauges(|l| l.loss_ppm as f64 / 1e6),
    )?;
    counter(
        e,
        "nonstop_srt_packets",
        "Packets sent or received on the SRT link's connection",
        &counters(|l| l.packets),
    )?;
    counter(
        e,
        "nonstop_srt_packets_lost",
        "Packets lost on the SRT link's connection",
        &counters(|l| l.lost),
    )?;
    counter(
        e,
        "nonstop_srt_packets_retransmitted",
        "Packets the SRT link's sender resent (outputs)",
        &counters(|l| l.retransmitted),
    )?;
    counter(
        e,
        "nonstop_srt_packets_dropped",
        "Packets dropped as too late on the SRT link",
        &counters(|l| l.dropped),
    )?;
    let alarms: Vec<(Labels, u64)> = snaps
        .iter()
        .flat_map(|(c, s)| {
            s.counters
                .link_alarms
                .iter()
                .flat_map(move |(kind, id, loss, rtt)| {
                    [("loss", *loss), ("rtt", *rtt)].map(|(k, n)| {
                        let mut l = labels(c, kind, id);
                        l.push(("kind", k.to_owned()));
                        (l, n)
                    })
                })
        })
        .collect();
    counter(
        e,
        "nonstop_srt_alarms",
        "SRT link alarms raised (loss, rtt)",
        &alarms,
    )
}
