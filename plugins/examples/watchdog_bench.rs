//! Benchmark of `nonstopwatchdog` against core GStreamer `identity` (an
//! in-place passthrough that looks at nothing), on the same machine, in the
//! same run.
//!
//! Run it through `scripts/bench --only watchdog` (or a full `scripts/bench`),
//! which builds the plugin and sets `GST_PLUGIN_PATH`. The program
//! re-executes itself so that every measurement runs in its own process:
//!
//! ```text
//! watchdog_bench [run] [--frames N] [--reps R] [--cpu-secs S] [--cpu-reps R] [--quick]
//!                [--verbose]
//!     parent: runs every measurement in a child, prints markdown tables
//! watchdog_bench push video|audio480|audio1024|loudness identity|nonstopwatchdog [--frames N]
//!     child: pushes N buffers from one thread, prints one `RESULT key=value ...` line
//! watchdog_bench cpu identity|nonstopwatchdog [--cpu-secs S]
//!     child: one live CPU run, prints one `RESULT key=value ...` line
//! ```
//!
//! Push: a source pad of the program's own is linked to the element under test
//! (`element ! fakesink sync=false async=false` in a PLAYING pipeline with the
//! system clock). The calling thread pushes pre-made buffers (shallow copies
//! that share the memory of a few distinct frames, so nothing is rendered or
//! copied per push) and the whole chain runs in that thread; wall time and
//! process CPU time (`getrusage`) over the N buffers, after a warm-up, give the
//! cost per buffer. `identity` measured the same way is the cost of the push
//! itself (pad, passthrough, fakesink).
//!
//! CPU: `videotestsrc is-live=true pattern=smpte horizontal-speed=4 !
//! 1920x1080 I420 25/1 ! element ! fakesink sync=true`; the child measures its
//! own user+sys CPU time with `getrusage(RUSAGE_SELF)` over a fixed wall-clock
//! window after warm-up, as `switch_bench` does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gst::prelude::*;

mod common;
use common::{child, median, parse_num, print_result, usage, watchdog, Fields, Result};

/// Freeze and black timeouts given to the watchdog in the video runs.
const VIDEO_TIMEOUT_NS: u64 = 2_000_000_000;
/// Silence timeout given to the watchdog in the audio runs.
const AUDIO_TIMEOUT_NS: u64 = 2_000_000_000;
/// Target analysis cost of one 1080p I420 frame (docs/performance.md).
const VIDEO_TARGET_US: f64 = 500.0;
/// Distinct frames (or audio buffers) the pushed buffers cycle through; 8
/// 1080p frames are 24 MB, more than the caches, as real frames would be.
const DISTINCT: usize = 8;

// ---------------------------------------------------------------------------
// Options

#[derive(Clone, Debug)]
struct Opts {
    /// Video frames per push run; audio runs push 20× as many buffers.
    frames: usize,
    /// Push runs per element and stream.
    reps: usize,
    cpu_secs: f64,
    cpu_reps: usize,
    verbose: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            frames: 1000,
            reps: 5,
            cpu_secs: 15.0,
            cpu_reps: 3,
            verbose: false,
        }
    }
}

const USAGE: &str = "
usage: watchdog_bench [run] [--frames N] [--reps R] [--cpu-secs S] [--cpu-reps R] [--quick]
                      [--verbose]
       watchdog_bench push video|audio480|audio1024|loudness identity|nonstopwatchdog [--frames N]
       watchdog_bench cpu identity|nonstopwatchdog [--cpu-secs S]
";

impl Opts {
    fn parse(args: &[String]) -> Result<(Opts, Vec<String>)> {
        let mut o = Opts::default();
        let mut positional = Vec::new();
        let mut quick = false;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match a.as_str() {
                "--frames" => o.frames = parse_num(&value("--frames")?, "--frames")?,
                "--reps" => o.reps = parse_num(&value("--reps")?, "--reps")?,
                "--cpu-secs" => o.cpu_secs = parse_num(&value("--cpu-secs")?, "--cpu-secs")?,
                "--cpu-reps" => o.cpu_reps = parse_num(&value("--cpu-reps")?, "--cpu-reps")?,
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
            o.frames = o.frames.min(200);
            o.reps = 1;
            o.cpu_secs = o.cpu_secs.min(3.0);
            o.cpu_reps = 1;
        }
        if o.frames == 0 || o.reps == 0 || o.cpu_reps == 0 || o.cpu_secs <= 0.0 {
            return Err("--frames, --reps, --cpu-reps and --cpu-secs must be positive".into());
        }
        Ok((o, positional))
    }
}

