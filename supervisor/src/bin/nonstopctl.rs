//! nonstopctl: the command-line client of nonstopd's D-Bus API
//! (`org.nonstop.Supervisor1`, docs/dbus.md). It uses nothing but that
//! public API, like busctl or any other client would: status, manual
//! switching, mode, restarts, drills, live events and reload.
//!
//! Exit codes and message shapes are an interface for scripts; they are
//! listed in `HELP` below (`nonstopctl --help`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::poll_fn;
use std::io::Write as _;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use zbus::export::futures_core::Stream;
use zbus::message::Type as MessageType;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, DBusError, MatchRule, Message, MessageStream};

// The API's names and the daemon's escaping of channel ids into object
// paths, read back: from the crate both sides share.
use nonstop_api::model::{EncoderRow, InputRow, OutputRow};
use nonstop_api::objpath::channel_id;
use nonstop_api::{now_us, CHANNEL_IFACE, ERROR_PREFIX, MANAGER_IFACE, PATH, SERVICE};

/// Exit codes (see `HELP`).
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_UNREACHABLE: u8 = 3;
const EXIT_REFUSED: u8 = 4;

/// A call that is not a drill gets this long (nonstopd answers every
/// command within 10 s or replies `Busy`).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A drill gets its duration plus this (nonstopd gives it 2 min of slack).
const DRILL_SLACK: Duration = Duration::from_secs(150);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const USAGE: &str = "\
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

const HELP: &str = "\
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

// ---------------------------------------------------------------------------
// The API, as proxies.

