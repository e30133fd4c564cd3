//! Benchmark of `nonstopswitch` against two peers on the same machine, in the
//! same run, with the real system clock: core GStreamer `input-selector` and
//! gst-plugins-rs `fallbackswitch`.
//!
//! Run it through `scripts/bench`, which builds the plugins and sets
//! `GST_PLUGIN_PATH`. The program re-executes itself so that every
//! measurement runs in its own process:
//!
//! ```text
//! switch_bench [run] [--cycles N] [--quick] [--cpu-secs S] [--cpu-reps R]
//!              [--only failover|cpu] [--cpu-config micro|realistic|1000fps|all] [--verbose]
//!     parent: runs every measurement in a child, prints markdown tables
//! switch_bench failover nonstopswitch|fallbackswitch [--cycles N] [--dump F.csv] [--verbose]
//!     child: one failover run, prints one `RESULT key=value ...` line
//! switch_bench cpu nonstopswitch|input-selector|fallbackswitch [--cpu-secs S]
//!              [--cpu-config micro|realistic|1000fps]
//!     child: one CPU run, prints one `RESULT key=value ...` line
//! ```
//!
//! Failover: two live `videotestsrc` (primary with a `valve`, backup) feed the
//! switch; pad probes right after the sources tag every buffer through its
//! OFFSET field (primary `n`, backup `1<<40 + n`), a probe on the switch's src
//! pad records arrival (running time), PTS and tag of every output buffer.
//! Each cycle lets the primary flow, closes the valve at running time S for a
//! while, and opens it again at R.
//!
//! CPU: two always-flowing live sources into each switch and a synchronised
//! `fakesink`, in three configurations: "micro" (320x240 black frames, next
//! to free, so the switch's own share is visible), "realistic" (1280x720
//! SMPTE bars, which `videotestsrc` renders every frame) and "1000fps" (16x16
//! GRAY8 black at 1000 frames/s: the cost per output frame, magnified). The child measures
//! its own user+sys CPU time and context switches with
//! `getrusage(RUSAGE_SELF)` over a fixed wall-clock window after warm-up.
//!
//! Files: this one (options, the switches, the CPU configurations, the
//! parent), `pipeline` (the measured pipeline), `failover` and `cpu` (each
//! measurement: its child run and its table), `../common` (what the
//! harnesses share).

use std::time::Duration;

const FPS: u64 = 50;
const FRAME_NS: u64 = 1_000_000_000 / FPS;
/// Input timeout given to both failover switches.
const TIMEOUT_NS: u64 = 500_000_000;
/// `nonstopswitch` `return-after` (default 5 s) shortened to keep the run short.
const RETURN_AFTER_NS: u64 = 1_000_000_000;
/// Offset tag of backup buffers; primary buffers carry small numbers.
const BACKUP_TAG: u64 = 1 << 40;
/// Caps of the failover sources.
const CAPS: &str = "video/x-raw,format=I420,width=320,height=240,framerate=50/1";
/// Output gaps above this count as a missed frame rather than jitter.
const LATE_GAP_NS: u64 = 30_000_000;

#[path = "../common/mod.rs"]
mod common;
mod cpu;
mod failover;
mod pipeline;

use common::{child, parse_num, print_result, Fields, Result};
use cpu::{print_cpu, run_cpu, run_cpu_config, CpuRuns};
use failover::{print_failover, run_failover};

// ---------------------------------------------------------------------------
// Options

#[derive(Clone, Debug)]
struct Opts {
    cycles: usize,
    /// Primary flowing before each stall.
    healthy: Duration,
    /// Valve closed for this long.
    stall: Duration,
    cpu_secs: f64,
    cpu_reps: usize,
    /// CPU configuration to measure; `None` = all of them.
    cpu_config: Option<CpuConfig>,
    only: Option<String>,
    /// Failover child: write every output frame as CSV here.
    dump: Option<String>,
    verbose: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            cycles: 20,
            healthy: Duration::from_millis(1500),
            stall: Duration::from_millis(1500),
            cpu_secs: 15.0,
            cpu_reps: 3,
            cpu_config: None,
            only: None,
            dump: None,
            verbose: false,
        }
    }
}