// ---------------------------------------------------------------------------
// Elements and streams

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    Identity,
    Watchdog,
}

const ELEMS: [Elem; 2] = [Elem::Watchdog, Elem::Identity];

impl Elem {
    fn arg(self) -> &'static str {
        match self {
            Elem::Identity => "identity",
            Elem::Watchdog => "nonstopwatchdog",
        }
    }

    fn from_arg(s: &str) -> Result<Elem> {
        ELEMS
            .into_iter()
            .find(|e| e.arg() == s)
            .ok_or_else(|| format!("unknown element {s:?}\n{USAGE}"))
    }

    fn make(self, media: Media) -> Result<gst::Element> {
        let el = gst::ElementFactory::make(self.arg())
            .name("under_test")
            .build()
            .map_err(|e| {
                format!(
                    "cannot create {}: {e} (is GST_PLUGIN_PATH set?)",
                    self.arg()
                )
            })?;
        if self == Elem::Watchdog {
            if media == Media::Video {
                el.set_property("freeze-timeout", VIDEO_TIMEOUT_NS);
                el.set_property("black-timeout", VIDEO_TIMEOUT_NS);
            } else {
                el.set_property("silence-timeout", AUDIO_TIMEOUT_NS);
            }
            if media == Media::Loudness {
                // As nonstopd meters every input: a reading a second, and
                // every loudness alarm on.
                el.set_property("loudness-interval", 1_000_000_000u64);
                for p in [
                    "loud-timeout",
                    "quiet-timeout",
                    "true-peak-timeout",
                    "jump-timeout",
                ] {
                    el.set_property(p, AUDIO_TIMEOUT_NS);
                }
            }
        }
        Ok(el)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Media {
    /// 1920x1080 I420 25 fps.
    Video,
    /// 48 kHz stereo F32LE, 480 samples (10 ms) per buffer.
    Audio480,
    /// 48 kHz stereo F32LE, 1024 samples per buffer.
    Audio1024,
    /// The same, metered for loudness (EBU R128, true peak) too.
    Loudness,
}

const MEDIA: [Media; 4] = [
    Media::Video,
    Media::Audio480,
    Media::Audio1024,
    Media::Loudness,
];

impl Media {
    fn arg(self) -> &'static str {
        match self {
            Media::Video => "video",
            Media::Audio480 => "audio480",
            Media::Audio1024 => "audio1024",
            Media::Loudness => "loudness",
        }
    }

    fn from_arg(s: &str) -> Result<Media> {
        MEDIA
            .into_iter()
            .find(|m| m.arg() == s)
            .ok_or_else(|| format!("unknown stream {s:?}\n{USAGE}"))
    }

    fn describe(self) -> &'static str {
        match self {
            Media::Video => "video 1920x1080 I420, freeze-timeout = black-timeout = 2 s",
            Media::Audio480 => {
                "audio 48 kHz stereo F32LE, 480 samples (10 ms), silence-timeout 2 s"
            }
            Media::Audio1024 => "audio 48 kHz stereo F32LE, 1024 samples, silence-timeout 2 s",
            Media::Loudness => {
                "the same, with loudness metered (EBU R128 + true peak, a reading a second, \
                 loud/quiet/true-peak/jump timeouts 2 s)"
            }
        }
    }

    /// Buffers pushed per run.
    fn count(self, frames: usize) -> usize {
        match self {
            Media::Video => frames,
            _ => frames * 20,
        }
    }

    /// Caps, distinct buffers (no timestamps) and the duration of one buffer.
    fn make(self) -> Result<(gst::Caps, Vec<gst::Buffer>, u64)> {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            // xorshift64: cheap, deterministic content.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        match self {
            Media::Video => {
                let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 1920, 1080)
                    .fps(gst::Fraction::new(25, 1))
                    .build()
                    .map_err(|e| e.to_string())?;
                let caps = info.to_caps().map_err(|e| e.to_string())?;
                let (w, h) = (info.width() as usize, info.height() as usize);
                let stride = info.stride()[0] as usize;
                let mut frames = Vec::with_capacity(DISTINCT);
                for k in 0..DISTINCT {
                    let mut data = vec![128u8; info.size()];
                    // Luma: a diagonal gradient that moves 37 pixels per frame,
                    // plus noise, so that neighbouring frames differ by far more
                    // than the freeze tolerance and nothing is black.
                    for y in 0..h {
                        let row = &mut data[y * stride..y * stride + w];
                        for (x, p) in row.iter_mut().enumerate() {
                            let g = ((x + y + k * 37) % 220) as u64 + 30;
                            *p = (g + (next() & 15)) as u8;
                        }
                    }
                    frames.push(gst::Buffer::from_mut_slice(data));
                }
                Ok((caps, frames, 40_000_000))
            }
            Media::Audio480 | Media::Audio1024 | Media::Loudness => {
                let samples = if self == Media::Audio480 { 480 } else { 1024 };
                let info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::F32le, 48000, 2)
                    .build()
                    .map_err(|e| e.to_string())?;
                let caps = info.to_caps().map_err(|e| e.to_string())?;
                let mut bufs = Vec::with_capacity(DISTINCT);
                let mut n = 0u64;
                for k in 0..DISTINCT {
                    let freq = 440.0 + 110.0 * k as f64;
                    let mut data = Vec::with_capacity(samples * 2 * 4);
                    for _ in 0..samples {
                        let t = n as f64 / 48000.0;
                        n += 1;
                        // About −20 dBFS of sine plus a little noise.
                        let s = 0.1 * (2.0 * std::f64::consts::PI * freq * t).sin()
                            + ((next() & 0xffff) as f64 / 65536.0 - 0.5) * 0.01;
                        for _ in 0..2 {
                            data.extend_from_slice(&(s as f32).to_le_bytes());
                        }
                    }
                    bufs.push(gst::Buffer::from_mut_slice(data));
                }
                Ok((caps, bufs, samples as u64 * 1_000_000_000 / 48000))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Children