#[zbus::proxy(
    interface = "org.nonstop.Supervisor1",
    default_service = "org.nonstop.Supervisor1",
    default_path = "/org/nonstop/Supervisor1"
)]
trait Manager {
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn started_at(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn channels(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    fn get_channel(&self, id: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload(&self) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.nonstop.Supervisor1.Channel",
    default_service = "org.nonstop.Supervisor1"
)]
trait Channel {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn mode(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_input(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn inputs(&self) -> zbus::Result<Vec<InputRow>>;
    #[zbus(property)]
    fn outputs(&self) -> zbus::Result<Vec<OutputRow>>;
    #[zbus(property)]
    fn encoders(&self) -> zbus::Result<Vec<EncoderRow>>;
    #[zbus(property)]
    fn switches(&self) -> zbus::Result<u64>;
    fn switch_to(&self, input: &str) -> zbus::Result<()>;
    fn set_mode(&self, mode: &str) -> zbus::Result<()>;
    fn restart_input(&self, id: &str) -> zbus::Result<()>;
    fn restart_output(&self, id: &str) -> zbus::Result<()>;
    fn start(&self) -> zbus::Result<()>;
    fn stop(&self) -> zbus::Result<()>;
    fn drill(
        &self,
        kind: &str,
        target: &str,
        duration_ms: u64,
    ) -> zbus::Result<HashMap<String, OwnedValue>>;
}

// ---------------------------------------------------------------------------
// Failures and their exit codes.

#[derive(Debug)]
struct Fail {
    code: u8,
    msg: String,
}

impl Fail {
    fn new(code: u8, msg: impl Into<String>) -> Self {
        Fail {
            code,
            msg: msg.into(),
        }
    }
}

/// Where the client looks for nonstopd.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bus {
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

fn not_running(bus: &Bus) -> Fail {
    Fail::new(
        EXIT_UNREACHABLE,
        format!("nonstopd is not running: nobody owns {SERVICE} on {bus}"),
    )
}

/// A D-Bus error reply by name: the daemon's own errors and refusals are
/// exit 4 with the short name; a missing service is exit 3.
fn named_error(name: &str, text: &str, bus: &Bus) -> Fail {
    let short = name
        .strip_prefix(ERROR_PREFIX)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or_else(|| name.rsplit('.').next().unwrap_or(name));
    match name {
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner"
        | "org.freedesktop.DBus.Error.NoServer"
        | "org.freedesktop.DBus.Error.Disconnected" => not_running(bus),
        "org.freedesktop.DBus.Error.NoReply"
        | "org.freedesktop.DBus.Error.Timeout"
        | "org.freedesktop.DBus.Error.TimedOut" => Fail::new(
            EXIT_UNREACHABLE,
            format!("nonstopd did not answer: {short}: {text}"),
        ),
        _ => Fail::new(EXIT_REFUSED, format!("{short}: {text}")),
    }
}

fn from_zbus(e: &zbus::Error, bus: &Bus) -> Fail {
    match e {
        zbus::Error::MethodError(name, text, _) => {
            named_error(name.as_str(), text.as_deref().unwrap_or(""), bus)
        }
        zbus::Error::FDO(f) => match f.as_ref() {
            zbus::fdo::Error::ZBus(inner) => from_zbus(inner, bus),
            f => named_error(f.name().as_str(), f.description().unwrap_or(""), bus),
        },
        zbus::Error::InputOutput(_) | zbus::Error::Address(_) | zbus::Error::Handshake(_) => {
            Fail::new(EXIT_UNREACHABLE, format!("lost {bus}: {e}"))
        }
        other => Fail::new(
            EXIT_FAILED,
            format!("unexpected answer from nonstopd: {other}"),
        ),
    }
}

/// Runs one D-Bus round trip (or several) with a deadline.
async fn bounded<T>(
    bus: &Bus,
    limit: Duration,
    fut: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, Fail> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(from_zbus(&e, bus)),
        Err(_) => Err(Fail::new(
            EXIT_UNREACHABLE,
            format!(
                "nonstopd did not answer within {} on {bus}",
                humantime::format_duration(limit)
            ),
        )),
    }
}

// ---------------------------------------------------------------------------
// Command line.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
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
struct Invocation {
    bus: Bus,
    json: bool,
    command: Command,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Help,
    Version,
    Run(Invocation),
}

/// "10s", "500ms", "1m", "1m 30s"; a bare number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
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

fn parse(args: &[String]) -> Result<Parsed, String> {
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

// ---------------------------------------------------------------------------
// Output.

/// Writes to stdout; a reader that went away (`| head`) ends us quietly.
fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("nonstopctl: cannot write to stdout: {e}");
        std::process::exit(EXIT_FAILED.into());
    }
}

/// A JSON value, keys in the order given.
enum J {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn obj(fields: Vec<(&str, J)>) -> J {
        J::Obj(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn s(s: &str) -> J {
        J::Str(s.to_owned())
    }

    fn compact(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, None);
        s
    }

    fn pretty(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, Some(0));
        s.push('\n');
        s
    }

    fn write(&self, out: &mut String, indent: Option<usize>) {
        let newline = |out: &mut String, level: usize| {
            out.push('\n');
            for _ in 0..level {
                out.push_str("  ");
            }
        };
        match self {
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(n) => {
                let _ = write!(out, "{n}");
            }
            J::Uint(n) => {
                let _ = write!(out, "{n}");
            }
            J::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f}");
            }
            J::Float(_) => out.push_str("null"),
            J::Str(s) => write_json_str(out, s),
            J::Arr(items) => {
                out.push('[');
                // Short lists of scalars (alarms) stay on one line.
                let flat =
                    indent.is_none() || items.iter().all(|i| !matches!(i, J::Arr(_) | J::Obj(_)));
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                        if flat && indent.is_some() {
                            out.push(' ');
                        }
                    }
                    if let (false, Some(l)) = (flat, indent) {
                        newline(out, l + 1);
                    }
                    item.write(out, indent.map(|l| l + 1));
                }
                if let (false, Some(l), false) = (flat, indent, items.is_empty()) {
                    newline(out, l);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (n, (k, v)) in fields.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    if let Some(l) = indent {
                        newline(out, l + 1);
                    }
                    write_json_str(out, k);
                    out.push(':');
                    if indent.is_some() {
                        out.push(' ');
                    }
                    v.write(out, indent.map(|l| l + 1));
                }
                if let (Some(l), false) = (indent, fields.is_empty()) {
                    newline(out, l);
                }
                out.push('}');
            }
        }
    }
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Any D-Bus value as JSON (structures become arrays).
fn value_json(v: &Value<'_>) -> J {
    match v {
        Value::U8(n) => J::Uint((*n).into()),
        Value::Bool(b) => J::Bool(*b),
        Value::I16(n) => J::Int((*n).into()),
        Value::U16(n) => J::Uint((*n).into()),
        Value::I32(n) => J::Int((*n).into()),
        Value::U32(n) => J::Uint((*n).into()),
        Value::I64(n) => J::Int(*n),
        Value::U64(n) => J::Uint(*n),
        Value::F64(f) => J::Float(*f),
        Value::Str(s) => J::s(s.as_str()),
        Value::Signature(s) => J::Str(s.to_string()),
        Value::ObjectPath(p) => J::s(p.as_str()),
        Value::Value(inner) => value_json(inner),
        Value::Array(a) => J::Arr(a.iter().map(value_json).collect()),
        Value::Structure(s) => J::Arr(s.fields().iter().map(value_json).collect()),
        other => J::Str(other.to_string()),
    }
}

