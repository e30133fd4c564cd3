//! nonstopd: the channel supervisor. `nonstopd --config FILE` runs the
//! channels; `nonstopd check FILE` validates and prints what it would build.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use nonstop_supervisor::daemon;

const USAGE: &str =
    "usage: nonstopd [--config FILE] [--session | --system | --address ADDR | --no-dbus]
                                run the channels of FILE (default
                                /etc/nonstop/nonstopd.toml, with the *.toml files of
                                conf.d/ beside it) until SIGTERM/SIGINT, with the
                                D-Bus API org.nonstop.Supervisor1 on the session bus
                                (default), the system bus, a bus address, or none
                                --metrics ADDR: Prometheus /metrics and /api/status over
                                HTTP (default 127.0.0.1:9464; an empty ADDR for none)
                                --log-format text|json: how logs are written
       nonstopd check [FILE]    validate FILE (default: what the service loads) and
                                print what it would build
       nonstopd --version

Logs go to stderr: text, or native journald records under systemd, or one
JSON object per line (--log-format json). RUST_LOG filters them (default
info); org.freedesktop.LogControl1 changes the level while it runs.";

/// The config the service loads when none is named.
const DEFAULT_CONFIG: &str = "/etc/nonstop/nonstopd.toml";

mod describe;
use describe::describe;

fn check(file: &str) -> ExitCode {
    let drop_ins = nonstop_supervisor::config::drop_ins(Path::new(file)).unwrap_or_default();
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
                for d in &drop_ins {
                    println!("  with {}", d.display());
                }
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

fn run(
    file: &str,
    bus: daemon::Bus,
    metrics: Option<SocketAddr>,
    log: daemon::LogFormat,
) -> ExitCode {
    daemon::init_logging(log);
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

/// nonstopd's arguments, as clap reads them; the same definitions render
/// the completions and man pages in dist/ (`cli_files_are_current`). What
/// nonstopd prints about them is its own: `--help` is `USAGE`, and a
/// mistake is `nonstopd: MESSAGE` (exit 2) in the words it always used.
#[derive(Parser, Debug)]
#[command(
    name = "nonstopd",
    version,
    about = "The nonstop channel supervisor",
    long_about = "The nonstop channel supervisor: runs the channels of a config file \
                  (inputs, switch, encoders, outputs) and keeps them on air, controlled \
                  over D-Bus (org.nonstop.Supervisor1). Logs go to stderr (journald under \
                  systemd); RUST_LOG filters them (default info).",
    override_usage = "nonstopd [--config FILE] [--session | --system | --address ADDR | --no-dbus] \
                      [--metrics ADDR] [--log-format text|json]\n       nonstopd check [FILE]\n       nonstopd --version",
    disable_help_subcommand = true,
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true
)]
struct Cli {
    /// The usage
    #[arg(short, long, action = clap::ArgAction::Help, global = true)]
    help: Option<bool>,
    /// nonstopd's version
    #[arg(short = 'V', long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// Run the channels of FILE (default /etc/nonstop/nonstopd.toml, with conf.d/*.toml) until SIGTERM/SIGINT
    #[arg(short, long, value_name = "FILE", allow_hyphen_values = true)]
    config: Option<String>,
    /// The D-Bus API org.nonstop.Supervisor1 on the session bus (default)
    #[arg(long, overrides_with_all = ["system", "address", "no_dbus"])]
    session: bool,
    /// The D-Bus API on the system bus
    #[arg(long, overrides_with_all = ["session", "address", "no_dbus"])]
    system: bool,
    /// The D-Bus API on the bus at ADDR
    #[arg(
        long,
        value_name = "ADDR",
        allow_hyphen_values = true,
        overrides_with_all = ["session", "system", "no_dbus"]
    )]
    address: Option<String>,
    /// No D-Bus API
    #[arg(long, overrides_with_all = ["session", "system", "address"])]
    no_dbus: bool,
    /// Prometheus /metrics and /api/status over HTTP at HOST:PORT (default 127.0.0.1:9464; "" for none)
    #[arg(long, value_name = "ADDR", allow_hyphen_values = true, value_parser = metrics_addr)]
    metrics: Option<Metrics>,
    /// How logs are written: text (native journald records under systemd) or one JSON object per line
    #[arg(long, value_name = "FORMAT", value_enum)]
    log_format: Option<daemon::LogFormat>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Validate FILE (default: what the service loads) and print what it would build
    Check {
        /// The config file (default /etc/nonstop/nonstopd.toml, with conf.d/*.toml)
        #[arg(value_name = "FILE", allow_hyphen_values = true)]
        file: Option<String>,
    },
}