/// Errors and `nonstop-alarm` messages waiting on the bus.
fn drain_bus(pipeline: &gst::Pipeline, verbose: bool) -> Result<usize> {
    let bus = pipeline.bus().expect("pipeline has a bus");
    let mut alarms = 0;
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(e) => {
                return Err(format!(
                    "error from {}: {} ({:?})",
                    e.src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    e.error(),
                    e.debug()
                ));
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "nonstop-alarm") {
                    alarms += 1;
                    if verbose {
                        eprintln!("watchdog_bench: {s}");
                    }
                }
            }
            _ => {}
        }
    }
    Ok(alarms)
}

fn run_push(elem: Elem, media: Media, o: &Opts) -> Result<Fields> {
    watchdog(
        Duration::from_secs(60),
        format!("push {} {}", media.arg(), elem.arg()),
    );
    let (caps, bufs, dur) = media.make()?;
    let pipeline = gst::Pipeline::with_name("bench");
    let el = elem.make(media)?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline.add_many([&el, &sink]).map_err(|e| e.to_string())?;
    el.link(&sink).map_err(|e| e.to_string())?;
    let src = gst::Pad::builder(gst::PadDirection::Src)
        .name("bench_src")
        .build();
    let sinkpad = el.static_pad("sink").ok_or("element has no sink pad")?;
    src.link(&sinkpad).map_err(|e| e.to_string())?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| format!("{}: pipeline refused to go to PLAYING", elem.arg()))?;
    src.set_active(true).map_err(|e| e.to_string())?;
    src.push_event(gst::event::StreamStart::new("watchdog-bench"));
    src.push_event(gst::event::Caps::new(&caps));
    src.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));

    let push = |i: usize| -> Result<()> {
        let mut b = bufs[i % bufs.len()].copy();
        {
            let b = b.get_mut().expect("a fresh copy is writable");
            b.set_pts(gst::ClockTime::from_nseconds(i as u64 * dur));
            b.set_duration(gst::ClockTime::from_nseconds(dur));
        }
        src.push(b)
            .map(|_| ())
            .map_err(|e| format!("{}: push returned {e:?}", elem.arg()))
    };
    let n = media.count(o.frames);
    let warm = n / 10 + 1;
    for i in 0..warm {
        push(i)?;
    }
    let (u0, t0) = (usage(), Instant::now());
    for i in warm..warm + n {
        push(i)?;
    }
    let (u1, t1) = (usage(), Instant::now());
    let alarms = drain_bus(&pipeline, o.verbose)?;
    let _ = src.push_event(gst::event::Eos::new());
    let _ = pipeline.set_state(gst::State::Null);

    let wall = (t1 - t0).as_secs_f64();
    let cpu = (u1.cpu - u0.cpu).as_secs_f64();
    let mut r = BTreeMap::new();
    r.insert("buffers".into(), n.to_string());
    r.insert("wall_us".into(), format!("{:.3}", wall * 1e6 / n as f64));
    r.insert("cpu_us".into(), format!("{:.3}", cpu * 1e6 / n as f64));
    r.insert("alarms".into(), alarms.to_string());
    Ok(r)
}

