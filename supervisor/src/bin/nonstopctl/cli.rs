//! The command line: what to do and on which bus. clap reads it, and the
//! same definitions render the completions and man pages in dist/ (see
//! `cli_files`). What nonstopctl prints about its command line is its own,
//! as documented: `--help` is `help::HELP` whatever the command, and a
//! usage error is one line, `nonstopctl: MESSAGE`, in nonstopctl's words,
//! with `help::USAGE` after it (exit 2).

use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::help::exit_codes;

/// nonstopctl's arguments, as clap reads them. The bus options, `--json`
/// and `--for` are accepted anywhere, before or after the command (as
/// always); `--json` and `--for` are refused afterwards where they do not
/// belong, with their own messages.
#[derive(Parser, Debug)]
#[command(
    name = "nonstopctl",
    version,
    about = "Control and observe nonstopd through its D-Bus API",
    long_about = "Control and observe nonstopd through its D-Bus API \
                  (org.nonstop.Supervisor1; see docs/dbus.md). Every error message goes to \
                  stderr as one line starting with `nonstopctl: `. Successful commands that \
                  change something print nothing.",
    override_usage = "nonstopctl [--session | --system | --address ADDR] COMMAND [ARGS]",
    after_long_help = exit_codes(),
    disable_help_subcommand = true,
    disable_help_flag = true,
    disable_version_flag = true,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    /// Everything, with the exit codes
    #[arg(short, long, action = clap::ArgAction::Help, global = true)]
    help: Option<bool>,
    /// nonstopctl's version
    #[arg(short = 'V', long, action = clap::ArgAction::Version, global = true)]
    version: Option<bool>,
    /// The session bus only (default: the system bus, then the session bus)
    #[arg(long, visible_alias = "user", global = true, overrides_with_all = ["system", "address"])]
    session: bool,
    /// The system bus only
    #[arg(long, global = true, overrides_with_all = ["session", "address"])]
    system: bool,
    /// The bus at ADDR, e.g. unix:path=/run/nonstop/bus
    #[arg(
        long,
        value_name = "ADDR",
        global = true,
        allow_hyphen_values = true,
        value_parser = bus_address,
        overrides_with_all = ["session", "system"]
    )]
    address: Option<String>,
    /// Machine-readable output (status, drill, watch, fleet status)
    #[arg(long, global = true)]
    json: bool,
    /// How long a drill's fault lasts (default 10s; e.g. 500ms, 10s, 1m)
    #[arg(
        long = "for",
        value_name = "DURATION",
        global = true,
        allow_hyphen_values = true,
        value_parser = parse_duration
    )]
    duration: Option<Duration>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Every channel (or CHANNEL): state, mode, the input on air, inputs, outputs and encoders
    #[command(
        long_about = "Every channel (or CHANNEL): state, mode, the input on air, a \
        table of inputs (state, alarms, last buffer, restarts), outputs (state, bytes sent, \
        restarts) and encoders. --json: one JSON object with every property (Version, \
        StartedAt, Channels: [...]), or the channel's object (Path, Id, State, Mode, \
        ActiveInput, Switches, Inputs, Outputs, Encoders) when CHANNEL is given."
    )]
    Status {
        /// A channel id (default: every channel)
        channel: Option<String>,
    },
    /// Put INPUT on air; the channel goes to manual mode
    Switch {
        /// A channel id
        channel: String,
        /// An input id of the channel
        input: String,
    },
    /// auto: the switch chooses the input again; manual: hold the input on air
    Mode {
        /// A channel id
        channel: String,
        #[arg(value_parser = ["auto", "manual"])]
        mode: String,
    },
    /// Rebuild an input or an output now (no backoff)
    Restart {
        /// A channel id
        channel: String,
        #[arg(value_name = "WHAT", value_parser = ["input", "output"])]
        what: String,
        /// The input's or output's id
        id: String,
    },
    /// Build and start a stopped channel
    Start {
        /// A channel id
        channel: String,
    },
    /// Take the channel off air until `start`
    Stop {
        /// A channel id
        channel: String,
    },
    /// A failover drill; exit 0 only if it passed
    #[command(
        long_about = "A failover drill: make a failure happen through the real code \
        path for DURATION (--for; default 10s), remove it, wait for the recovery and print \
        the report as `key: value` lines (--json: one object). Exit 0 only if it passed."
    )]
    Drill {
        /// A channel id
        channel: String,
        /// input-stall, input-black, input-silence (TARGET: an input), encoder-fail
        /// (TARGET: a rendition; none: the first), output-fail (TARGET: an output)
        kind: String,
        /// What the drill breaks
        target: Option<String>,
    },
    /// Place an SCTE-35 cue (ad break) on a channel's TS outputs
    #[command(long_about = "Place an SCTE-35 splice_insert on every TS output of \
        CHANNEL (UDP, SRT, HLS, TS recordings), the splice --preroll from now (default 4s) \
        or --at a UTC time (RFC 3339), on an IDR the encoders put there. splice-out \
        [--duration D]: a break (that returns by itself after D); splice-in: the return. \
        Prints the cue's splice_event_id (--json: {\"id\": N}).")]
    Cue {
        /// A channel id
        channel: String,
        #[arg(value_name = "KIND", value_parser = ["splice-out", "splice-in"])]
        kind: String,
        /// A splice-out's break: it returns by itself after this (e.g. 30s)
        #[arg(long = "duration", id = "break", value_name = "DURATION", value_parser = parse_duration)]
        break_len: Option<Duration>,
        /// The splice this long from now (default 4s)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "at")]
        preroll: Option<Duration>,
        /// The splice at this UTC time (RFC 3339, e.g. 2026-12-07T20:00:00Z)
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Live events as lines, until SIGINT or SIGTERM
    #[command(long_about = "First the state of each channel, then every change and \
        signal as it happens, one line each, prefixed with the local time, until SIGINT or \
        SIGTERM (exit 0). --json: one object per line with \"time\", \"event\" and \
        \"channel\" and the event's fields.")]
    Watch {
        /// A channel id (default: every channel)
        channel: Option<String>,
    },
    /// Re-read nonstopd's config file (all or nothing)
    Reload,
    /// The fleet: its members and each channel's role; drain or undrain a box
    #[command(
        disable_help_subcommand = true,
        subcommand_value_name = "ACTION",
        long_about = "The fleet (several boxes with leadership on etcd; the config's \
        [fleet]): `fleet status` shows it, `fleet drain NODE` moves the channels a box \
        leads to the other boxes, `fleet undrain NODE` lets it take channels again. \
        A nonstopd without [fleet] refuses with NoFleet (exit 4)."
    )]
    Fleet {
        #[command(subcommand)]
        action: FleetCmd,
    },
}