/// `--metrics`: where the HTTP server listens; `None` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Metrics(Option<SocketAddr>);

fn metrics_addr(a: &str) -> Result<Metrics, String> {
    if a.is_empty() {
        return Ok(Metrics(None));
    }
    a.parse().map(|addr| Metrics(Some(addr))).map_err(|_| {
        format!("--metrics takes HOST:PORT (e.g. 127.0.0.1:9464) or \"\" for none, not \"{a}\"")
    })
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Run {
    Help,
    Version,
    Check(String),
    Daemon {
        config: String,
        bus: daemon::Bus,
        metrics: Option<SocketAddr>,
        log: daemon::LogFormat,
    },
}

/// A usage mistake: its message, and whether the usage follows it.
#[derive(Debug, PartialEq, Eq)]
struct Mistake(String, bool);

fn parse(args: &[String]) -> Result<Run, Mistake> {
    let argv = std::iter::once("nonstopd".to_owned()).chain(args.iter().cloned());
    let cli = match Cli::command()
        .try_get_matches_from(argv)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return mistake(&e, args),
    };
    if let Some(Sub::Check { file }) = cli.command {
        return Ok(Run::Check(
            file.unwrap_or_else(|| DEFAULT_CONFIG.to_owned()),
        ));
    }
    let bus = match (cli.address, cli.system, cli.no_dbus) {
        (Some(a), ..) => daemon::Bus::Address(a),
        (None, true, _) => daemon::Bus::System,
        (None, _, true) => daemon::Bus::Off,
        _ => daemon::Bus::Session,
    };
    Ok(Run::Daemon {
        config: cli.config.unwrap_or_else(|| DEFAULT_CONFIG.to_owned()),
        bus,
        metrics: cli
            .metrics
            .map_or(Some(([127, 0, 0, 1], 9464).into()), |m| m.0),
        log: cli.log_format.unwrap_or_default(),
    })
}