fn run_cpu(elem: Elem, o: &Opts) -> Result<Fields> {
    watchdog(
        Duration::from_secs_f64(o.cpu_secs) + Duration::from_secs(30),
        format!("cpu {}", elem.arg()),
    );
    let pipeline = gst::Pipeline::with_name("bench");
    let src = gst::ElementFactory::make("videotestsrc")
        .property("is-live", true)
        .property_from_str("pattern", "smpte")
        .property("horizontal-speed", 4i32)
        .build()
        .map_err(|e| e.to_string())?;
    let caps: gst::Caps = "video/x-raw,format=I420,width=1920,height=1080,framerate=25/1"
        .parse()
        .map_err(|e| format!("caps: {e}"))?;
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", &caps)
        .build()
        .map_err(|e| e.to_string())?;
    let el = elem.make(Media::Video)?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", true)
        .property("qos", false)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline
        .add_many([&src, &filter, &el, &sink])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&src, &filter, &el, &sink]).map_err(|e| e.to_string())?;
    let rendered = || {
        sink.property::<gst::Structure>("stats")
            .get::<u64>("rendered")
            .unwrap_or(0)
    };
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| format!("{}: pipeline refused to go to PLAYING", elem.arg()))?;
    let start = Instant::now();
    while rendered() == 0 {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(format!("{}: no output within 10 s of PLAYING", elem.arg()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1)); // warm-up
    drain_bus(&pipeline, o.verbose)?;
    let (u0, t0, n0) = (usage(), Instant::now(), rendered());
    std::thread::sleep(Duration::from_secs_f64(o.cpu_secs));
    let (u1, t1, n1) = (usage(), Instant::now(), rendered());
    let alarms = drain_bus(&pipeline, o.verbose)?;
    let _ = pipeline.set_state(gst::State::Null);

    let wall = (t1 - t0).as_secs_f64();
    let cpu = (u1.cpu - u0.cpu).as_secs_f64();
    let mut r = BTreeMap::new();
    r.insert("cpu_pct".into(), format!("{:.3}", 100.0 * cpu / wall));
    r.insert("fps".into(), format!("{:.2}", (n1 - n0) as f64 / wall));
    r.insert("frames".into(), (n1 - n0).to_string());
    r.insert("alarms".into(), alarms.to_string());
    r.insert("wall_s".into(), format!("{wall:.2}"));
    Ok(r)
}

// ---------------------------------------------------------------------------
// Parent