/// A value as plain text: strings as they are, the rest as JSON.
fn value_text(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => s.as_str().to_owned(),
        Value::Value(inner) => value_text(inner),
        other => value_json(other).compact(),
    }
}

/// Columns aligned; the last one is not padded.
fn table(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            widths[c] = widths[c].max(cell.chars().count());
        }
    }
    let mut s = String::new();
    for r in rows {
        let mut line = String::from(indent);
        for (c, cell) in r.iter().enumerate() {
            if c + 1 < r.len() {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            } else {
                line.push_str(cell);
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[u])
    } else {
        format!("{v:.0} {}", UNITS[u])
    }
}

/// A span for people: "40 ms", "3.2 s", "5m 3s".
fn human_span(us: u64) -> String {
    if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else if us < 60_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else {
        humantime::format_duration(Duration::from_secs(us / 1_000_000)).to_string()
    }
}

fn age(last_seen_us: u64) -> String {
    if last_seen_us == 0 {
        "never".into()
    } else {
        format!("{} ago", human_span(now_us().saturating_sub(last_seen_us)))
    }
}

/// Local wall-clock time of `us` (µs since the epoch), seconds precision.
fn local_time(us: u64) -> String {
    glib::DateTime::from_unix_local((us / 1_000_000) as i64)
        .and_then(|t| t.format("%Y-%m-%d %H:%M:%S"))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| format!("@{}", us / 1_000_000))
}

/// Now, local: (for lines "2024-05-01 12:00:00.123", for JSON RFC 3339).
fn stamp() -> (String, String) {
    match glib::DateTime::now_local() {
        Ok(t) => {
            let ms = t.microsecond() / 1000;
            let day = t
                .format("%Y-%m-%d")
                .map(|s| s.to_string())
                .unwrap_or_default();
            let time = t
                .format("%H:%M:%S")
                .map(|s| s.to_string())
                .unwrap_or_default();
            let zone = t.format("%:z").map(|s| s.to_string()).unwrap_or_default();
            (
                format!("{day} {time}.{ms:03}"),
                format!("{day}T{time}.{ms:03}{zone}"),
            )
        }
        Err(_) => {
            let t = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            (t.clone(), t)
        }
    }
}

// ---------------------------------------------------------------------------
// The commands.

struct Client {
    conn: Connection,
    bus: Bus,
}

/// Everything a channel object shows.
struct ChannelStatus {
    path: String,
    id: String,
    state: String,
    mode: String,
    active: String,
    switches: u64,
    inputs: Vec<InputRow>,
    outputs: Vec<OutputRow>,
    encoders: Vec<EncoderRow>,
}

