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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

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

mod common;
use common::{child, median, parse_num, print_result, usage, watchdog, Fields, Result};

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
// Pipeline

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Failover,
    Cpu(CpuConfig),
}

/// One output buffer seen on the switch's src pad.
#[derive(Clone, Copy, Debug)]
struct OutFrame {
    /// Pipeline running time when the buffer left the switch.
    arrival: u64,
    pts: Option<u64>,
    offset: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Primary(u64),
    Backup(u64),
    /// Made by the switch itself (offset NONE).
    Black,
}

impl OutFrame {
    fn tag(&self) -> Tag {
        if self.offset == u64::MAX {
            Tag::Black
        } else if self.offset >= BACKUP_TAG {
            Tag::Backup(self.offset - BACKUP_TAG)
        } else {
            Tag::Primary(self.offset)
        }
    }
}

struct Bench {
    kind: Switch,
    pipeline: gst::Pipeline,
    valve: Option<gst::Element>,
    /// The sink whose `stats` count rendered frames.
    sink: gst::Element,
    frames: Arc<Mutex<Vec<OutFrame>>>,
    /// Last tag number given to a primary buffer.
    primary_counter: Arc<AtomicU64>,
    switch_messages: Vec<String>,
    verbose: bool,
}

fn make(factory: &str, name: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| format!("cannot create {factory}: {e} (is GST_PLUGIN_PATH set?)"))
}

/// Sets a property from a string if the object has it; `required` ones error out.
fn set_prop(obj: &impl IsA<glib::Object>, name: &str, value: &str, required: bool) -> Result<()> {
    if obj.find_property(name).is_some() {
        obj.set_property_from_str(name, value);
        Ok(())
    } else if required {
        Err(format!(
            "{} has no property {name:?}",
            obj.as_ref().type_().name()
        ))
    } else {
        eprintln!(
            "switch_bench: note: {} has no property {name:?}; left at default",
            obj.as_ref().type_().name()
        );
        Ok(())
    }
}

/// `videotestsrc is-live=true ! capsfilter` (+ `valve`), returns the last element.
fn source_chain(
    pipeline: &gst::Pipeline,
    name: &str,
    pattern: &str,
    caps: &str,
    with_valve: bool,
) -> Result<(gst::Element, gst::Element, Option<gst::Element>)> {
    let src = make("videotestsrc", &format!("{name}_src"))?;
    src.set_property("is-live", true);
    src.set_property_from_str("pattern", pattern);
    let caps: gst::Caps = caps.parse().map_err(|e| format!("caps: {e}"))?;
    let filter = make("capsfilter", &format!("{name}_caps"))?;
    filter.set_property("caps", &caps);
    pipeline
        .add_many([&src, &filter])
        .map_err(|e| e.to_string())?;
    src.link(&filter).map_err(|e| e.to_string())?;
    if with_valve {
        let valve = make("valve", &format!("{name}_valve"))?;
        pipeline.add(&valve).map_err(|e| e.to_string())?;
        filter.link(&valve).map_err(|e| e.to_string())?;
        Ok((src, valve.clone(), Some(valve)))
    } else {
        Ok((src, filter, None))
    }
}

