//! nonstopd: the channel supervisor. `nonstopd --config FILE` runs the
//! channels; `nonstopd check FILE` validates and prints what it would build.

use std::path::Path;
use std::process::ExitCode;

use nonstop_supervisor::config::Config;
use nonstop_supervisor::encode::probe::Choice;
use nonstop_supervisor::{daemon, uri};

const USAGE: &str =
    "usage: nonstopd --config FILE [--session | --system | --address ADDR | --no-dbus]
                                run the channels of FILE until SIGTERM/SIGINT, with the
                                D-Bus API org.nonstop.Supervisor1 on the session bus
                                (default), the system bus, a bus address, or none
                                --metrics ADDR: Prometheus /metrics and /api/status over
                                HTTP (default 127.0.0.1:9464; an empty ADDR for none)
       nonstopd check FILE      validate FILE and print what it would build
       nonstopd --version

Logs go to stderr (journald under systemd); RUST_LOG filters them (default info).";

use nonstop_supervisor::config::fmt_duration;

/// What `check` prints: the channels as they would be built.
fn describe(c: &Config, choices: &[Vec<Vec<Choice>>]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (n, ch) in c.channels.iter().enumerate() {
        let choices: &[Vec<Choice>] = choices.get(n).map_or(&[], |v| v.as_slice());
        let v = ch.video;
        let _ = writeln!(
            s,
            "channel {}: video {}x{} @ {}/{} fps, audio {} Hz {} ch",
            ch.id.get_ref(),
            v.width,
            v.height,
            v.framerate.0,
            v.framerate.1,
            ch.audio.rate,
            ch.audio.channels
        );
        let fail_on: Vec<&str> = ch.watchdog.fail_on.iter().map(|a| a.name()).collect();
        let _ = writeln!(
            s,
            "  switching: timeout {}, return after {}, fail over on {}; at start, wait up to {} for the best input",
            fmt_duration(ch.timeout),
            fmt_duration(ch.return_after),
            fail_on.join(", "),
            fmt_duration(ch.startup_grace)
        );
        let _ = writeln!(
            s,
            "  returns: clean for return_after with no gap over {}; a failover within {} \
             of the last doubles it, up to {}",
            fmt_duration(ch.clean_gap),
            fmt_duration(ch.flap_window),
            fmt_duration(ch.max_return_after)
        );
        let _ = writeln!(
            s,
            "  restarts: backoff {} doubling to {}",
            fmt_duration(ch.backoff.initial),
            fmt_duration(ch.backoff.max)
        );
        let _ = writeln!(s, "  inputs, in priority order:");
        for (i, input) in ch.inputs.iter().enumerate() {
            let _ = writeln!(
                s,
                "    {i}. {}  {}",
                input.id.get_ref(),
                uri::redact(input.uri.get_ref())
            );
        }
        let _ = writeln!(s, "  audio encoder: AAC {} kbit/s", ch.audio.bitrate);
        for (e, enc) in ch.encoders.iter().enumerate() {
            let (w, h) = enc.size(&ch.video);
            let _ =
                writeln!(
                s,
                "  encoder {}: {} {}x{} {} kbit/s {}, keyframe every {}, preset {}, profile {}{}{}",
                enc.id(),
                enc.codec.name(),
                w,
                h,
                enc.video_bitrate,
                match enc.rate_control {
                    nonstop_supervisor::config::RateControl::Cbr => "cbr",
                    nonstop_supervisor::config::RateControl::Vbr => "vbr",
                },
                fmt_duration(enc.keyframe_interval),
                enc.preset.name(),
                enc.profile().name(),
                if enc.bframes > 0 { format!(", {} B-frames", enc.bframes) } else { String::new() },
                if enc.low_latency { ", low latency" } else { "" }
            );
            if let Some(list) = choices.get(e) {
                for (i, c) in list.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "    {}: {} ({})",
                        if i == 0 { "primary" } else { "backup" },
                        c.plan.factory,
                        c.why
                    );
                }
            }
            if enc.redundancy != nonstop_supervisor::config::Redundancy::None {
                let _ = writeln!(
                    s,
                    "    redundancy {}, failed when silent for {}, hold-off {}",
                    match enc.redundancy {
                        nonstop_supervisor::config::Redundancy::ActiveActive => "active-active",
                        _ => "active-passive",
                    },
                    fmt_duration(enc.stall_timeout),
                    fmt_duration(enc.hold_off)
                );
            }
        }
        if ch.outputs.is_empty() {
            let _ = writeln!(s, "  outputs: none");
        } else {
            let _ = writeln!(s, "  outputs:");
            for o in &ch.outputs {
                let carries: Vec<&str> = match &o.encoders {
                    Some(list) => list.iter().map(|n| n.get_ref().as_str()).collect(),
                    None if o.uri.get_ref().starts_with("hls:") => {
                        ch.encoders.iter().map(|e| e.id()).collect()
                    }
                    None => vec![ch.encoders[0].id()],
                };
                let _ = writeln!(
                    s,
                    "    {}  {}  [{}]",
                    o.id.get_ref(),
                    uri::redact(o.uri.get_ref()),
                    carries.join(", ")
                );
                for b in &o.backup {
                    let _ = writeln!(
                        s,
                        "      {} {}",
                        match o.mode {
                            nonstop_supervisor::config::OutputMode::Both => "also",
                            nonstop_supervisor::config::OutputMode::Failover => "backup",
                        },
                        uri::redact(b.get_ref())
                    );
                }
            }
        }
    }
    s
}

