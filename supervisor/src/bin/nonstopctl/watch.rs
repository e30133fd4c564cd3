//! `watch`: the state of each channel, then every change and signal as
//! a line, until SIGINT or SIGTERM.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;

use nonstop_api::objpath::channel_id;
use nonstop_api::{CHANNEL_IFACE, MANAGER_IFACE, PATH, SERVICE};
use serde::Serialize;
use zbus::export::futures_core::Stream;
use zbus::message::Type as MessageType;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{MatchRule, Message, MessageStream};

use crate::client::Client;
use crate::fail::{bounded, from_zbus, Fail};
use crate::json::compact;
use crate::text::{out, stamp, value_text};
use crate::{CALL_TIMEOUT, EXIT_FAILED, EXIT_UNREACHABLE};

impl Client {
    pub async fn watch(&self, filter: Option<String>, json: bool) -> Result<(), Fail> {
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

pub async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// One line of `watch --json`: when, what, on which channel, then the
/// event's own fields.
#[derive(Serialize)]
struct Line<'a, F> {
    time: &'a str,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(flatten)]
    fields: F,
}

/// `Property` (the state at start) and `PropertiesChanged`.
#[derive(Serialize)]
struct PropertyFields<'a> {
    property: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct SwitchFields<'a> {
    from: &'a str,
    to: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct AlarmFields<'a> {
    target: &'a str,
    kind: &'a str,
    raised: bool,
}

#[derive(Serialize)]
struct OutputFields<'a> {
    id: &'a str,
    state: &'a str,
}

/// `RoleChanged`: the channel's seat in the fleet.
#[derive(Serialize)]
struct RoleFields<'a> {
    role: &'a str,
    leader: &'a str,
    token: i64,
}

/// `ChannelAdded`, `ChannelRemoved`.
#[derive(Serialize)]
struct PathFields<'a> {
    path: &'a str,
}

/// `Daemon`: nonstopd came or went.
#[derive(Serialize)]
struct DaemonFields {
    running: bool,
}

/// Turns signals into lines.
pub struct Watcher {
    filter: Option<String>,
    json: bool,
}

impl Watcher {
    pub fn line(&self, channel: Option<&str>, event: &str, text: String, fields: impl Serialize) {
        if let (Some(want), Some(ch)) = (&self.filter, channel) {
            if want != ch {
                return;
            }
        }
        let (human, rfc) = stamp();
        if self.json {
            let line = Line {
                time: &rfc,
                event,
                channel,
                fields,
            };
            out(&format!("{}\n", compact(&line)));
        } else {
            match channel {
                Some(ch) => out(&format!("{human} {ch} {text}\n")),
                None => out(&format!("{human} {text}\n")),
            }
        }
    }

    pub fn property(&self, channel: &str, event: &str, name: &str, value: &str) {
        self.line(
            Some(channel),
            event,
            format!("{name}={value}"),
            PropertyFields {
                property: name,
                value,
            },
        );
    }

    pub fn signal(&self, msg: &Message) {
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
                    SwitchFields {
                        from: &from,
                        to: &to,
                        reason: &reason,
                    },
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
                    AlarmFields {
                        target: &target,
                        kind: &kind,
                        raised,
                    },
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
                    OutputFields {
                        id: &id,
                        state: &state,
                    },
                );
            }
            (CHANNEL_IFACE, "RoleChanged") => {
                let (Some(ch), Ok((role, leader, token))) = (
                    channel_id(path),
                    body.deserialize::<(String, String, i64)>(),
                ) else {
                    return;
                };
                self.line(
                    Some(&ch),
                    "RoleChanged",
                    format!("role {role} (leader {}, token {token})", dash(&leader)),
                    RoleFields {
                        role: &role,
                        leader: &leader,
                        token,
                    },
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
                    PathFields { path: p.as_str() },
                );
            }
            _ => {}
        }
    }

    pub fn owner(&self, msg: &Message) {
        let Ok((_, _, new)) = msg.body().deserialize::<(String, String, String)>() else {
            return;
        };
        let running = !new.is_empty();
        self.line(
            None,
            "Daemon",
            format!("nonstopd {}", if running { "started" } else { "stopped" }),
            DaemonFields { running },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_keep_their_key_order() {
        let line = Line {
            time: "T",
            event: "Alarm",
            channel: Some("news"),
            fields: AlarmFields {
                target: "udp",
                kind: "output-down",
                raised: true,
            },
        };
        assert_eq!(
            compact(&line),
            r#"{"time":"T","event":"Alarm","channel":"news","target":"udp","kind":"output-down","raised":true}"#
        );
        let daemon = Line {
            time: "T",
            event: "Daemon",
            channel: None,
            fields: DaemonFields { running: false },
        };
        assert_eq!(
            compact(&daemon),
            r#"{"time":"T","event":"Daemon","running":false}"#
        );
        let role = Line {
            time: "T",
            event: "RoleChanged",
            channel: Some("news"),
            fields: RoleFields {
                role: "active",
                leader: "box-a",
                token: 42,
            },
        };
        assert_eq!(
            compact(&role),
            r#"{"time":"T","event":"RoleChanged","channel":"news","role":"active","leader":"box-a","token":42}"#
        );
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
}
