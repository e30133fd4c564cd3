//! CPU: two always-flowing live sources into each switch; the child
//! measures its own CPU time and context switches over a fixed wall-clock
//! window after warm-up, the parent runs each pipeline `cpu_reps` times in
//! alternating order and prints the medians.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::common::{child, median, usage, watchdog, Fields, Result};
use super::pipeline::{Bench, Mode};
use super::{CpuConfig, Opts, Switch, ALL, NOT_AVAILABLE};

pub(super) fn run_cpu(kind: Switch, config: CpuConfig, o: &Opts) -> Result<Fields> {
    watchdog(
        Duration::from_secs_f64(o.cpu_secs) + Duration::from_secs(30),
        format!("cpu {} ({})", kind.arg(), config.arg()),
    );
    let mut b = Bench::build(kind, Mode::Cpu(config), o.verbose)?;
    b.play()?;
    let start = Instant::now();
    while b.rendered() == 0 {
        if start.elapsed() > Duration::from_secs(10) {
            b.stop();
            return Err(format!("{}: no output within 10 s of PLAYING", kind.arg()));
        }
        b.pump(Duration::from_millis(20))?;
    }
    b.pump(Duration::from_secs(1))?; // warm-up: pools, caps, first switch decisions
    let (u0, wall0, n0) = (usage(), Instant::now(), b.rendered());
    b.pump(Duration::from_secs_f64(o.cpu_secs))?;
    let (u1, wall1, n1) = (usage(), Instant::now(), b.rendered());
    b.stop();
    let wall = (wall1 - wall0).as_secs_f64();
    let cpu = (u1.cpu - u0.cpu).as_secs_f64();
    let mut r = BTreeMap::new();
    r.insert("config".into(), config.arg().into());
    r.insert("cpu_pct".into(), format!("{:.3}", 100.0 * cpu / wall));
    r.insert("fps".into(), format!("{:.2}", (n1 - n0) as f64 / wall));
    r.insert("frames".into(), (n1 - n0).to_string());
    r.insert("vcsw".into(), (u1.nvcsw - u0.nvcsw).to_string());
    r.insert("ivcsw".into(), (u1.nivcsw - u0.nivcsw).to_string());
    r.insert("wall_s".into(), format!("{wall:.2}"));
    Ok(r)
}

/// CPU runs of one pipeline in one configuration.
pub(super) struct CpuRuns {
    kind: Switch,
    cpu_pct: Vec<f64>,
    fps: Vec<f64>,
    /// Per run: (voluntary, involuntary) context switches per output frame.
    csw_per_frame: Vec<(f64, f64)>,
    note: Option<String>,
}

/// All CPU runs of one configuration: `cpu_reps` per pipeline, alternating order.
pub(super) fn run_cpu_config(o: &Opts, config: CpuConfig) -> Vec<CpuRuns> {
    let mut cpu: Vec<CpuRuns> = ALL
        .iter()
        .map(|&kind| CpuRuns {
            kind,
            cpu_pct: Vec::new(),
            fps: Vec::new(),
            csw_per_frame: Vec::new(),
            note: None,
        })
        .collect();
    for rep in 0..o.cpu_reps {
        // Alternate the order so drift (thermal, other load) spreads evenly.
        let mut order: Vec<usize> = (0..ALL.len()).collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let runs = &mut cpu[i];
            if !runs.kind.available() {
                runs.note = Some(NOT_AVAILABLE.into());
                continue;
            }
            eprintln!(
                "switch_bench: cpu {} {} run {}/{} ({} s)",
                config.arg(),
                runs.kind.arg(),
                rep + 1,
                o.cpu_reps,
                o.cpu_secs
            );
            let mut args = vec!["cpu".to_string(), runs.kind.arg().to_string()];
            args.extend(o.child_args());
            args.extend(["--cpu-config".to_string(), config.arg().to_string()]);
            match child(&args) {
                Ok(r) => {
                    let get = |key: &str| r.get(key).and_then(|v| v.parse::<f64>().ok());
                    match (
                        get("cpu_pct"),
                        get("fps"),
                        get("frames"),
                        get("vcsw"),
                        get("ivcsw"),
                    ) {
                        (Some(c), Some(f), Some(n), Some(v), Some(iv)) if n > 0.0 => {
                            runs.cpu_pct.push(c);
                            runs.fps.push(f);
                            runs.csw_per_frame.push((v / n, iv / n));
                        }
                        _ => {
                            eprintln!("switch_bench: incomplete result {r:?}");
                            runs.note = Some("a run failed (see log)".into());
                        }
                    }
                }
                Err(e) => {
                    eprintln!("switch_bench: {e}");
                    runs.note = Some("a run failed (see log)".into());
                }
            }
        }
    }
    cpu
}

/// Context switches per frame of the median run by total (mean of the two
/// middle runs for an even count): (total, voluntary, involuntary).
fn median_csw(runs: &[(f64, f64)]) -> (f64, f64, f64) {
    let mut v = runs.to_vec();
    v.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
    let n = v.len();
    let mid: &[(f64, f64)] = if n % 2 == 1 {
        &v[n / 2..=n / 2]
    } else {
        &v[n / 2 - 1..=n / 2]
    };
    let k = mid.len() as f64;
    let vol = mid.iter().map(|r| r.0).sum::<f64>() / k;
    let invol = mid.iter().map(|r| r.1).sum::<f64>() / k;
    (vol + invol, vol, invol)
}

pub(super) fn print_cpu(o: &Opts, config: CpuConfig, cpu: &[CpuRuns]) {
    println!(
        "#### CPU, {} config ({} → switch → fakesink sync=true; {} s per run, median of {} \
         run(s) per pipeline)\n",
        config.arg(),
        config.describe(),
        o.cpu_secs,
        o.cpu_reps
    );
    println!(
        "| pipeline | CPU % of one core (median) | each run (%) | vs input-selector \
         | CPU µs per output frame | context switches per output frame (voluntary + \
         involuntary) | frames/s out |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let reference = cpu
        .iter()
        .find(|c| c.kind == Switch::InputSelector && !c.cpu_pct.is_empty())
        .map(|c| median(&c.cpu_pct));
    for c in cpu {
        let note = c.note.clone().unwrap_or_default();
        if c.cpu_pct.is_empty() {
            println!("| {} | {note} | | | | | |", c.kind.label());
            continue;
        }
        let each: Vec<String> = c.cpu_pct.iter().map(|v| format!("{v:.2}")).collect();
        let med = median(&c.cpu_pct);
        let ratio = reference.map_or("-".into(), |r| format!("{:.2}×", med / r));
        let fps = median(&c.fps);
        // % of a core = 10^4 µs of CPU per second; divided by frames per second.
        let us_per_frame = med * 1e4 / fps;
        let (csw, vol, invol) = median_csw(&c.csw_per_frame);
        println!(
            "| {} | {med:.2} {note} | {} | {ratio} | {us_per_frame:.0} \
             | {csw:.2} ({vol:.2} + {invol:.2}) | {fps:.1} |",
            c.kind.label(),
            each.join(", "),
        );
    }
    println!();
}