#[derive(Subcommand, Debug)]
enum FleetCmd {
    /// This box's node, etcd, every member and every channel's role, leader and token
    #[command(
        long_about = "The fleet as this nonstopd sees it: its node name, whether \
        etcd answers, every member (alive or down, drained, capacity, the channels it \
        leads; * marks this box) and every channel's role on this box (active, standby, \
        off), its leader and the fencing token this box leads it under. --json: one \
        object (NodeName, EtcdReachable, \
        Members, Channels)."
    )]
    Status,
    /// Drain NODE: the channels it leads move to other boxes, none is placed on it
    Drain {
        /// A node of the fleet (this one or another)
        node: String,
    },
    /// Undrain NODE: it takes channels again
    Undrain {
        /// A node of the fleet (this one or another)
        node: String,
    },
}

/// `--address`: not empty.
fn bus_address(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("--address needs a D-Bus address".into())
    } else {
        Ok(s.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// No bus named: where nonstopd runs, the system bus first (the
    /// service), then the session bus.
    Auto,
    Session,
    System,
    Address(String),
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bus::Auto => f.write_str("the system bus or the session bus"),
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
    Cue {
        channel: String,
        kind: String,
        duration: Duration,
        when: CueWhen,
    },
    Watch(Option<String>),
    Reload,
    FleetStatus,
    Drain(String),
    Undrain(String),
}

/// When a cue's splice happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CueWhen {
    Preroll(Duration),
    Utc(String),
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

/// The clap command: nonstopctl's arguments (for completions and man pages
/// too).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Reads the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let cli = match command()
        .try_get_matches_from(argv(args))
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            // The options as nonstopctl always read them decide between
            // the help, the version and a mistake.
            return match (e.kind(), first_option(args)) {
                (ErrorKind::DisplayHelp | ErrorKind::DisplayVersion, Some(Err(msg))) => Err(msg),
                (ErrorKind::DisplayHelp, _) => Ok(Parsed::Help),
                (ErrorKind::DisplayVersion, _) => Ok(Parsed::Version),
                (_, Some(Ok(p))) => Ok(p),
                _ => Err(usage_message(&e, args)),
            };
        }
    };
    let bus = match (cli.address, cli.system) {
        (Some(a), _) => Bus::Address(a),
        (None, true) => Bus::System,
        (None, false) if cli.session => Bus::Session,
        (None, false) => Bus::Auto,
    };
    let command = match cli.command.ok_or("no command given")? {
        Cmd::Status { channel } => Command::Status(channel),
        Cmd::Switch { channel, input } => Command::Switch(channel, input),
        Cmd::Mode { channel, mode } => Command::Mode(channel, mode),
        Cmd::Restart { channel, what, id } => match what.as_str() {
            "input" => Command::RestartInput(channel, id),
            _ => Command::RestartOutput(channel, id),
        },
        Cmd::Start { channel } => Command::Start(channel),
        Cmd::Stop { channel } => Command::Stop(channel),
        Cmd::Drill {
            channel,
            kind,
            target,
        } => Command::Drill {
            channel,
            kind,
            target: target.unwrap_or_default(),
            duration: cli.duration.unwrap_or(Duration::from_secs(10)),
        },
        Cmd::Cue {
            channel,
            kind,
            break_len,
            preroll,
            at,
        } => Command::Cue {
            channel,
            kind,
            duration: break_len.unwrap_or_default(),
            when: match at {
                Some(t) => CueWhen::Utc(t),
                None => CueWhen::Preroll(preroll.unwrap_or(Duration::from_secs(4))),
            },
        },
        Cmd::Watch { channel } => Command::Watch(channel),
        Cmd::Reload => Command::Reload,
        Cmd::Fleet { action } => match action {
            FleetCmd::Status => Command::FleetStatus,
            FleetCmd::Drain { node } => Command::Drain(node),
            FleetCmd::Undrain { node } => Command::Undrain(node),
        },
    };
    if cli.duration.is_some() && !matches!(command, Command::Drill { .. }) {
        return Err("--for belongs to drill".into());
    }
    if cli.json
        && !matches!(
            command,
            Command::Status(_) | Command::Drill { .. } | Command::Watch(_) | Command::FleetStatus
        )
    {
        return Err("--json belongs to status, drill, watch and fleet status".into());
    }
    Ok(Parsed::Run(Invocation {
        bus,
        json: cli.json,
        command,
    }))
}

