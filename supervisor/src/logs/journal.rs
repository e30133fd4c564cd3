//! Native journald records (the journal's own protocol on its socket):
//! each event with its priority, so that `journalctl -p err` works, and
//! its fields as journal fields: `channel`, `input`, `output` and `event`
//! become `CHANNEL=`, `INPUT=`, `OUTPUT=` and `NONSTOP_EVENT=`, the others
//! their name in capitals. `MESSAGE=` keeps the fields too (as the text
//! log writes them), so `journalctl -u nonstopd` reads as before.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// journald's socket; `NONSTOP_JOURNAL_SOCKET` names another (the tests'
/// stand-in journal).
const SOCKET: &str = "/run/systemd/journal/socket";

pub struct Journal {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Journal {
    pub fn connect() -> std::io::Result<Journal> {
        let path = std::env::var_os("NONSTOP_JOURNAL_SOCKET")
            .map_or_else(|| PathBuf::from(SOCKET), PathBuf::from);
        let socket = UnixDatagram::unbound()?;
        // Fails now rather than at the first event if nobody listens.
        socket.connect(&path)?;
        Ok(Journal { socket, path })
    }
}

/// syslog's priority of a level.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The journal field a tracing field becomes: capitals, digits and `_`,
/// not starting with `_` (journald's own) or a digit.
pub fn field_name(name: &str) -> String {
    if name == "event" {
        return "NONSTOP_EVENT".into();
    }
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
        out.insert_str(0, "NONSTOP_");
    }
    out
}

/// One record in the journal's protocol: `NAME=value\n`, or for a value
/// with a line break `NAME\n`, its length (u64 LE), the value, `\n`.
pub fn record(level: &Level, message: &str, fields: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut put = |name: &str, value: &str| {
        if value.contains('\n') {
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
    };
    let mut text = message.to_owned();
    for (k, v) in fields {
        let _ = write!(text, " {k}={v}");
    }
    put("MESSAGE", &text);
    put("PRIORITY", &priority(level).to_string());
    put("SYSLOG_IDENTIFIER", "nonstopd");
    for (k, v) in fields {
        put(&field_name(k), v);
    }
    out
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields
                .push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.push((field.name().to_owned(), text));
        }
    }
}

impl<S: Subscriber> Layer<S> for Journal {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let level = event.metadata().level();
        let data = record(level, &f.message, &f.fields);
        if self.socket.send(&data).is_err() {
            // journald away (restarting) or the record too big for a
            // datagram: the line still reaches stderr, which is the journal
            // too, as text.
            let _ = self.socket.send_to(&data, &self.path);
            let mut line = format!("{level} {}", f.message);
            for (k, v) in &f.fields {
                let _ = write!(line, " {k}={v}");
            }
            line.push('\n');
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let nl = rest.iter().position(|b| *b == b'\n').unwrap();
            let line = &rest[..nl];
            if let Some(eq) = line.iter().position(|b| *b == b'=') {
                out.push((
                    String::from_utf8_lossy(&line[..eq]).into_owned(),
                    String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
                ));
                rest = &rest[nl + 1..];
            } else {
                let name = String::from_utf8_lossy(line).into_owned();
                let len = u64::from_le_bytes(rest[nl + 1..nl + 9].try_into().unwrap()) as usize;
                let value = &rest[nl + 9..nl + 9 + len];
                assert_eq!(rest[nl + 9 + len], b'\n');
                out.push((name, String::from_utf8_lossy(value).into_owned()));
                rest = &rest[nl + 10 + len..];
            }
        }
        out
    }

    #[test]
    fn field_names_follow_the_journal_rules() {
        assert_eq!(field_name("channel"), "CHANNEL");
        assert_eq!(field_name("input"), "INPUT");
        assert_eq!(field_name("output"), "OUTPUT");
        assert_eq!(field_name("event"), "NONSTOP_EVENT");
        assert_eq!(field_name("open_files"), "OPEN_FILES");
        assert_eq!(field_name("from-ns"), "FROM_NS");
        assert_eq!(field_name("_hidden"), "NONSTOP__HIDDEN");
        assert_eq!(field_name("9"), "NONSTOP_9");
    }

    #[test]
    fn an_event_reaches_the_journal_with_its_priority_and_fields() {
        let dir = std::env::temp_dir().join(format!("nonstop-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let socket = UnixDatagram::unbound().unwrap();
        socket.connect(&path).unwrap();
        let journal = Journal {
            socket,
            path: path.clone(),
        };
        let subscriber = tracing_subscriber::registry().with(journal);
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                channel = "news",
                input = "primary",
                event = "failover",
                "switched to backup"
            );
            tracing::error!(output = "cdn", "output failed:\nconnection refused");
        });
        let mut buf = vec![0u8; 65536];
        let n = listener.recv(&mut buf).unwrap();
        let rec = parse(&buf[..n]);
        let get = |k: &str| rec.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PRIORITY"), Some("4"));
        assert_eq!(get("CHANNEL"), Some("news"));
        assert_eq!(get("INPUT"), Some("primary"));
        assert_eq!(get("NONSTOP_EVENT"), Some("failover"));
        assert_eq!(get("SYSLOG_IDENTIFIER"), Some("nonstopd"));
        assert_eq!(
            get("MESSAGE"),
            Some("switched to backup channel=news input=primary event=failover")
        );
        let n = listener.recv(&mut buf).unwrap();
        let rec = parse(&buf[..n]);
        let get = |k: &str| rec.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PRIORITY"), Some("3"));
        assert_eq!(get("OUTPUT"), Some("cdn"));
        assert_eq!(
            get("MESSAGE"),
            Some("output failed:\nconnection refused output=cdn")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