/// A clap error as nonstopd words it.
fn mistake(e: &clap::Error, args: &[String]) -> Result<Run, Mistake> {
    let arg = match e
        .get(ContextKind::InvalidArg)
        .or_else(|| e.get(ContextKind::InvalidSubcommand))
    {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let name = arg.split(' ').next().unwrap_or_default();
    // `check` among the words (not an option's value): its own mistake;
    // `--` before it is not an option nonstopd knows.
    let mut words = args.iter().map(String::as_str);
    let mut checking = false;
    while let Some(w) = words.next() {
        match w {
            "-c" | "--config" | "--metrics" | "--address" | "--log-format" => {
                words.next();
            }
            "check" => checking = true,
            "--" if !checking => {
                return Err(Mistake("unknown argument \"--\"".into(), true));
            }
            _ => {}
        }
    }
    let msg = match e.kind() {
        ErrorKind::DisplayHelp => return Ok(Run::Help),
        ErrorKind::DisplayVersion => return Ok(Run::Version),
        _ if checking => "check takes one FILE".to_owned(),
        ErrorKind::ValueValidation => {
            let msg = std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string());
            return Err(Mistake(msg, false));
        }
        // An option at the end without its value.
        ErrorKind::InvalidValue => match name {
            "--metrics" => "--metrics needs HOST:PORT or \"\"".to_owned(),
            "--address" => "--address needs a D-Bus address".to_owned(),
            "--log-format" => "--log-format needs text or json".to_owned(),
            _ => "--config needs a FILE".to_owned(),
        },
        _ => {
            // The word as typed (`--system=1`, not `--system`).
            let typed = args
                .iter()
                .find(|a| !arg.is_empty() && a.starts_with(&arg))
                .map_or(arg.clone(), String::clone);
            format!("unknown argument \"{typed}\"")
        }
    };
    Err(Mistake(msg, true))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(Run::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Run::Version) => {
            println!("nonstopd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Run::Check(file)) => check(&file),
        Ok(Run::Daemon {
            config,
            bus,
            metrics,
            log,
        }) => run(&config, bus, metrics, log),
        Err(Mistake(msg, with_usage)) => {
            if with_usage {
                eprintln!("nonstopd: {msg}\n{USAGE}");
            } else {
                eprintln!("nonstopd: {msg}");
            }
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod cli_files;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Run, Mistake> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn daemon(config: &str, bus: daemon::Bus, metrics: Option<SocketAddr>) -> Result<Run, Mistake> {
        Ok(Run::Daemon {
            config: config.into(),
            bus,
            metrics,
            log: daemon::LogFormat::Text,
        })
    }

    #[test]
    fn arguments() {
        let default = Some(([127, 0, 0, 1], 9464).into());
        assert_eq!(
            p(&["--config", "a.toml"]),
            daemon("a.toml", daemon::Bus::Session, default)
        );
        assert_eq!(p(&["-c", "a"]), daemon("a", daemon::Bus::Session, default));
        assert_eq!(
            p(&["--config=a"]),
            daemon("a", daemon::Bus::Session, default)
        );
        assert_eq!(p(&["--config="]), daemon("", daemon::Bus::Session, default));
        assert_eq!(
            p(&["--config", "a", "--config", "b"]),
            daemon("b", daemon::Bus::Session, default)
        );
        assert_eq!(
            p(&["--no-dbus", "--metrics", "127.0.0.1:1", "-c", "a"]),
            daemon("a", daemon::Bus::Off, Some(([127, 0, 0, 1], 1).into()))
        );
        assert_eq!(
            p(&["--metrics", "", "-c", "a"]),
            daemon("a", daemon::Bus::Session, None)
        );
        assert_eq!(
            p(&["--system", "--address", "x", "-c", "a", "--session"]),
            daemon("a", daemon::Bus::Session, default)
        );
        assert_eq!(
            p(&["--no-dbus", "--address", "", "-c", "a"]),
            daemon("a", daemon::Bus::Address(String::new()), default)
        );
        assert_eq!(
            p(&["--config", "--system"]),
            daemon("--system", daemon::Bus::Session, default)
        );
        assert_eq!(p(&["check", "a.toml"]), Ok(Run::Check("a.toml".into())));
        // What the service loads, by default.
        assert_eq!(p(&["check"]), Ok(Run::Check(DEFAULT_CONFIG.into())));
        assert_eq!(
            p(&[]),
            daemon(DEFAULT_CONFIG, daemon::Bus::Session, default)
        );
        assert_eq!(
            p(&["--system"]),
            daemon(DEFAULT_CONFIG, daemon::Bus::System, default)
        );
        assert_eq!(
            p(&["--log-format", "json", "-c", "a"]),
            Ok(Run::Daemon {
                config: "a".into(),
                bus: daemon::Bus::Session,
                metrics: default,
                log: daemon::LogFormat::Json,
            })
        );
        assert_eq!(
            p(&["-c", "x", "--system", "check", "a"]),
            Ok(Run::Check("a".into()))
        );
        assert_eq!(p(&["check", "--config"]), Ok(Run::Check("--config".into())));
        for help in [
            &["--help"][..],
            &["-h"],
            &["--help", "check"],
            &["check", "--help"],
        ] {
            assert_eq!(p(help), Ok(Run::Help), "{help:?}");
        }
        for version in [&["--version"][..], &["-V"], &["--version", "--bogus"]] {
            assert_eq!(p(version), Ok(Run::Version), "{version:?}");
        }
    }

    /// Every mistake in the words nonstopd used before clap.
    #[test]
    fn mistakes_as_before() {
        let usage = |m: &str| Err(Mistake(m.into(), true));
        let expected = "--config needs a FILE";
        assert_eq!(p(&["--config"]), usage(expected));
        assert_eq!(p(&["-c"]), usage(expected));
        assert_eq!(
            p(&["--log-format"]),
            usage("--log-format needs text or json")
        );
        for check in [&["check", "a", "b"][..], &["check", "a", "--session"]] {
            assert_eq!(p(check), usage("check takes one FILE"), "{check:?}");
        }
        assert_eq!(p(&["--bogus"]), usage("unknown argument \"--bogus\""));
        assert_eq!(
            p(&["--bogus", "--version"]),
            usage("unknown argument \"--bogus\"")
        );
        assert_eq!(
            p(&["-c", "a", "--bogus"]),
            usage("unknown argument \"--bogus\"")
        );
        assert_eq!(p(&["foo"]), usage("unknown argument \"foo\""));
        assert_eq!(p(&["--system=1"]), usage("unknown argument \"--system=1\""));
        assert_eq!(p(&["--", "check", "a"]), usage("unknown argument \"--\""));
        assert_eq!(
            p(&["--metrics"]),
            usage("--metrics needs HOST:PORT or \"\"")
        );
        assert_eq!(p(&["--address"]), usage("--address needs a D-Bus address"));
        assert_eq!(
            p(&["--metrics", "bad", "-c", "a"]),
            Err(Mistake(
                "--metrics takes HOST:PORT (e.g. 127.0.0.1:9464) or \"\" for none, not \"bad\""
                    .into(),
                false
            ))
        );
    }

    /// dist/completions and dist/man, rendered from `Cli` (scripts/cli-files).
    #[test]
    fn cli_files_are_current() {
        super::cli_files::check(Cli::command());
    }
}