/// The arguments for clap, with the program name. A `--` before the
/// command moves after it: it ends the options, not the command's name
/// (`nonstopctl -- switch -odd b`, as before clap).
fn argv(args: &[String]) -> Vec<String> {
    let mut v = vec!["nonstopctl".to_owned()];
    v.extend(args.iter().cloned());
    let first = option_words(args).find(|w| matches!(w, Word::Dashes(_) | Word::Plain(_)));
    if let Some(Word::Dashes(dashes)) = first {
        if dashes + 1 < args.len() {
            // args[dashes] is v[dashes + 1]: swap it with the command.
            v.swap(dashes + 1, dashes + 2);
        }
    }
    v
}

/// The first option that decides, read left to right as nonstopctl always
/// did: `-h` or `-V` (anywhere before `--`, whatever else is wrong:
/// `nonstopctl frobnicate --help` is the help), or a mistake in an option
/// (`-hx` is not `-h -x`). `None`: neither.
fn first_option(args: &[String]) -> Option<Result<Parsed, String>> {
    for w in option_words(args) {
        match w {
            Word::Option("-h" | "--help") => return Some(Ok(Parsed::Help)),
            Word::Option("-V" | "--version") => return Some(Ok(Parsed::Version)),
            Word::Option("--session" | "--user" | "--system" | "--json") => {}
            Word::Option(o) if o.starts_with("--address=") => {}
            Word::Option(o)
                if ["--duration=", "--preroll=", "--at="]
                    .iter()
                    .any(|p| o.starts_with(p)) => {}
            Word::Option(o) if o.starts_with("--for=") => {
                if let Err(msg) = parse_duration(&o["--for=".len()..]) {
                    return Some(Err(msg));
                }
            }
            Word::Value("--for", v) => {
                if let Err(msg) = parse_duration(v) {
                    return Some(Err(msg));
                }
            }
            Word::Value(..) | Word::Plain(_) => {}
            Word::Option(o) => return Some(Err(format!("unknown option \"{o}\""))),
            Word::Missing(o) => return Some(Err(format!("{o} needs a value"))),
            Word::Dashes(_) => return None,
        }
    }
    None
}