impl Opts {
    fn parse(args: &[String]) -> Result<(Opts, Vec<String>)> {
        let mut o = Opts::default();
        let mut positional = Vec::new();
        let mut cycles_given = false;
        let mut quick = false;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match a.as_str() {
                "--cycles" => {
                    o.cycles = parse_num(&value("--cycles")?, "--cycles")?;
                    cycles_given = true;
                }
                "--cpu-secs" => o.cpu_secs = parse_num(&value("--cpu-secs")?, "--cpu-secs")?,
                "--cpu-reps" => o.cpu_reps = parse_num(&value("--cpu-reps")?, "--cpu-reps")?,
                "--only" => {
                    let v = value("--only")?;
                    if v != "failover" && v != "cpu" {
                        return Err(format!("--only takes failover or cpu, not {v:?}"));
                    }
                    o.only = Some(v);
                }
                "--cpu-config" => {
                    let v = value("--cpu-config")?;
                    o.cpu_config = match v.as_str() {
                        // "both" predates the third configuration: it means all.
                        "all" | "both" => None,
                        s => Some(CpuConfig::from_arg(s).ok_or_else(|| {
                            format!(
                                "--cpu-config takes micro, realistic, 1000fps or all, not {v:?}"
                            )
                        })?),
                    };
                }
                "--dump" => o.dump = Some(value("--dump")?),
                "--quick" => quick = true,
                "--verbose" | "-v" => o.verbose = true,
                "-h" | "--help" => {
                    println!("{}", USAGE.trim());
                    std::process::exit(0);
                }
                s if s.starts_with('-') => return Err(format!("unknown option {s:?}\n{USAGE}")),
                s => positional.push(s.to_string()),
            }
        }
        if quick {
            if !cycles_given {
                o.cycles = 3;
            }
            o.cpu_secs = o.cpu_secs.min(3.0);
            o.cpu_reps = 1;
        }
        if o.cycles == 0 || o.cpu_reps == 0 || o.cpu_secs <= 0.0 {
            return Err("--cycles, --cpu-reps and --cpu-secs must be positive".into());
        }
        Ok((o, positional))
    }

    fn child_args(&self) -> Vec<String> {
        let mut v = vec![
            "--cycles".to_string(),
            self.cycles.to_string(),
            "--cpu-secs".to_string(),
            self.cpu_secs.to_string(),
        ];
        if self.verbose {
            v.push("--verbose".into());
        }
        v
    }
}

const USAGE: &str = "
usage: switch_bench [run] [--cycles N] [--quick] [--cpu-secs S] [--cpu-reps R]
                    [--only failover|cpu] [--cpu-config micro|realistic|1000fps|all] [--verbose]
       switch_bench failover nonstopswitch|fallbackswitch [--cycles N] [--dump FILE.csv]
       switch_bench cpu nonstopswitch|input-selector|fallbackswitch [--cpu-secs S]
                    [--cpu-config micro|realistic|1000fps]   (default micro)
";

// ---------------------------------------------------------------------------
// The switches

const ALL: [Switch; 3] = [Switch::Nonstop, Switch::InputSelector, Switch::Fallback];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Switch {
    Nonstop,
    InputSelector,
    Fallback,
}

impl Switch {
    fn arg(self) -> &'static str {
        match self {
            Switch::Nonstop => "nonstopswitch",
            Switch::InputSelector => "input-selector",
            Switch::Fallback => "fallbackswitch",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Switch::Nonstop => "nonstopswitch (ours)",
            Switch::InputSelector => "input-selector (core)",
            Switch::Fallback => "fallbackswitch (gst-plugins-rs 0.15)",
        }
    }

    fn from_arg(s: &str) -> Result<Switch> {
        ALL.into_iter()
            .find(|k| k.arg() == s)
            .ok_or_else(|| format!("unknown switch {s:?}\n{USAGE}"))
    }

    fn available(self) -> bool {
        gst::ElementFactory::find(self.arg()).is_some()
    }
}

// ---------------------------------------------------------------------------
// CPU configurations

const CPU_CONFIGS: [CpuConfig; 3] = [CpuConfig::Micro, CpuConfig::Realistic, CpuConfig::Fps1000];

