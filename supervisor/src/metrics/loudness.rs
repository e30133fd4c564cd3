//! The loudness families (EBU R128), per input and for the programme,
//! from the readings in the channels' snapshots. A source with no reading
//! (no audio now, or metering off) has no sample: a gap in the graph, not
//! a made-up level.

use prometheus_client::encoding::DescriptorEncoder;

use super::gauge;
use crate::channel::{Loudness, Snapshot};

type Rows = Vec<(Vec<(&'static str, String)>, f64)>;

/// Each reading that exists, labelled by channel and, for an input, its id.
fn readings(
    snaps: &[(String, Snapshot)],
    program: bool,
) -> Vec<(Vec<(&'static str, String)>, Loudness)> {
    let mut out = Vec::new();
    for (c, s) in snaps {
        let ch = ("channel", c.clone());
        if program {
            if let Some(l) = s.counters.program_loudness {
                out.push((vec![ch], l));
            }
            continue;
        }
        for (i, input) in s.inputs.iter().enumerate() {
            if let Some(Some(l)) = s.counters.input_loudness.get(i) {
                out.push((vec![ch.clone(), ("input", input.id.clone())], *l));
            }
        }
    }
    out
}

pub(super) fn families(
    e: &mut DescriptorEncoder,
    snaps: &[(String, Snapshot)],
) -> Result<(), std::fmt::Error> {
    for (program, prefix, whose) in [
        (false, "nonstop_input", "the input's sound"),
        (
            true,
            "nonstop_program",
            "the programme's sound, as it goes to the encoder",
        ),
    ] {
        let r = readings(snaps, program);
        let mut lufs: Rows = Vec::new();
        for (labels, l) in &r {
            for (window, v) in [
                ("momentary", l.momentary),
                ("short-term", l.short_term),
                ("integrated", l.integrated),
            ] {
                let mut labels = labels.clone();
                labels.push(("window", window.to_owned()));
                lufs.push((labels, v));
            }
        }
        gauge(
            e,
            &format!("{prefix}_loudness_lufs"),
            &format!("Loudness of {whose} (EBU R128; window: momentary 400 ms, short-term 3 s, integrated since the start; -200 below the gate)"),
            &lufs,
        )?;
        let rows = |f: fn(&Loudness) -> f64| -> Rows {
            r.iter().map(|(l, x)| (l.clone(), f(x))).collect()
        };
        gauge(
            e,
            &format!("{prefix}_loudness_range_lu"),
            &format!("Loudness range (LRA) of {whose} since the start"),
            &rows(|l| l.range),
        )?;
        gauge(
            e,
            &format!("{prefix}_true_peak_dbtp"),
            &format!("Highest true peak of {whose} over the last second"),
            &rows(|l| l.true_peak),
        )?;
    }
    Ok(())
}