fn fakesink(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element> {
    let sink = make("fakesink", name)?;
    sink.set_property("sync", true);
    sink.set_property("qos", false);
    pipeline.add(&sink).map_err(|e| e.to_string())?;
    Ok(sink)
}

/// Tags every buffer leaving `src` with `base + n` in its OFFSET field.
fn tag_source(src: &gst::Element, base: u64, counter: Arc<AtomicU64>) {
    let pad = src.static_pad("src").expect("videotestsrc has a src pad");
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer_mut() {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            buffer.make_mut().set_offset(base + n);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Records every buffer (and buffer-list member) passing `pad`.
fn record_output(pad: &gst::Pad, pipeline: &gst::Pipeline, frames: Arc<Mutex<Vec<OutFrame>>>) {
    let weak = pipeline.downgrade();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let Some(pipeline) = weak.upgrade() else {
                return gst::PadProbeReturn::Ok;
            };
            let arrival = pipeline
                .current_running_time()
                .map(|t| t.nseconds())
                .unwrap_or(0);
            let mut frames = frames.lock().unwrap();
            let mut push = |b: &gst::BufferRef| {
                frames.push(OutFrame {
                    arrival,
                    pts: b.pts().map(|t| t.nseconds()),
                    offset: b.offset(),
                })
            };
            if let Some(b) = info.buffer() {
                push(b);
            } else if let Some(list) = info.buffer_list() {
                list.iter().for_each(&mut push);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

impl Bench {
    fn build(kind: Switch, mode: Mode, verbose: bool) -> Result<Bench> {
        let pipeline = gst::Pipeline::with_name("bench");
        let failover = mode == Mode::Failover;
        // Failover runs tell the inputs apart; CPU runs use identical sources.
        let (p_pattern, b_pattern, caps) = match mode {
            Mode::Failover => ("smpte", "ball", CAPS),
            Mode::Cpu(c) => (c.pattern(), c.pattern(), c.caps()),
        };
        let (p_src, p_out, valve) = source_chain(&pipeline, "primary", p_pattern, caps, failover)?;
        let (b_src, b_out, _) = source_chain(&pipeline, "backup", b_pattern, caps, false)?;
        let primary_counter = Arc::new(AtomicU64::new(0));
        if failover {
            tag_source(&p_src, 0, primary_counter.clone());
            tag_source(&b_src, BACKUP_TAG, Arc::new(AtomicU64::new(0)));
        }

        let sink = fakesink(&pipeline, "out")?;
        let sw = make(kind.arg(), "switch")?;
        pipeline.add(&sw).map_err(|e| e.to_string())?;
        let mut sinkpads = Vec::new();
        for (i, upstream) in [&p_out, &b_out].into_iter().enumerate() {
            let pad = sw
                .request_pad_simple("sink_%u")
                .ok_or_else(|| format!("{}: no sink_%u request pad", kind.arg()))?;
            if kind != Switch::InputSelector {
                set_prop(&pad, "priority", &i.to_string(), kind == Switch::Fallback)?;
            }
            upstream
                .static_pad("src")
                .expect("src pad")
                .link(&pad)
                .map_err(|e| format!("linking {}: {e:?}", pad.name()))?;
            sinkpads.push(pad);
        }
        match kind {
            Switch::InputSelector => sw.set_property("active-pad", &sinkpads[0]),
            Switch::Nonstop => {
                set_prop(&sw, "timeout", &TIMEOUT_NS.to_string(), true)?;
                if failover {
                    set_prop(&sw, "return-after", &RETURN_AFTER_NS.to_string(), true)?;
                    // Every cycle measures one outage: no flap damping of
                    // the primary that fails every 3 s by design.
                    set_prop(&sw, "max-return-after", &RETURN_AFTER_NS.to_string(), true)?;
                }
            }
            Switch::Fallback => set_prop(&sw, "timeout", &TIMEOUT_NS.to_string(), true)?,
        }
        if verbose {
            for p in ["timeout", "return-after", "latency"] {
                if sw.find_property(p).is_some() {
                    let v = sw.property_value(p);
                    eprintln!("switch_bench: {} {p} = {v:?}", kind.arg());
                }
            }
        }
        sw.link(&sink).map_err(|e| e.to_string())?;
        let out_pad = sw.static_pad("src").expect("switch has a src pad");

        let frames = Arc::new(Mutex::new(Vec::with_capacity(8192)));
        if failover {
            record_output(&out_pad, &pipeline, frames.clone());
        }
        Ok(Bench {
            kind,
            pipeline,
            valve,
            sink,
            frames,
            primary_counter,
            switch_messages: Vec::new(),
            verbose,
        })
    }

    fn play(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| format!("{}: pipeline refused to go to PLAYING", self.kind.arg()))?;
        Ok(())
    }

    fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }

    fn now(&self) -> u64 {
        self.pipeline
            .current_running_time()
            .map(|t| t.nseconds())
            .unwrap_or(0)
    }

    fn rendered(&self) -> u64 {
        self.sink
            .property::<gst::Structure>("stats")
            .get::<u64>("rendered")
            .unwrap_or(0)
    }

    /// Handles bus messages for `d` of wall-clock time; errors end the run.
    fn pump(&mut self, d: Duration) -> Result<()> {
        let deadline = Instant::now() + d;
        let bus = self.pipeline.bus().expect("pipeline has a bus");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
            else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Error(e) => {
                    return Err(format!(
                        "{}: error from {}: {} ({:?})",
                        self.kind.arg(),
                        e.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        e.error(),
                        e.debug()
                    ));
                }
                gst::MessageView::Warning(w) if self.verbose => {
                    eprintln!("switch_bench: warning: {} ({:?})", w.error(), w.debug());
                }
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure().filter(|s| s.name() == "nonstop-switch") {
                        let line = format!("at {} ms: {}", self.now() / 1_000_000, s);
                        if self.verbose {
                            eprintln!("switch_bench: {line}");
                        }
                        self.switch_messages.push(line);
                    }
                }
                _ => {}
            }
        }
    }

    /// Pumps until `cond` holds on the recorded output, or `limit` passes.
    fn wait_for(&mut self, limit: Duration, cond: impl Fn(&[OutFrame]) -> bool) -> Result<bool> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond(&self.frames.lock().unwrap()) {
                return Ok(true);
            }
            self.pump(Duration::from_millis(20))?;
        }
        Ok(false)
    }
}

// ---------------------------------------------------------------------------
// Failover child

struct Cycle {
    stall_at: u64,
    restore_at: u64,
    primary_at_stall: u64,
    on_primary_before: bool,
}

fn run_failover(kind: Switch, o: &Opts) -> Result<Fields> {
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

// ---------------------------------------------------------------------------
// CPU child

fn run_cpu(kind: Switch, config: CpuConfig, o: &Opts) -> Result<Fields> {
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

// ---------------------------------------------------------------------------
// Parent

/// CPU runs of one pipeline in one configuration.
struct CpuRuns {
    kind: Switch,
    cpu_pct: Vec<f64>,
    fps: Vec<f64>,
    /// Per run: (voluntary, involuntary) context switches per output frame.
    csw_per_frame: Vec<(f64, f64)>,
    note: Option<String>,
}

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

/// All CPU runs of one configuration: `cpu_reps` per pipeline, alternating order.
fn run_cpu_config(o: &Opts, config: CpuConfig) -> Vec<CpuRuns> {
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

const NOT_AVAILABLE: &str = "not available";

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

fn print_failover(o: &Opts, failover: &[(Switch, Result<Fields>)]) {
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

fn print_cpu(o: &Opts, config: CpuConfig, cpu: &[CpuRuns]) {
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
