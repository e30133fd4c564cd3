//! Failover: each cycle lets the primary flow, closes its valve for a
//! while, and opens it again; the child measures how long the switch took
//! to fail over and to return, and checks the output's cadence and
//! timestamps. The parent prints the table.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gst::prelude::*;

use super::common::{watchdog, Fields, Result};
use super::pipeline::{Bench, Mode, OutFrame, Tag};
use super::{Opts, Switch, FRAME_NS, LATE_GAP_NS, NOT_AVAILABLE, TIMEOUT_NS};

struct Cycle {
    stall_at: u64,
    restore_at: u64,
    primary_at_stall: u64,
    on_primary_before: bool,
}

pub(super) fn run_failover(kind: Switch, o: &Opts) -> Result<Fields> {
    let per_cycle = o.healthy + o.stall;
    watchdog(
        per_cycle * o.cycles as u32 + Duration::from_secs(40),
        format!("failover {}", kind.arg()),
    );
    let mut b = Bench::build(kind, Mode::Failover, o.verbose)?;
    let valve = b.valve.clone().expect("failover pipeline has a valve");
    b.play()?;
    if !b.wait_for(Duration::from_secs(10), |f| !f.is_empty())? {
        b.stop();
        return Err(format!("{}: no output within 10 s of PLAYING", kind.arg()));
    }
    // Settle on the primary (nonstopswitch may start on whichever input is first).
    let on_primary = |f: &[OutFrame]| matches!(f.last().map(OutFrame::tag), Some(Tag::Primary(_)));
    b.wait_for(Duration::from_secs(5), on_primary)?;
    b.pump(Duration::from_millis(500))?;

    let t0 = b.now();
    let mut cycles = Vec::with_capacity(o.cycles);
    for i in 0..o.cycles {
        b.pump(o.healthy)?;
        let on_primary_before = on_primary(&b.frames.lock().unwrap());
        let primary_at_stall = b.primary_counter.load(Ordering::SeqCst);
        let stall_at = b.now();
        valve.set_property("drop", true);
        b.pump(o.stall)?;
        let restore_at = b.now();
        valve.set_property("drop", false);
        if o.verbose {
            eprintln!(
                "switch_bench: {} cycle {}: stall at {} ms, restore at {} ms",
                kind.arg(),
                i + 1,
                stall_at / 1_000_000,
                restore_at / 1_000_000
            );
        }
        cycles.push(Cycle {
            stall_at,
            restore_at,
            primary_at_stall,
            on_primary_before,
        });
    }
    b.pump(o.healthy)?;
    let t_end = b.now();
    b.stop();

    let frames = b.frames.lock().unwrap().clone();
    if let Some(path) = &o.dump {
        let mut csv = String::from("arrival_ns,pts_ns,tag\n");
        for f in &frames {
            let pts = f.pts.map_or(String::new(), |p| p.to_string());
            csv += &format!("{},{pts},{:?}\n", f.arrival, f.tag());
        }
        std::fs::write(path, csv).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(analyse_failover(
        &frames,
        &cycles,
        t0,
        t_end,
        b.switch_messages.len(),
    ))
}

fn analyse_failover(
    frames: &[OutFrame],
    cycles: &[Cycle],
    t0: u64,
    t_end: u64,
    switch_messages: usize,
) -> Fields {
    let mut failover_ns: Vec<i64> = Vec::new();
    let mut failover_pts_ns: Vec<i64> = Vec::new();
    let mut return_ns: Vec<i64> = Vec::new();
    let mut missed_failovers = 0;
    let mut missed_returns = 0;
    let mut not_on_primary = 0;
    for (i, c) in cycles.iter().enumerate() {
        let window_end = cycles.get(i + 1).map_or(t_end, |n| n.stall_at);
        if !c.on_primary_before {
            not_on_primary += 1;
        }
        let first_backup = frames.iter().find(|f| {
            f.arrival >= c.stall_at && f.arrival < window_end && matches!(f.tag(), Tag::Backup(_))
        });
        match first_backup {
            Some(f) => {
                failover_ns.push(f.arrival as i64 - c.stall_at as i64 - TIMEOUT_NS as i64);
                if let Some(pts) = f.pts {
                    failover_pts_ns.push(pts as i64 - c.stall_at as i64 - TIMEOUT_NS as i64);
                }
            }
            None => missed_failovers += 1,
        }
        // A primary frame made after the stall began (repeats of older ones do not count).
        let first_primary = frames.iter().find(|f| {
            f.arrival >= c.restore_at
                && f.arrival < window_end
                && matches!(f.tag(), Tag::Primary(n) if n > c.primary_at_stall)
        });
        match first_primary {
            Some(f) => return_ns.push(f.arrival as i64 - c.restore_at as i64),
            None => missed_returns += 1,
        }
    }

    let run: Vec<&OutFrame> = frames
        .iter()
        .filter(|f| f.arrival >= t0 && f.arrival <= t_end)
        .collect();
    let mut max_gap = 0u64;
    let mut late_gaps = 0usize;
    let mut max_pts_step: Option<u64> = None;
    let mut min_pts_step: Option<i64> = None;
    let mut pts_backwards = 0usize;
    let mut no_pts = 0usize;
    let mut repeats = 0usize;
    for w in run.windows(2) {
        let gap = w[1].arrival.saturating_sub(w[0].arrival);
        max_gap = max_gap.max(gap);
        if gap > LATE_GAP_NS {
            late_gaps += 1;
        }
        if w[1].offset == w[0].offset && w[1].offset != u64::MAX {
            repeats += 1;
        }
        if let (Some(a), Some(b)) = (w[0].pts, w[1].pts) {
            let step = b as i64 - a as i64;
            if step <= 0 {
                pts_backwards += 1;
            }
            min_pts_step = Some(min_pts_step.map_or(step, |m| m.min(step)));
            if step > 0 {
                max_pts_step = Some(max_pts_step.map_or(step as u64, |m| m.max(step as u64)));
            }
        }
    }
    no_pts += run.iter().filter(|f| f.pts.is_none()).count();
    let black = run.iter().filter(|f| f.tag() == Tag::Black).count();
    let span_ns = match (run.first(), run.last()) {
        (Some(a), Some(b)) => b.arrival - a.arrival,
        _ => 0,
    };
    // Frames in a closed interval of span_ns at 50 fps: span/20ms + 1.
    let expected = span_ns as f64 / FRAME_NS as f64 + 1.0;

    let mut r = BTreeMap::new();
    let ms = |ns: i64| format!("{:.1}", ns as f64 / 1e6);
    let mut put = |k: &str, v: String| {
        r.insert(k.to_string(), v);
    };
    put("cycles", cycles.len().to_string());
    // Output latency: how long after its PTS (running time) a frame leaves the switch.
    let mut latency_ns: Vec<i64> = run
        .iter()
        .filter_map(|f| f.pts.map(|p| f.arrival as i64 - p as i64))
        .collect();
    for (name, v) in [
        ("failover", &mut failover_ns),
        ("failover_pts", &mut failover_pts_ns),
        ("return", &mut return_ns),
        ("latency", &mut latency_ns),
    ] {
        v.sort_unstable();
        if !v.is_empty() {
            put(&format!("{name}_p50_ms"), ms(percentile(v, 0.50)));
            put(&format!("{name}_p99_ms"), ms(percentile(v, 0.99)));
            put(&format!("{name}_max_ms"), ms(*v.last().unwrap()));
            put(&format!("{name}_min_ms"), ms(v[0]));
        }
    }
    put("missed_failovers", missed_failovers.to_string());
    put("missed_returns", missed_returns.to_string());
    put("not_on_primary_at_stall", not_on_primary.to_string());
    put("max_gap_ms", ms(max_gap as i64));
    put("late_gaps", late_gaps.to_string());
    put(
        "max_pts_step_ms",
        max_pts_step.map_or("-".into(), |s| ms(s as i64)),
    );
    put("min_pts_step_ms", min_pts_step.map_or("-".into(), ms));
    put("pts_not_increasing", pts_backwards.to_string());
    put("no_pts", no_pts.to_string());
    put("frames_out", run.len().to_string());
    put("frames_expected", format!("{expected:.1}"));
    put("span_s", format!("{:.2}", span_ns as f64 / 1e9));
    put("black_frames", black.to_string());
    put("repeated_frames", repeats.to_string());
    put("switch_messages", switch_messages.to_string());
    r
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn field(r: &Fields, k: &str) -> String {
    r.get(k).cloned().unwrap_or("-".into())
}

fn pair(r: &Fields, a: &str, b: &str) -> String {
    format!("{} / {}", field(r, a), field(r, b))
}

/// One row of the failover table: name, target, how to show a child's fields.
type Row = (&'static str, &'static str, fn(&Fields) -> String);

const FAILOVER_ROWS: &[Row] = &[
    ("failover beyond timeout, p50 (ms)", "", |r| {
        field(r, "failover_p50_ms")
    }),
    ("failover beyond timeout, p99 (ms)", "≤ 20", |r| {
        field(r, "failover_p99_ms")
    }),
    ("failover beyond timeout, max (ms)", "", |r| {
        field(r, "failover_max_ms")
    }),
    ("cycles without failover", "0", |r| {
        field(r, "missed_failovers")
    }),
    (
        "failover beyond timeout by PTS of that frame, p50 / max (ms)",
        "",
        |r| pair(r, "failover_pts_p50_ms", "failover_pts_max_ms"),
    ),
    (
        "output latency (arrival − PTS), p50 / max (ms)",
        "",
        |r| pair(r, "latency_p50_ms", "latency_max_ms"),
    ),
    ("return after restore, p50 / max (ms)", "", |r| {
        pair(r, "return_p50_ms", "return_max_ms")
    }),
    ("cycles without return", "0", |r| field(r, "missed_returns")),
    (
        "cycles not back on the primary when the next stall began",
        "0",
        |r| field(r, "not_on_primary_at_stall"),
    ),
    (
        "largest output gap by arrival (ms)",
        "≤ 20 (+ jitter)",
        |r| field(r, "max_gap_ms"),
    ),
    ("arrival gaps > 30 ms", "0", |r| field(r, "late_gaps")),
    ("smallest / largest PTS step (ms)", "20 / 20", |r| {
        pair(r, "min_pts_step_ms", "max_pts_step_ms")
    }),
    ("PTS strictly increasing", "yes", |r| {
        match (r.get("pts_not_increasing"), r.get("no_pts")) {
            (Some(a), Some(b)) if a == "0" && b == "0" => "yes".into(),
            (Some(a), Some(b)) => format!("no ({a} steps ≤ 0, {b} buffers without PTS)"),
            _ => "-".into(),
        }
    }),
    ("frames out / expected over the run", "± 1", |r| {
        let out: f64 = field(r, "frames_out").parse().unwrap_or(f64::NAN);
        let exp: f64 = field(r, "frames_expected").parse().unwrap_or(f64::NAN);
        format!(
            "{} / {} ({:+.1}) in {} s",
            field(r, "frames_out"),
            field(r, "frames_expected"),
            out - exp,
            field(r, "span_s")
        )
    }),
    ("black frames made by the switch", "", |r| {
        field(r, "black_frames")
    }),
    ("repeated frames", "", |r| field(r, "repeated_frames")),
    ("`nonstop-switch` messages", "", |r| {
        field(r, "switch_messages")
    }),
];

pub(super) fn print_failover(o: &Opts, failover: &[(Switch, Result<Fields>)]) {
    if failover.is_empty() {
        return;
    }
    println!(
        "#### Failover ({} cycles: primary flows {:.1} s, stalls {:.1} s; timeout 500 ms; \
         nonstopswitch return-after 1 s)\n",
        o.cycles,
        o.healthy.as_secs_f64(),
        o.stall.as_secs_f64()
    );
    let mut header = "| metric | target |".to_string();
    let mut rule = "| --- | --- |".to_string();
    for (k, _) in failover {
        header += &format!(" {} |", k.label());
        rule += " --- |";
    }
    println!("{header}\n{rule}");
    for (name, target, cell) in FAILOVER_ROWS {
        let mut line = format!("| {name} | {target} |");
        for (_, r) in failover {
            let v = match r {
                Ok(r) => cell(r),
                Err(e) if e == NOT_AVAILABLE => NOT_AVAILABLE.into(),
                Err(_) => "run failed".into(),
            };
            line += &format!(" {v} |");
        }
        println!("{line}");
    }
    println!();
}