fn num(r: &Fields, k: &str) -> f64 {
    r.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

/// Successful runs of one element: the values of `key`, the alarm count.
#[derive(Default)]
struct Runs {
    values: Vec<f64>,
    extra: Vec<f64>,
    alarms: u64,
    failed: usize,
}

impl Runs {
    fn add(&mut self, r: Result<Fields>, key: &str, extra: &str) {
        match r {
            Ok(r) => {
                self.values.push(num(&r, key));
                self.extra.push(num(&r, extra));
                self.alarms += num(&r, "alarms") as u64;
            }
            Err(e) => {
                eprintln!("watchdog_bench: {e}");
                self.failed += 1;
            }
        }
    }

    fn each(&self) -> String {
        let v: Vec<String> = self.values.iter().map(|v| format!("{v:.2}")).collect();
        let mut s = v.join(", ");
        if self.failed > 0 {
            s += &format!(" ({} run(s) failed)", self.failed);
        }
        s
    }
}

/// Runs `args_for(elem)` `reps` times per element, alternating the order.
fn alternate(
    reps: usize,
    key: &str,
    extra: &str,
    args_for: impl Fn(Elem) -> Vec<String>,
) -> [Runs; 2] {
    let mut runs = [Runs::default(), Runs::default()];
    for rep in 0..reps {
        let mut order = ELEMS;
        if rep % 2 == 1 {
            order.reverse();
        }
        for e in order {
            let i = ELEMS.iter().position(|x| *x == e).expect("in ELEMS");
            runs[i].add(child(&args_for(e)), key, extra);
        }
    }
    runs
}

fn run_all(o: &Opts) -> Result<()> {
    if gst::ElementFactory::find("nonstopwatchdog").is_none() {
        return Err(format!(
            "element nonstopwatchdog not found (GST_PLUGIN_PATH={})",
            std::env::var("GST_PLUGIN_PATH").unwrap_or_default()
        ));
    }
    let mut push = Vec::new();
    for m in MEDIA {
        eprintln!(
            "watchdog_bench: push {} ({} buffers, {} run(s) per element)",
            m.arg(),
            m.count(o.frames),
            o.reps
        );
        let runs = alternate(o.reps, "wall_us", "cpu_us", |e| {
            vec![
                "push".into(),
                m.arg().into(),
                e.arg().into(),
                "--frames".into(),
                o.frames.to_string(),
            ]
        });
        push.push((m, runs));
    }
    eprintln!(
        "watchdog_bench: cpu ({} s per run, {} run(s) per element)",
        o.cpu_secs, o.cpu_reps
    );
    let cpu = alternate(o.cpu_reps, "cpu_pct", "fps", |e| {
        vec![
            "cpu".into(),
            e.arg().into(),
            "--cpu-secs".into(),
            o.cpu_secs.to_string(),
        ]
    });

    println!(
        "#### nonstopwatchdog: analysis cost per buffer (direct push from one thread into \
         element ! fakesink sync=false; {} video frames or {} audio buffers per run, median \
         of {} run(s) per element)\n",
        o.frames,
        o.frames * 20,
        o.reps
    );
    println!(
        "| stream | identity µs/buffer | nonstopwatchdog µs/buffer | difference µs \
         | CPU µs/buffer identity / nonstopwatchdog | each run, nonstopwatchdog (µs) \
         | each run, identity (µs) | alarms raised | target |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (m, [wd, id]) in &push {
        let (w, i) = (median(&wd.values), median(&id.values));
        let target = if *m == Media::Video {
            let met = if w - i <= VIDEO_TARGET_US {
                "met"
            } else {
                "missed"
            };
            format!("≤ {VIDEO_TARGET_US:.0}: {met}")
        } else {
            String::new()
        };
        println!(
            "| {} | {i:.2} | {w:.2} | {:.2} | {:.2} / {:.2} | {} | {} | {} | {target} |",
            m.describe(),
            w - i,
            median(&id.extra),
            median(&wd.extra),
            wd.each(),
            id.each(),
            wd.alarms,
        );
    }
    println!();

    println!(
        "#### nonstopwatchdog: CPU on a live stream (videotestsrc is-live=true pattern=smpte \
         horizontal-speed=4 ! 1920x1080 I420 25/1 ! element ! fakesink sync=true; \
         nonstopwatchdog freeze-timeout = black-timeout = 2 s; {} s per run, median of {} \
         run(s) per element)\n",
        o.cpu_secs, o.cpu_reps
    );
    println!(
        "| pipeline | CPU % of one core (median) | each run (%) | vs identity \
         | CPU µs per frame | difference to identity, µs per frame | frames/s out \
         | alarms raised |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let reference = median(&cpu[1].values);
    let ref_us = reference * 1e4 / median(&cpu[1].extra);
    for (e, r) in ELEMS.iter().zip(&cpu) {
        let med = median(&r.values);
        let fps = median(&r.extra);
        // % of a core = 10^4 µs of CPU per second; divided by frames per second.
        let us = med * 1e4 / fps;
        println!(
            "| {} | {med:.2} | {} | {:.2}× | {us:.0} | {:+.0} | {fps:.1} | {} |",
            e.arg(),
            r.each(),
            med / reference,
            us - ref_us,
            r.alarms
        );
    }
    println!();
    Ok(())
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
            ["push", m, e] => {
                print_result(&run_push(Elem::from_arg(e)?, Media::from_arg(m)?, &o)?);
                Ok(())
            }
            ["cpu", e] => {
                print_result(&run_cpu(Elem::from_arg(e)?, &o)?);
                Ok(())
            }
            _ => Err(USAGE.trim().to_string()),
        }
    })();
    if let Err(e) = result {
        eprintln!("watchdog_bench: {e}");
        std::process::exit(1);
    }
}