/// The sources of a CPU run (both inputs identical, both always flowing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CpuConfig {
    /// 320x240 black frames: the sources cost next to nothing.
    Micro,
    /// 1280x720 SMPTE bars, rendered by `videotestsrc` for every frame.
    Realistic,
    /// 16x16 GRAY8 black frames at 1000 fps: the per-frame cost of the
    /// switch (wakeups, locks, bookkeeping) dominates the process.
    Fps1000,
}

impl CpuConfig {
    fn arg(self) -> &'static str {
        match self {
            CpuConfig::Micro => "micro",
            CpuConfig::Realistic => "realistic",
            CpuConfig::Fps1000 => "1000fps",
        }
    }

    fn from_arg(s: &str) -> Option<CpuConfig> {
        CPU_CONFIGS.into_iter().find(|c| c.arg() == s)
    }

    fn pattern(self) -> &'static str {
        match self {
            CpuConfig::Micro => "black",
            CpuConfig::Realistic => "smpte",
            // Black GRAY8 is a memset of 256 bytes: the sources cost next to nothing.
            CpuConfig::Fps1000 => "black",
        }
    }

    fn caps(self) -> &'static str {
        match self {
            CpuConfig::Micro => CAPS,
            CpuConfig::Realistic => "video/x-raw,format=I420,width=1280,height=720,framerate=50/1",
            CpuConfig::Fps1000 => "video/x-raw,format=GRAY8,width=16,height=16,framerate=1000/1",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            CpuConfig::Micro => "two live 320x240 I420 50 fps black videotestsrc",
            CpuConfig::Realistic => "two live 1280x720 I420 50 fps smpte videotestsrc",
            CpuConfig::Fps1000 => "two live 16x16 GRAY8 1000 fps black videotestsrc",
        }
    }
}

// ---------------------------------------------------------------------------
// Parent: every measurement in a child of its own, then the tables

fn run_all(o: &Opts) -> Result<()> {
    for k in ALL {
        if !k.available() {
            eprintln!(
                "switch_bench: element {} not found (GST_PLUGIN_PATH={}); skipped",
                k.arg(),
                std::env::var("GST_PLUGIN_PATH").unwrap_or_default()
            );
        }
    }

    let mut failover: Vec<(Switch, Result<Fields>)> = Vec::new();
    if o.only.as_deref() != Some("cpu") {
        for k in [Switch::Nonstop, Switch::Fallback] {
            let r = if k.available() {
                eprintln!(
                    "switch_bench: failover {} ({} cycles, ~{} s)",
                    k.arg(),
                    o.cycles,
                    ((o.healthy + o.stall) * o.cycles as u32 + o.healthy).as_secs() + 2
                );
                let mut args = vec!["failover".to_string(), k.arg().to_string()];
                args.extend(o.child_args());
                child(&args).inspect_err(|e| eprintln!("switch_bench: {e}"))
            } else {
                Err(NOT_AVAILABLE.into())
            };
            failover.push((k, r));
        }
    }

    let mut cpu: Vec<(CpuConfig, Vec<CpuRuns>)> = Vec::new();
    if o.only.as_deref() != Some("failover") {
        let configs = o.cpu_config.map_or(CPU_CONFIGS.to_vec(), |c| vec![c]);
        for config in configs {
            cpu.push((config, run_cpu_config(o, config)));
        }
    }

    print_failover(o, &failover);
    for (config, runs) in &cpu {
        print_cpu(o, *config, runs);
    }
    Ok(())
}

const NOT_AVAILABLE: &str = "not available";

// ---------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = (|| -> Result<()> {
        let (o, pos) = Opts::parse(&args)?;
        gst::init().map_err(|e| format!("gst::init: {e}"))?;
        match pos
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] | ["run"] => run_all(&o),
            ["failover", k] => {
                let k = Switch::from_arg(k)?;
                if !matches!(k, Switch::Nonstop | Switch::Fallback) {
                    return Err("failover is measured for nonstopswitch and fallbackswitch".into());
                }
                print_result(&run_failover(k, &o)?);
                Ok(())
            }
            ["cpu", k] => {
                let config = o.cpu_config.unwrap_or(CpuConfig::Micro);
                print_result(&run_cpu(Switch::from_arg(k)?, config, &o)?);
                Ok(())
            }
            _ => Err(USAGE.trim().to_string()),
        }
    })();
    if let Err(e) = result {
        eprintln!("switch_bench: {e}");
        std::process::exit(1);
    }
}
