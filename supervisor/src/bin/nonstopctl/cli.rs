//! The command line: what to do and on which bus.

use std::time::Duration;

pub const USAGE: &str = "\
usage: nonstopctl [--session | --system | --address ADDR] COMMAND [ARGS]
  status [CHANNEL] [--json]        the channels (or one): state, inputs, outputs, encoders
  switch CHANNEL INPUT             put INPUT on air (the channel goes to manual mode)
  mode CHANNEL auto|manual         let the switch choose again, or hold the input on air
  restart CHANNEL input|output ID  rebuild an input or output now
  start CHANNEL | stop CHANNEL     take a channel off air until started again
  drill CHANNEL KIND [TARGET] [--for DURATION] [--json]
                                   a failover drill; exit 0 only if it passed
  watch [CHANNEL] [--json]         live events as lines, until SIGINT
  reload                           re-read nonstopd's config (all or nothing)
  --help                           everything, with the exit codes";

pub const HELP: &str = "\
nonstopctl: control and observe nonstopd through its D-Bus API
(org.nonstop.Supervisor1; see docs/dbus.md).

usage: nonstopctl [--session | --system | --address ADDR] COMMAND [ARGS]

Commands:
  status [CHANNEL]        Every channel (or CHANNEL): state, mode, the input on
                          air, a table of inputs (state, alarms, last buffer,
                          restarts), outputs (state, bytes sent, restarts) and
                          encoders. --json: one JSON object with every property
                          (Version, StartedAt, Channels: [...]), or the channel's
                          object (Path, Id, State, Mode, ActiveInput, Switches,
                          Inputs, Outputs, Encoders) when CHANNEL is given.
  switch CHANNEL INPUT    Put INPUT on air; the channel goes to manual mode.
  mode CHANNEL auto|manual
                          auto: the switch chooses the input again.
  restart CHANNEL input|output ID
                          Rebuild an input or an output now (no backoff).
  start CHANNEL           Build and start a stopped channel.
  stop CHANNEL            Take the channel off air until `start`.
  drill CHANNEL KIND [TARGET] [--for DURATION]
                          Make a failure happen through the real code path for
                          DURATION (default 10s; e.g. 500ms, 10s, 1m), remove it,
                          wait for the recovery and print the report as
                          `key: value` lines (--json: one object). KIND:
                          input-stall, input-black, input-silence (TARGET: an
                          input), encoder-fail (TARGET: a rendition; none: the
                          first), output-fail (TARGET: an output).
  watch [CHANNEL]         First the state of each channel, then every change and
                          signal as it happens, one line each, prefixed with the
                          local time, until SIGINT or SIGTERM (exit 0):
                            TIME CHANNEL State=on-air        (also Mode=, ActiveInput=)
                            TIME CHANNEL switched FROM -> TO (REASON)
                            TIME CHANNEL alarm TARGET KIND raised|cleared
                            TIME CHANNEL output ID STATE
                            TIME CHANNEL added | removed
                            TIME nonstopd started | stopped
                          --json: one object per line with \"time\", \"event\"
                          (Property: the state at start, PropertiesChanged,
                          InputSwitched, Alarm, OutputStateChanged, ChannelAdded,
                          ChannelRemoved, Daemon) and \"channel\" and the
                          event's fields. An empty FROM/TO is printed as -.
  reload                  Re-read nonstopd's config file: unchanged channels keep
                          running; an invalid file changes nothing (exit 4).

Options:
  --session, --user       the session bus (default, as nonstopd)
  --system                the system bus
  --address ADDR          the bus at ADDR, e.g. unix:path=/run/nonstop/bus
  --json                  machine-readable output (status, drill, watch)
  --for DURATION          how long a drill's fault lasts
  -h, --help              this text
  -V, --version           nonstopctl's version

Exit codes:
  0  done (a drill: it passed)
  1  the operation failed: the drill did not pass (the report is printed and
     `nonstopctl: drill did not pass: REASON` goes to stderr), or an
     unexpected answer
  2  usage: unknown command or option, missing or extra arguments, a bad
     duration or mode (the usage goes to stderr)
  3  the bus cannot be reached, nonstopd is not running on it, or it did not
     answer in time (watch: the connection was lost)
  4  nonstopd (or the bus policy) refused the request with a named D-Bus
     error; stderr has `nonstopctl: NAME: MESSAGE`, where NAME is the last
     part of the error name: NoSuchChannel, NoSuchInput, NoSuchOutput,
     InvalidArgument, Busy, AccessDenied, ...

Every error message goes to stderr as one line starting with `nonstopctl: `.
Successful commands that change something print nothing.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    Session,
    System,
    Address(String),
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::Session => f.write_str("the session bus"),
            Bus::System => f.write_str("the system bus"),
            Bus::Address(a) => write!(f, "the bus at {a}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status(Option<String>),
    Switch(String, String),
    Mode(String, String),
    RestartInput(String, String),
    RestartOutput(String, String),
    Start(String),
    Stop(String),
    Drill {
        channel: String,
        kind: String,
        target: String,
        duration: Duration,
    },
    Watch(Option<String>),
    Reload,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub bus: Bus,
    pub json: bool,
    pub command: Command,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Help,
    Version,
    Run(Invocation),
}

/// "10s", "500ms", "1m", "1m 30s"; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| format!("bad duration \"{s}\": {e}"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("bad duration \"{s}\": {e} (e.g. 500ms, 10s, 1m)"))
}

pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut bus = Bus::Session;
    let mut json = false;
    let mut duration: Option<Duration> = None;
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while i < args.len() {
        let a = args[i].as_str();
        let value = |i: usize, name: &str| {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        if options_done || !a.starts_with('-') || a == "-" {
            words.push(a.to_owned());
            i += 1;
            continue;
        }
        match a {
            "--" => options_done = true,
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--session" | "--user" => bus = Bus::Session,
            "--system" => bus = Bus::System,
            "--json" => json = true,
            "--address" => {
                bus = Bus::Address(value(i, a)?);
                i += 1;
            }
            "--for" => {
                duration = Some(parse_duration(&value(i, a)?)?);
                i += 1;
            }
            _ if a.starts_with("--address=") => {
                bus = Bus::Address(a["--address=".len()..].to_owned())
            }
            _ if a.starts_with("--for=") => duration = Some(parse_duration(&a["--for=".len()..])?),
            _ => return Err(format!("unknown option \"{a}\"")),
        }
        i += 1;
    }
    if matches!(&bus, Bus::Address(a) if a.is_empty()) {
        return Err("--address needs a D-Bus address".into());
    }
    let Some((cmd, rest)) = words.split_first() else {
        return Err("no command given".into());
    };
    let n = rest.len();
    let arity = |lo: usize, hi: usize, what: &str| {
        if n < lo || n > hi {
            Err(format!("{cmd} takes {what}"))
        } else {
            Ok(())
        }
    };
    let arg = |k: usize| rest[k].clone();
    let command = match cmd.as_str() {
        "status" => {
            arity(0, 1, "at most one CHANNEL")?;
            Command::Status(rest.first().cloned())
        }
        "switch" => {
            arity(2, 2, "CHANNEL INPUT")?;
            Command::Switch(arg(0), arg(1))
        }
        "mode" => {
            arity(2, 2, "CHANNEL auto|manual")?;
            let m = arg(1);
            if m != "auto" && m != "manual" {
                return Err(format!("mode is auto or manual, not \"{m}\""));
            }
            Command::Mode(arg(0), m)
        }
        "restart" => {
            arity(3, 3, "CHANNEL input|output ID")?;
            match rest[1].as_str() {
                "input" => Command::RestartInput(arg(0), arg(2)),
                "output" => Command::RestartOutput(arg(0), arg(2)),
                other => return Err(format!("restart takes input or output, not \"{other}\"")),
            }
        }
        "start" => {
            arity(1, 1, "CHANNEL")?;
            Command::Start(arg(0))
        }
        "stop" => {
            arity(1, 1, "CHANNEL")?;
            Command::Stop(arg(0))
        }
        "drill" => {
            arity(2, 3, "CHANNEL KIND [TARGET]")?;
            Command::Drill {
                channel: arg(0),
                kind: arg(1),
                target: rest.get(2).cloned().unwrap_or_default(),
                duration: duration.unwrap_or(Duration::from_secs(10)),
            }
        }
        "watch" => {
            arity(0, 1, "at most one CHANNEL")?;
            Command::Watch(rest.first().cloned())
        }
        "reload" => {
            arity(0, 0, "no arguments")?;
            Command::Reload
        }
        other => return Err(format!("unknown command \"{other}\"")),
    };
    if duration.is_some() && !matches!(command, Command::Drill { .. }) {
        return Err("--for belongs to drill".into());
    }
    if json
        && !matches!(
            command,
            Command::Status(_) | Command::Drill { .. } | Command::Watch(_)
        )
    {
        return Err("--json belongs to status, drill and watch".into());
    }
    Ok(Parsed::Run(Invocation { bus, json, command }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn run_of(args: &[&str]) -> Invocation {
        match p(args) {
            Ok(Parsed::Run(i)) => i,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn arguments() {
        let i = run_of(&[
            "--address",
            "unix:path=/x",
            "drill",
            "news",
            "input-stall",
            "primary",
            "--for",
            "500ms",
            "--json",
        ]);
        assert_eq!(i.bus, Bus::Address("unix:path=/x".into()));
        assert!(i.json);
        assert_eq!(
            i.command,
            Command::Drill {
                channel: "news".into(),
                kind: "input-stall".into(),
                target: "primary".into(),
                duration: Duration::from_millis(500)
            }
        );
        assert_eq!(run_of(&["status"]).command, Command::Status(None));
        assert_eq!(run_of(&["--system", "status", "a"]).bus, Bus::System);
        assert_eq!(
            run_of(&["restart", "a", "output", "o"]).command,
            Command::RestartOutput("a".into(), "o".into())
        );
        assert_eq!(
            run_of(&["drill", "a", "encoder-fail", "--for=1m"]).command,
            Command::Drill {
                channel: "a".into(),
                kind: "encoder-fail".into(),
                target: String::new(),
                duration: Duration::from_secs(60)
            }
        );
        assert_eq!(
            run_of(&["switch", "--", "-odd", "b"]).command,
            Command::Switch("-odd".into(), "b".into())
        );
        assert_eq!(p(&["--help", "status"]), Ok(Parsed::Help));
        for bad in [
            &[][..],
            &["frobnicate"],
            &["status", "a", "b"],
            &["switch", "a"],
            &["mode", "a", "sideways"],
            &["restart", "a", "encoder", "x"],
            &["drill", "a", "input-stall", "p", "--for", "soon"],
            &["switch", "a", "b", "--json"],
            &["status", "--for", "1s"],
            &["status", "--address"],
            &["status", "--bogus"],
        ] {
            assert!(p(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("").is_err());
    }
}
