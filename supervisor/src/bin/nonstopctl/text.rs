//! Output for people: stdout, tables, sizes, spans and times.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use nonstop_api::model::{ChannelStatus, FleetStatus};
use nonstop_api::now_us;
use zbus::zvariant::Value;

use crate::json::{compact, DbusJson};
use crate::EXIT_FAILED;

/// Writes to stdout; a reader that went away (`| head`) ends us quietly.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("nonstopctl: cannot write to stdout: {e}");
        std::process::exit(EXIT_FAILED.into());
    }
}

/// A value as plain text: strings as they are, the rest as JSON.
pub fn value_text(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => s.as_str().to_owned(),
        Value::Value(inner) => value_text(inner),
        other => compact(&DbusJson(other)),
    }
}

/// Columns aligned; the last one is not padded.
pub fn table(rows: &[Vec<String>], indent: &str) -> String {
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

pub fn human_bytes(n: u64) -> String {
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
pub fn human_span(us: u64) -> String {
    if us < 1_000_000 {
        format!("{} ms", us / 1000)
    } else if us < 60_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else {
        humantime::format_duration(Duration::from_secs(us / 1_000_000)).to_string()
    }
}

pub fn age(last_seen_us: u64) -> String {
    if last_seen_us == 0 {
        "never".into()
    } else {
        format!("{} ago", human_span(now_us().saturating_sub(last_seen_us)))
    }
}

/// Local wall-clock time of `us` (µs since the epoch), seconds precision.
pub fn local_time(us: u64) -> String {
    glib::DateTime::from_unix_local((us / 1_000_000) as i64)
        .and_then(|t| t.format("%Y-%m-%d %H:%M:%S"))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| format!("@{}", us / 1_000_000))
}

/// Now, local: (for lines "2024-05-01 12:00:00.123", for JSON RFC 3339).
pub fn stamp() -> (String, String) {
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

/// A channel for people: a summary line and tables of its inputs,
/// outputs, encoders and SRT links.
pub fn channel_text(c: &ChannelStatus) -> String {
    let mut s = format!(
        "{}: {}, mode {}, {}, {} switch{}\n",
        c.id,
        c.state,
        c.mode,
        if c.active_input.is_empty() {
            "no input on air".to_owned()
        } else {
            format!("input {}", c.active_input)
        },
        c.switches,
        if c.switches == 1 { "" } else { "es" }
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
    for i in &c.inputs {
        rows.push(vec![
            if i.id == c.active_input {
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
            human_span(i.return_holdoff_ms.saturating_mul(1000)),
            i.uri.clone(),
        ]);
    }
    s.push_str(&table(&rows, "  "));
    if c.outputs.is_empty() {
        s.push_str("     no outputs\n");
    } else {
        let mut rows = vec![["", "OUTPUT", "STATE", "SENT", "RESTARTS", "URI"]
            .map(String::from)
            .to_vec()];
        for o in &c.outputs {
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
    if !c.encoders.is_empty() {
        let mut rows = vec![["", "ENCODER", "BACKEND", "STATE"]
            .map(String::from)
            .to_vec()];
        for e in &c.encoders {
            rows.push(vec![
                " ".into(),
                e.id.clone(),
                e.backend.clone(),
                e.state.clone(),
            ]);
        }
        s.push_str(&table(&rows, "  "));
    }
    if !c.links.is_empty() {
        let mut rows = vec![[
            "", "SRT LINK", "RTT", "LOSS 5S", "LOST", "RETRANS", "DROPPED", "RATE", "CAPACITY",
            "ALARMS",
        ]
        .map(String::from)
        .to_vec()];
        for l in &c.links {
            rows.push(vec![
                " ".into(),
                format!("{} {}", l.kind, l.id),
                format!("{:.1} ms", l.rtt_us as f64 / 1000.0),
                format!("{:.2} %", l.loss_ppm as f64 / 10_000.0),
                l.lost.to_string(),
                l.retransmitted.to_string(),
                l.dropped.to_string(),
                format!("{:.2} Mb/s", l.rate_kbps as f64 / 1000.0),
                format!("{:.0} Mb/s", l.bandwidth_kbps as f64 / 1000.0),
                if l.alarms.is_empty() {
                    "-".into()
                } else {
                    l.alarms.join(",")
                },
            ]);
        }
        s.push_str(&table(&rows, "  "));
    }
    s
}

/// The fleet for people: a summary line, the members (`*`: this box)
/// and every channel's seat.
pub fn fleet_text(f: &FleetStatus) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut s = format!(
        "fleet: node {}, etcd {}, {}, {}\n",
        f.node_name,
        if f.etcd_reachable {
            "reachable"
        } else {
            "NOT reachable"
        },
        plural(f.members.len(), "member", "members"),
        plural(f.channels.len(), "channel", "channels"),
    );
    let dash = |v: &str| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.to_owned()
        }
    };
    if f.members.is_empty() {
        s.push_str("     no members seen\n");
    } else {
        let mut rows = vec![["", "MEMBER", "STATE", "CAPACITY", "LEADS"]
            .map(String::from)
            .to_vec()];
        for m in &f.members {
            let mut state = String::from(if m.alive { "alive" } else { "down" });
            if m.drained {
                state.push_str(",drained");
            }
            rows.push(vec![
                if m.name == f.node_name { "*" } else { " " }.into(),
                m.name.clone(),
                state,
                m.capacity.to_string(),
                m.leads.to_string(),
            ]);
        }
        s.push_str(&table(&rows, "  "));
    }
    if !f.channels.is_empty() {
        let mut rows = vec![["", "CHANNEL", "ROLE", "LEADER", "TOKEN"]
            .map(String::from)
            .to_vec()];
        for c in &f.channels {
            rows.push(vec![
                " ".into(),
                c.id.clone(),
                dash(&c.role),
                dash(&c.leader),
                if c.fencing_token == 0 {
                    "-".into()
                } else {
                    c.fencing_token.to_string()
                },
            ]);
        }
        s.push_str(&table(&rows, "  "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_fleet_for_people() {
        use nonstop_api::model::{FleetChannel, MemberRow};
        let member = |name: &str, alive, drained, leads| MemberRow {
            name: name.into(),
            alive,
            drained,
            capacity: 1,
            leads,
        };
        let f = FleetStatus {
            node_name: "box-a".into(),
            etcd_reachable: true,
            members: vec![
                member("box-a", true, false, 1),
                member("box-b", true, true, 0),
                member("box-c", false, true, 0),
            ],
            channels: vec![
                FleetChannel {
                    path: "/p".into(),
                    id: "news".into(),
                    role: "active".into(),
                    leader: "box-a".into(),
                    fencing_token: 42,
                },
                FleetChannel {
                    path: "/q".into(),
                    id: "sport".into(),
                    role: "standby".into(),
                    leader: String::new(),
                    fencing_token: 0,
                },
            ],
        };
        assert_eq!(
            fleet_text(&f),
            concat!(
                "fleet: node box-a, etcd reachable, 3 members, 2 channels\n",
                "     MEMBER  STATE          CAPACITY  LEADS\n",
                "  *  box-a   alive          1         1\n",
                "     box-b   alive,drained  1         0\n",
                "     box-c   down,drained   1         0\n",
                "     CHANNEL  ROLE     LEADER  TOKEN\n",
                "     news     active   box-a   42\n",
                "     sport    standby  -       -\n",
            )
        );
    }
}
