//! nonstopd: the channel supervisor. `nonstopd --config FILE` runs the
//! channels; `nonstopd check FILE` validates and prints what it would build.

use std::path::Path;
use std::process::ExitCode;

use nonstop_supervisor::config::Config;
use nonstop_supervisor::{daemon, uri};

const USAGE: &str = "usage: nonstopd --config FILE   run the channels of FILE until SIGTERM/SIGINT
       nonstopd check FILE      validate FILE and print what it would build
       nonstopd --version

Logs go to stderr (journald under systemd); RUST_LOG filters them (default info).";

fn fmt_duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// What `check` prints: the channels as they would be built.
fn describe(c: &Config) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for ch in &c.channels {
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
            "  switching: timeout {}, return after {}, fail over on {}",
            fmt_duration(ch.timeout),
            fmt_duration(ch.return_after),
            fail_on.join(", ")
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
        let e = &ch.encoder;
        let _ = writeln!(
            s,
            "  encoder: H.264 {} kbit/s, keyframe every {}, preset {}, AAC {} kbit/s{}",
            e.video_bitrate,
            fmt_duration(e.keyframe_interval),
            e.preset.name(),
            e.audio_bitrate,
            if e.low_latency { ", low latency" } else { "" }
        );
        if ch.outputs.is_empty() {
            let _ = writeln!(s, "  outputs: none");
        } else {
            let _ = writeln!(s, "  outputs:");
            for o in &ch.outputs {
                let _ = writeln!(
                    s,
                    "    {}  {}",
                    o.id.get_ref(),
                    uri::redact(o.uri.get_ref())
                );
            }
        }
    }
    s
}

fn check(file: &str) -> ExitCode {
    match Config::load(Path::new(file)) {
        Ok(c) => {
            println!("{file}: valid, {} channel(s)", c.channels.len());
            print!("{}", describe(&c));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{file}: {} error(s)", errors.len());
            ExitCode::FAILURE
        }
    }
}

fn run(file: &str) -> ExitCode {
    daemon::init_logging();
    match daemon::run(Path::new(file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nonstopd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--version"] | ["-V"] => {
            println!("nonstopd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["check", file] => check(file),
        ["--config", file] | ["-c", file] => run(file),
        [arg] if arg.starts_with("--config=") => run(&arg["--config=".len()..]),
        ["--help"] | ["-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("nonstopd: expected --config FILE or check FILE\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