/// A word of the command line, as nonstopctl has always split them.
enum Word<'a> {
    /// `-x`, `--xyz`, `--xyz=v`.
    Option(&'a str),
    /// `--address` or `--for` and its value.
    Value(&'a str, &'a str),
    /// `--address` or `--for` at the end.
    Missing(&'a str),
    /// `--` at this index: every word after it is a word.
    Dashes(usize),
    Plain(&'a str),
}

fn option_words(args: &[String]) -> impl Iterator<Item = Word<'_>> {
    let mut i = 0;
    let mut dashes = false;
    std::iter::from_fn(move || {
        let a = args.get(i)?.as_str();
        i += 1;
        Some(match a {
            _ if dashes => Word::Plain(a),
            "--" => {
                dashes = true;
                Word::Dashes(i - 1)
            }
            "--address" | "--for" | "--duration" | "--preroll" | "--at" => match args.get(i) {
                Some(v) => {
                    i += 1;
                    Word::Value(a, v)
                }
                None => Word::Missing(a),
            },
            _ if a.starts_with('-') && a != "-" => Word::Option(a),
            _ => Word::Plain(a),
        })
    })
}

/// What each command takes, for "CMD takes WHAT" (a fleet action by its
/// two words).
const ARITY: [(&str, &str); 14] = [
    ("status", "at most one CHANNEL"),
    ("switch", "CHANNEL INPUT"),
    ("mode", "CHANNEL auto|manual"),
    ("restart", "CHANNEL input|output ID"),
    ("start", "CHANNEL"),
    ("stop", "CHANNEL"),
    ("drill", "CHANNEL KIND [TARGET]"),
    ("cue", "CHANNEL splice-out|splice-in"),
    ("watch", "at most one CHANNEL"),
    ("reload", "no arguments"),
    ("fleet", "status, drain NODE or undrain NODE"),
    ("fleet status", "no arguments"),
    ("fleet drain", "NODE"),
    ("fleet undrain", "NODE"),
];

/// The words of the command line that are not options or options'
/// values: the command and its arguments.
fn plain_words(args: &[String]) -> impl Iterator<Item = &str> {
    option_words(args).filter_map(|w| match w {
        Word::Plain(a) => Some(a),
        _ => None,
    })
}

/// The first of them: the command.
fn command_word(args: &[String]) -> Option<&str> {
    plain_words(args).next()
}

/// What the command (`fleet drain`: its two words) takes.
fn arity(args: &[String]) -> Option<String> {
    let mut words = plain_words(args);
    let cmd = words.next().unwrap_or_default();
    let two = words.next().map(|w| format!("{cmd} {w}"));
    let (c, what) = two
        .iter()
        .map(String::as_str)
        .chain([cmd])
        .find_map(|c| ARITY.iter().find(|(name, _)| *name == c))?;
    Some(format!("{c} takes {what}"))
}

/// A clap error in nonstopctl's words (one line).
fn usage_message(e: &clap::Error, args: &[String]) -> String {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let arg = context(ContextKind::InvalidArg);
    let value = context(ContextKind::InvalidValue);
    let takes = || arity(args);
    let said = match e.kind() {
        // A word after `fleet` that is not one of its actions.
        ErrorKind::InvalidSubcommand if command_word(args) == Some("fleet") => Some(format!(
            "unknown fleet action \"{}\"; fleet takes status, drain NODE or undrain NODE",
            context(ContextKind::InvalidSubcommand)
        )),
        ErrorKind::InvalidSubcommand => Some(format!(
            "unknown command \"{}\"",
            context(ContextKind::InvalidSubcommand)
        )),
        // `fleet` alone.
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            takes()
        }
        // An option, or one word too many.
        ErrorKind::UnknownArgument if arg.starts_with('-') && arg != "-" => {
            // The whole word as typed (clap names `-o` of `-odd`).
            let typed = args
                .iter()
                .find(|a| a.starts_with(&arg))
                .map_or(arg.clone(), String::clone);
            Some(format!("unknown option \"{typed}\""))
        }
        ErrorKind::UnknownArgument | ErrorKind::MissingRequiredArgument => takes(),
        ErrorKind::InvalidValue if arg == "<MODE>" => {
            Some(format!("mode is auto or manual, not \"{value}\""))
        }
        ErrorKind::InvalidValue if arg == "<WHAT>" => {
            Some(format!("restart takes input or output, not \"{value}\""))
        }
        // An option at the end without its value.
        ErrorKind::InvalidValue if arg.starts_with("--") => {
            let name = arg.split(' ').next().unwrap_or(&arg);
            Some(format!("{name} needs a value"))
        }
        // `--json=yes`: a flag with a value.
        ErrorKind::TooManyValues if arg.starts_with("--") => {
            let name = arg.split(' ').next().unwrap_or(&arg);
            let typed = args
                .iter()
                .find(|a| a.starts_with(&format!("{name}=")))
                .map_or(arg.clone(), String::clone);
            Some(format!("unknown option \"{typed}\""))
        }
        // Our own parsers' words (durations, addresses).
        ErrorKind::ValueValidation => std::error::Error::source(e).map(ToString::to_string),
        _ => None,
    };
    said.unwrap_or_else(|| {
        // Anything else: clap's first line, without its "error: ".
        let text = e.render().to_string();
        let line = text.lines().next().unwrap_or_default();
        line.strip_prefix("error: ").unwrap_or(line).to_owned()
    })
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
    fn cue_takes_a_kind_a_break_and_a_preroll_or_a_time() {
        let i = run_of(&[
            "cue",
            "news",
            "splice-out",
            "--duration",
            "30s",
            "--preroll",
            "4s",
        ]);
        assert_eq!(
            i.command,
            Command::Cue {
                channel: "news".into(),
                kind: "splice-out".into(),
                duration: Duration::from_secs(30),
                when: CueWhen::Preroll(Duration::from_secs(4)),
            }
        );
        let i = run_of(&["cue", "news", "splice-in", "--at", "2026-12-07T20:00:00Z"]);
        assert_eq!(
            i.command,
            Command::Cue {
                channel: "news".into(),
                kind: "splice-in".into(),
                duration: Duration::ZERO,
                when: CueWhen::Utc("2026-12-07T20:00:00Z".into()),
            }
        );
        let i = run_of(&["cue", "news", "splice-out"]);
        assert!(
            matches!(i.command, Command::Cue { when: CueWhen::Preroll(p), .. } if p == Duration::from_secs(4))
        );
        assert!(p(&["cue", "news", "splice-out", "--preroll", "4s", "--at", "x"]).is_err());
        assert!(p(&["cue", "news", "break"]).is_err());
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
            &["fleet"],
            &["fleet", "drain"],
            &["fleet", "status", "x"],
            &["fleet", "drain", "a", "--json"],
        ] {
            assert!(p(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn fleet_actions() {
        assert_eq!(run_of(&["fleet", "status"]).command, Command::FleetStatus);
        let i = run_of(&["--json", "fleet", "status"]);
        assert!(i.json);
        assert_eq!(
            run_of(&["fleet", "drain", "box-b", "--system"]).command,
            Command::Drain("box-b".into())
        );
        assert_eq!(
            run_of(&["fleet", "undrain", "box-b"]).command,
            Command::Undrain("box-b".into())
        );
        assert_eq!(p(&["fleet", "--help"]), Ok(Parsed::Help));
        assert_eq!(p(&["fleet", "drain", "-h"]), Ok(Parsed::Help));
    }

    /// Every usage mistake in the words nonstopctl used before clap.
    #[test]
    fn usage_messages_as_before() {
        for (args, want) in [
            (&[][..], "no command given"),
            (&["--json"], "no command given"),
            (&["frobnicate"], "unknown command \"frobnicate\""),
            (&["help"], "unknown command \"help\""),
            (&["--address", "--address", "x"], "unknown command \"x\""),
            (&["--bogus", "status"], "unknown option \"--bogus\""),
            (&["--bogus", "--help"], "unknown option \"--bogus\""),
            (&["status", "-x"], "unknown option \"-x\""),
            (&["-hx"], "unknown option \"-hx\""),
            (&["switch", "-odd", "b"], "unknown option \"-odd\""),
            (&["status", "--json=yes"], "unknown option \"--json=yes\""),
            (&["--session=x", "status"], "unknown option \"--session=x\""),
            (&["status", "a", "b"], "status takes at most one CHANNEL"),
            (&["switch"], "switch takes CHANNEL INPUT"),
            (&["switch", "a", "b", "c"], "switch takes CHANNEL INPUT"),
            (&["mode", "a"], "mode takes CHANNEL auto|manual"),
            (
                &["mode", "a", "sideways", "x"],
                "mode takes CHANNEL auto|manual",
            ),
            (
                &["mode", "a", "sideways"],
                "mode is auto or manual, not \"sideways\"",
            ),
            (
                &["restart", "a", "input"],
                "restart takes CHANNEL input|output ID",
            ),
            (
                &["restart", "a", "encoder", "v"],
                "restart takes input or output, not \"encoder\"",
            ),
            (&["start"], "start takes CHANNEL"),
            (&["stop", "a", "b"], "stop takes CHANNEL"),
            (&["drill", "a"], "drill takes CHANNEL KIND [TARGET]"),
            (&["watch", "a", "b"], "watch takes at most one CHANNEL"),
            (&["reload", "now"], "reload takes no arguments"),
            (&["fleet"], "fleet takes status, drain NODE or undrain NODE"),
            (
                &["fleet", "frob"],
                "unknown fleet action \"frob\"; fleet takes status, drain NODE or undrain NODE",
            ),
            (&["fleet", "status", "x"], "fleet status takes no arguments"),
            (&["fleet", "drain"], "fleet drain takes NODE"),
            (&["fleet", "undrain", "a", "b"], "fleet undrain takes NODE"),
            (
                &["fleet", "drain", "a", "--json"],
                "--json belongs to status, drill, watch and fleet status",
            ),
            (&["--address"], "--address needs a value"),
            (&["status", "--address"], "--address needs a value"),
            (&["drill", "a", "k", "--for"], "--for needs a value"),
            (
                &["--address", "", "status"],
                "--address needs a D-Bus address",
            ),
            (&["--address=", "status"], "--address needs a D-Bus address"),
            (
                &["drill", "a", "k", "--for", "soon"],
                "bad duration \"soon\": expected number at 0 (e.g. 500ms, 10s, 1m)",
            ),
            (
                &["--for", "soon", "--help"],
                "bad duration \"soon\": expected number at 0 (e.g. 500ms, 10s, 1m)",
            ),
            (&["status", "--for", "1s"], "--for belongs to drill"),
            (
                &["switch", "a", "b", "--json"],
                "--json belongs to status, drill, watch and fleet status",
            ),
            (
                &["--json", "reload"],
                "--json belongs to status, drill, watch and fleet status",
            ),
        ] {
            assert_eq!(p(args), Err(want.to_owned()), "{args:?}");
        }
    }

    #[test]
    fn help_and_version_from_anywhere() {
        for args in [
            &["--help"][..],
            &["-h"],
            &["status", "--help"],
            &["switch", "--help"],
            &["frobnicate", "--help"],
            &["--for=2s", "-h"],
        ] {
            assert_eq!(p(args), Ok(Parsed::Help), "{args:?}");
        }
        for args in [&["-V"][..], &["--version", "status"], &["reload", "-V"]] {
            assert_eq!(p(args), Ok(Parsed::Version), "{args:?}");
        }
    }

    #[test]
    fn options_anywhere_the_last_bus_wins() {
        let i = run_of(&["--json", "--", "status"]);
        assert!(i.json);
        assert_eq!(i.command, Command::Status(None));
        assert_eq!(
            run_of(&["status", "--", "--json"]).command,
            Command::Status(Some("--json".into()))
        );
        assert_eq!(
            run_of(&["--address", "a", "--system", "--address", "b", "status"]).bus,
            Bus::Address("b".into())
        );
        assert_eq!(
            run_of(&["--address", "a", "--user", "reload"]).bus,
            Bus::Session
        );
        assert_eq!(run_of(&["reload", "--system"]).bus, Bus::System);
        assert_eq!(run_of(&["reload"]).bus, Bus::Auto);
        assert_eq!(run_of(&["--session", "reload"]).bus, Bus::Session);
        assert_eq!(
            run_of(&["--for", "1s", "drill", "a", "k", "--for=2s"]).command,
            Command::Drill {
                channel: "a".into(),
                kind: "k".into(),
                target: String::new(),
                duration: Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn the_clap_command_is_sound() {
        command().debug_assert();
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