impl ChannelStatus {
    fn json(&self) -> J {
        J::obj(vec![
            ("Path", J::s(&self.path)),
            ("Id", J::s(&self.id)),
            ("State", J::s(&self.state)),
            ("Mode", J::s(&self.mode)),
            ("ActiveInput", J::s(&self.active)),
            ("Switches", J::Uint(self.switches)),
            (
                "Inputs",
                J::Arr(
                    self.inputs
                        .iter()
                        .map(|i| {
                            J::obj(vec![
                                ("id", J::s(&i.id)),
                                ("uri", J::s(&i.uri)),
                                ("state", J::s(&i.state)),
                                ("alarms", J::Arr(i.alarms.iter().map(|a| J::s(a)).collect())),
                                ("last_seen", J::Uint(i.last_seen)),
                                ("restarts", J::Uint(i.restarts)),
                                ("return_holdoff_ms", J::Uint(i.return_holdoff_ms)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "Outputs",
                J::Arr(
                    self.outputs
                        .iter()
                        .map(|o| {
                            J::obj(vec![
                                ("id", J::s(&o.id)),
                                ("uri", J::s(&o.uri)),
                                ("state", J::s(&o.state)),
                                ("bytes", J::Uint(o.bytes)),
                                ("restarts", J::Uint(o.restarts)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "Encoders",
                J::Arr(
                    self.encoders
                        .iter()
                        .map(|e| {
                            J::obj(vec![
                                ("id", J::s(&e.id)),
                                ("backend", J::s(&e.backend)),
                                ("state", J::s(&e.state)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    }

    fn text(&self) -> String {
        let mut s = format!(
            "{}: {}, mode {}, {}, {} switch{}\n",
            self.id,
            self.state,
            self.mode,
            if self.active.is_empty() {
                "no input on air".to_owned()
            } else {
                format!("input {}", self.active)
            },
            self.switches,
            if self.switches == 1 { "" } else { "es" }
        );
        let mut rows = vec![[
            "",
            "INPUT",
            "STATE",
            "ALARMS",
            "LAST BUFFER",
            "RESTARTS",
            "HOLD-OFF",
            "URI",
        ]
        .map(String::from)
        .to_vec()];
        for i in &self.inputs {
            rows.push(vec![
                if i.id == self.active {
                    "*".into()
                } else {
                    " ".into()
                },
                i.id.clone(),
                i.state.clone(),
                if i.alarms.is_empty() {
                    "-".into()
                } else {
                    i.alarms.join(",")
                },
                age(i.last_seen),
                i.restarts.to_string(),
                human_span(i.return_holdoff_ms * 1000),
                i.uri.clone(),
            ]);
        }
        s.push_str(&table(&rows, "  "));
        if self.outputs.is_empty() {
            s.push_str("     no outputs\n");
        } else {
            let mut rows = vec![["", "OUTPUT", "STATE", "SENT", "RESTARTS", "URI"]
                .map(String::from)
                .to_vec()];
            for o in &self.outputs {
                rows.push(vec![
                    " ".into(),
                    o.id.clone(),
                    o.state.clone(),
                    human_bytes(o.bytes),
                    o.restarts.to_string(),
                    o.uri.clone(),
                ]);
            }
            s.push_str(&table(&rows, "  "));
        }
        if !self.encoders.is_empty() {
            let mut rows = vec![["", "ENCODER", "BACKEND", "STATE"]
                .map(String::from)
                .to_vec()];
            for e in &self.encoders {
                rows.push(vec![
                    " ".into(),
                    e.id.clone(),
                    e.backend.clone(),
                    e.state.clone(),
                ]);
            }
            s.push_str(&table(&rows, "  "));
        }
        s
    }
}

impl Client {
    async fn connect(bus: Bus) -> Result<Client, Fail> {
        let builder = match &bus {
            Bus::Session => zbus::connection::Builder::session(),
            Bus::System => zbus::connection::Builder::system(),
            Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
        };
        let cannot = |e: &dyn std::fmt::Display| {
            Fail::new(EXIT_UNREACHABLE, format!("cannot connect to {bus}: {e}"))
        };
        let builder = builder.map_err(|e| cannot(&e))?;
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, builder.build()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(cannot(&e)),
            Err(_) => return Err(cannot(&"no answer within 10s")),
        };
        let client = Client { conn, bus };
        // "Not running" is told apart from every other failure up front.
        let dbus = bounded(
            &client.bus,
            CALL_TIMEOUT,
            zbus::fdo::DBusProxy::new(&client.conn),
        )
        .await?;
        let name = zbus::names::BusName::try_from(SERVICE).expect("a valid bus name");
        let running = bounded(&client.bus, CALL_TIMEOUT, async {
            dbus.name_has_owner(name).await.map_err(zbus::Error::from)
        })
        .await?;
        if !running {
            return Err(not_running(&client.bus));
        }
        Ok(client)
    }

    async fn manager(&self, cache: CacheProperties) -> Result<ManagerProxy<'static>, Fail> {
        bounded(&self.bus, CALL_TIMEOUT, async {
            ManagerProxy::builder(&self.conn)
                .cache_properties(cache)
                .build()
                .await
        })
        .await
    }

    async fn channel_at(
        &self,
        path: OwnedObjectPath,
        cache: CacheProperties,
    ) -> Result<ChannelProxy<'static>, Fail> {
        bounded(&self.bus, CALL_TIMEOUT, async {
            ChannelProxy::builder(&self.conn)
                .path(path)?
                .cache_properties(cache)
                .build()
                .await
        })
        .await
    }

    async fn path_of(&self, id: &str) -> Result<OwnedObjectPath, Fail> {
        let m = self.manager(CacheProperties::No).await?;
        bounded(&self.bus, CALL_TIMEOUT, m.get_channel(id)).await
    }

    async fn channel(&self, id: &str) -> Result<ChannelProxy<'static>, Fail> {
        let path = self.path_of(id).await?;
        self.channel_at(path, CacheProperties::No).await
    }

    /// Every property of the channel at `path`, from one `GetAll`.
    async fn status_of(&self, path: OwnedObjectPath) -> Result<ChannelStatus, Fail> {
        let p = self.channel_at(path.clone(), CacheProperties::Yes).await?;
        bounded(&self.bus, CALL_TIMEOUT, async {
            Ok(ChannelStatus {
                path: path.as_str().to_owned(),
                id: p.id().await?,
                state: p.state().await?,
                mode: p.mode().await?,
                active: p.active_input().await?,
                switches: p.switches().await?,
                inputs: p.inputs().await?,
                outputs: p.outputs().await?,
                encoders: p.encoders().await?,
            })
        })
        .await
    }

    async fn status(&self, channel: Option<String>, json: bool) -> Result<(), Fail> {
        if let Some(id) = channel {
            let st = self.status_of(self.path_of(&id).await?).await?;
            out(&if json { st.json().pretty() } else { st.text() });
            return Ok(());
        }
        let m = self.manager(CacheProperties::Yes).await?;
        let (version, started, paths) = bounded(&self.bus, CALL_TIMEOUT, async {
            Ok((
                m.version().await?,
                m.started_at().await?,
                m.channels().await?,
            ))
        })
        .await?;
        let mut channels = Vec::new();
        for p in paths {
            channels.push(self.status_of(p).await?);
        }
        if json {
            let j = J::obj(vec![
                ("Version", J::Str(version)),
                ("StartedAt", J::Uint(started)),
                (
                    "Channels",
                    J::Arr(channels.iter().map(ChannelStatus::json).collect()),
                ),
            ]);
            out(&j.pretty());
            return Ok(());
        }
        let mut s = format!(
            "nonstopd {version}, running since {} (up {}), {} channel{}\n",
            local_time(started),
            humantime::format_duration(Duration::from_secs(
                now_us().saturating_sub(started) / 1_000_000
            )),
            channels.len(),
            if channels.len() == 1 { "" } else { "s" }
        );
        for c in &channels {
            s.push('\n');
            s.push_str(&c.text());
        }
        out(&s);
        Ok(())
    }

    async fn drill(
        &self,
        channel: &str,
        kind: &str,
        target: &str,
        duration: Duration,
        json: bool,
    ) -> Result<(), Fail> {
        let ch = self.channel(channel).await?;
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let report = bounded(
            &self.bus,
            duration + DRILL_SLACK,
            ch.drill(kind, target, ms),
        )
        .await?;
        const ORDER: [&str; 8] = [
            "kind",
            "target",
            "detected_ms",
            "switched_ms",
            "output_gap_ms",
            "returned_ms",
            "passed",
            "reason",
        ];
        let mut keys: Vec<&str> = ORDER
            .iter()
            .copied()
            .filter(|k| report.contains_key(*k))
            .collect();
        let mut extra: Vec<&str> = report
            .keys()
            .map(String::as_str)
            .filter(|k| !ORDER.contains(k))
            .collect();
        extra.sort_unstable();
        keys.extend(extra);
        let passed = matches!(report.get("passed").map(|v| &**v), Some(Value::Bool(true)));
        if json {
            let j = J::Obj(
                keys.iter()
                    .map(|k| ((*k).to_owned(), value_json(&report[*k])))
                    .collect(),
            );
            out(&j.pretty());
        } else {
            let width = keys.iter().map(|k| k.len()).max().unwrap_or(0) + 1;
            let mut s = String::new();
            for k in &keys {
                let line = format!("{:<width$} {}", format!("{k}:"), value_text(&report[*k]));
                s.push_str(line.trim_end());
                s.push('\n');
            }
            out(&s);
        }
        if passed {
            Ok(())
        } else {
            let reason = report
                .get("reason")
                .map(|v| value_text(v))
                .unwrap_or_default();
            Err(Fail::new(
                EXIT_FAILED,
                format!(
                    "drill did not pass: {}",
                    if reason.is_empty() {
                        "(no reason given)"
                    } else {
                        &reason
                    }
                ),
            ))
        }
    }

    async fn watch(&self, filter: Option<String>, json: bool) -> Result<(), Fail> {
        use tokio::signal::unix::{signal, SignalKind};
        let z = |e: zbus::Error| from_zbus(&e, &self.bus);
        // Subscribe first, then read the state: nothing falls in between.
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(SERVICE)
            .and_then(|b| b.path_namespace(PATH))
            .map_err(z)?
            .build();
        let mut signals = bounded(
            &self.bus,
            CALL_TIMEOUT,
            MessageStream::for_match_rule(rule, &self.conn, Some(4096)),
        )
        .await?;
        let owner_rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender("org.freedesktop.DBus")
            .and_then(|b| b.interface("org.freedesktop.DBus"))
            .and_then(|b| b.member("NameOwnerChanged"))
            .and_then(|b| b.arg(0, SERVICE))
            .map_err(z)?
            .build();
        let mut owners = bounded(
            &self.bus,
            CALL_TIMEOUT,
            MessageStream::for_match_rule(owner_rule, &self.conn, Some(64)),
        )
        .await?;
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Fail::new(EXIT_FAILED, format!("SIGTERM handler: {e}")))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| Fail::new(EXIT_FAILED, format!("SIGINT handler: {e}")))?;

        let w = Watcher { filter, json };
        let paths = match &w.filter {
            Some(id) => vec![self.path_of(id).await?],
            None => {
                let m = self.manager(CacheProperties::No).await?;
                bounded(&self.bus, CALL_TIMEOUT, m.channels()).await?
            }
        };
        for p in paths {
            let c = self.channel_at(p.clone(), CacheProperties::Yes).await?;
            let (id, state, mode, active) = bounded(&self.bus, CALL_TIMEOUT, async {
                Ok((
                    c.id().await?,
                    c.state().await?,
                    c.mode().await?,
                    c.active_input().await?,
                ))
            })
            .await?;
            for (name, v) in [("State", state), ("Mode", mode), ("ActiveInput", active)] {
                w.property(&id, "Property", name, &v);
            }
        }
        loop {
            tokio::select! {
                m = next(&mut signals) => match m {
                    Some(Ok(msg)) => w.signal(&msg),
                    Some(Err(e)) => {
                        let f = from_zbus(&e, &self.bus);
                        if f.code == EXIT_UNREACHABLE {
                            return Err(f);
                        }
                    }
                    None => return Err(Fail::new(EXIT_UNREACHABLE, format!("lost {}", self.bus))),
                },
                m = next(&mut owners) => match m {
                    Some(Ok(msg)) => w.owner(&msg),
                    Some(Err(_)) => {}
                    None => return Err(Fail::new(EXIT_UNREACHABLE, format!("lost {}", self.bus))),
                },
                _ = int.recv() => return Ok(()),
                _ = term.recv() => return Ok(()),
            }
        }
    }
}

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// Turns signals into lines.
struct Watcher {
    filter: Option<String>,
    json: bool,
}

impl Watcher {
    fn line(&self, channel: Option<&str>, event: &str, text: String, fields: Vec<(&str, J)>) {
        if let (Some(want), Some(ch)) = (&self.filter, channel) {
            if want != ch {
                return;
            }
        }
        let (human, rfc) = stamp();
        if self.json {
            let mut all = vec![("time", J::Str(rfc)), ("event", J::s(event))];
            if let Some(ch) = channel {
                all.push(("channel", J::s(ch)));
            }
            all.extend(fields);
            out(&format!("{}\n", J::obj(all).compact()));
        } else {
            match channel {
                Some(ch) => out(&format!("{human} {ch} {text}\n")),
                None => out(&format!("{human} {text}\n")),
            }
        }
    }

    fn property(&self, channel: &str, event: &str, name: &str, value: &str) {
        self.line(
            Some(channel),
            event,
            format!("{name}={value}"),
            vec![("property", J::s(name)), ("value", J::s(value))],
        );
    }

    fn signal(&self, msg: &Message) {
        let h = msg.header();
        let (Some(path), Some(iface), Some(member)) = (h.path(), h.interface(), h.member()) else {
            return;
        };
        let path = path.as_str();
        let body = msg.body();
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        match (iface.as_str(), member.as_str()) {
            ("org.freedesktop.DBus.Properties", "PropertiesChanged") => {
                let Ok((iface, changed, _)) =
                    body.deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
                else {
                    return;
                };
                let Some(ch) = channel_id(path) else {
                    return;
                };
                if iface != CHANNEL_IFACE {
                    return;
                }
                for name in ["State", "Mode", "ActiveInput"] {
                    if let Some(v) = changed.get(name) {
                        self.property(&ch, "PropertiesChanged", name, &value_text(v));
                    }
                }
            }
            (CHANNEL_IFACE, "InputSwitched") => {
                let (Some(ch), Ok((from, to, reason))) = (
                    channel_id(path),
                    body.deserialize::<(String, String, String)>(),
                ) else {
                    return;
                };
                self.line(
                    Some(&ch),
                    "InputSwitched",
                    format!("switched {} -> {} ({reason})", dash(&from), dash(&to)),
                    vec![
                        ("from", J::Str(from)),
                        ("to", J::Str(to)),
                        ("reason", J::Str(reason)),
                    ],
                );
            }
            (CHANNEL_IFACE, "Alarm") => {
                let (Some(ch), Ok((target, kind, raised))) = (
                    channel_id(path),
                    body.deserialize::<(String, String, bool)>(),
                ) else {
                    return;
                };
                self.line(
                    Some(&ch),
                    "Alarm",
                    format!(
                        "alarm {target} {kind} {}",
                        if raised { "raised" } else { "cleared" }
                    ),
                    vec![
                        ("target", J::Str(target)),
                        ("kind", J::Str(kind)),
                        ("raised", J::Bool(raised)),
                    ],
                );
            }
            (CHANNEL_IFACE, "OutputStateChanged") => {
                let (Some(ch), Ok((id, state))) =
                    (channel_id(path), body.deserialize::<(String, String)>())
                else {
                    return;
                };
                self.line(
                    Some(&ch),
                    "OutputStateChanged",
                    format!("output {id} {state}"),
                    vec![("id", J::Str(id)), ("state", J::Str(state))],
                );
            }
            (MANAGER_IFACE, m @ ("ChannelAdded" | "ChannelRemoved")) => {
                let Ok(p) = body.deserialize::<OwnedObjectPath>() else {
                    return;
                };
                let ch = channel_id(p.as_str()).unwrap_or_else(|| p.as_str().to_owned());
                let verb = if m == "ChannelAdded" {
                    "added"
                } else {
                    "removed"
                };
                self.line(
                    Some(&ch),
                    m,
                    verb.to_owned(),
                    vec![("path", J::s(p.as_str()))],
                );
            }
            _ => {}
        }
    }

    fn owner(&self, msg: &Message) {
        let Ok((_, _, new)) = msg.body().deserialize::<(String, String, String)>() else {
            return;
        };
        let running = !new.is_empty();
        self.line(
            None,
            "Daemon",
            format!("nonstopd {}", if running { "started" } else { "stopped" }),
            vec![("running", J::Bool(running))],
        );
    }
}

async fn run(inv: Invocation) -> Result<(), Fail> {
    let client = Client::connect(inv.bus.clone()).await?;
    let bus = client.bus.clone();
    match inv.command {
        Command::Status(ch) => client.status(ch, inv.json).await,
        Command::Switch(ch, input) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.switch_to(&input)).await
        }
        Command::Mode(ch, mode) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.set_mode(&mode)).await
        }
        Command::RestartInput(ch, id) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.restart_input(&id)).await
        }
        Command::RestartOutput(ch, id) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.restart_output(&id)).await
        }
        Command::Start(ch) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.start()).await
        }
        Command::Stop(ch) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.stop()).await
        }
        Command::Drill {
            channel,
            kind,
            target,
            duration,
        } => {
            client
                .drill(&channel, &kind, &target, duration, inv.json)
                .await
        }
        Command::Watch(ch) => client.watch(ch, inv.json).await,
        Command::Reload => {
            let m = client.manager(CacheProperties::No).await?;
            // A reload may rebuild channels: give it the drill's slack.
            bounded(&bus, DRILL_SLACK, m.reload()).await
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inv = match parse(&args) {
        Ok(Parsed::Help) => {
            out(&format!("{HELP}\n"));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            out(&format!("nonstopctl {}\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(inv)) => inv,
        Err(msg) => {
            eprintln!("nonstopctl: {msg}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nonstopctl: cannot start the event loop: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match rt.block_on(run(inv)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("nonstopctl: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
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
    fn paths_become_channel_ids() {
        assert_eq!(
            channel_id("/org/nonstop/Supervisor1/channel/news_2dhd").as_deref(),
            Some("news-hd")
        );
        assert_eq!(
            channel_id("/org/nonstop/Supervisor1/channel/news_2dhd_5f2").as_deref(),
            Some("news-hd_2")
        );
        assert_eq!(
            channel_id("/org/nonstop/Supervisor1/channel/_").as_deref(),
            Some("")
        );
        assert_eq!(
            channel_id("/org/nonstop/Supervisor1/channel/a_c3_a9").as_deref(),
            Some("aé")
        );
        assert_eq!(channel_id("/org/nonstop/Supervisor1"), None);
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

    #[test]
    fn json_text() {
        let j = J::obj(vec![
            ("a", J::s("q\"\\\n\u{1}")),
            ("b", J::Arr(vec![J::Uint(1), J::Int(-1)])),
            ("c", J::Arr(vec![])),
            ("d", J::Obj(vec![])),
            ("e", J::Float(f64::NAN)),
        ]);
        assert_eq!(
            j.compact(),
            r#"{"a":"q\"\\\n\u0001","b":[1,-1],"c":[],"d":{},"e":null}"#
        );
        assert_eq!(
            j.pretty(),
            "{\n  \"a\": \"q\\\"\\\\\\n\\u0001\",\n  \"b\": [1, -1],\n  \"c\": [],\n  \"d\": {},\n  \"e\": null\n}\n"
        );
        let nested = J::Arr(vec![J::obj(vec![("x", J::Bool(true))])]);
        assert_eq!(nested.pretty(), "[\n  {\n    \"x\": true\n  }\n]\n");
    }

    #[test]
    fn people_numbers() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(300 * 1024 * 1024), "300 MiB");
        assert_eq!(human_span(40_000), "40 ms");
        assert_eq!(human_span(3_200_000), "3.2 s");
        assert_eq!(human_span(303_000_000), "5m 3s");
        assert_eq!(age(0), "never");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &[
                vec!["".into(), "INPUT".into(), "URI".into()],
                vec!["*".into(), "primary".into(), "test://ball".into()],
            ],
            "  ",
        );
        assert_eq!(t, "     INPUT    URI\n  *  primary  test://ball\n");
    }
}