fn check(file: &str) -> ExitCode {
    let errors = match nonstop_supervisor::daemon::load_checked(Path::new(file)) {
        Ok(c) => {
            // Which encoder each instance would run on: a real probe.
            let mut errors = Vec::new();
            let mut choices = Vec::new();
            if let Err(e) = gst::init() {
                eprintln!("{file}: cannot initialize GStreamer to probe encoders: {e}");
                return ExitCode::FAILURE;
            }
            for n in 0..c.channels.len() {
                match nonstop_supervisor::encode::resolve(&c, n) {
                    Ok(ch) => choices.push(ch),
                    Err(e) => {
                        errors.extend(e);
                        choices.push(Vec::new());
                    }
                }
            }
            if errors.is_empty() {
                for w in c.warnings() {
                    eprintln!("{w}");
                }
                println!("{file}: valid, {} channel(s)", c.channels.len());
                print!("{}", describe(&c, &choices));
                return ExitCode::SUCCESS;
            }
            errors
        }
        Err(errors) => errors,
    };
    for e in &errors {
        eprintln!("{e}");
    }
    eprintln!("{file}: {} error(s)", errors.len());
    ExitCode::FAILURE
}

fn run(file: &str, bus: daemon::Bus, metrics: Option<std::net::SocketAddr>) -> ExitCode {
    daemon::init_logging();
    let result = daemon::run(Path::new(file), bus, metrics);
    // libsrt's own teardown at exit must not find a listener thread in it.
    nonstop_supervisor::srtin::close_all();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nonstopd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = None;
    let mut bus = daemon::Bus::Session;
    let mut metrics: Option<std::net::SocketAddr> = Some(([127, 0, 0, 1], 9464).into());
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let value = |i: usize| args.get(i + 1).cloned();
        match arg {
            "--version" | "-V" => {
                println!("nonstopd {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "check" => {
                return match value(i) {
                    Some(file) if args.len() == i + 2 => check(&file),
                    _ => {
                        eprintln!("nonstopd: check takes one FILE\n{USAGE}");
                        ExitCode::from(2)
                    }
                };
            }
            "--config" | "-c" => {
                config = value(i);
                i += 1;
            }
            a if a.starts_with("--config=") => config = Some(a["--config=".len()..].to_owned()),
            "--metrics" => {
                match value(i).as_deref() {
                    Some("") => metrics = None,
                    Some(a) => match a.parse() {
                        Ok(addr) => metrics = Some(addr),
                        Err(_) => {
                            eprintln!("nonstopd: --metrics takes HOST:PORT (e.g. 127.0.0.1:9464) or \"\" for none, not \"{a}\"");
                            return ExitCode::from(2);
                        }
                    },
                    None => {
                        eprintln!("nonstopd: --metrics needs HOST:PORT or \"\"\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
                i += 1;
            }
            "--system" => bus = daemon::Bus::System,
            "--session" => bus = daemon::Bus::Session,
            "--no-dbus" => bus = daemon::Bus::Off,
            "--address" => {
                match value(i) {
                    Some(a) => bus = daemon::Bus::Address(a),
                    None => {
                        eprintln!("nonstopd: --address needs a D-Bus address\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
                i += 1;
            }
            other => {
                eprintln!("nonstopd: unknown argument \"{other}\"\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        i += 1;
    }
    match config {
        Some(file) => run(&file, bus, metrics),
        None => {
            eprintln!("nonstopd: expected --config FILE or check FILE\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
