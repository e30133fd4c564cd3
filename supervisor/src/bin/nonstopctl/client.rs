//! The commands: a connection to nonstopd and what each command asks it.

use std::time::Duration;

use nonstop_api::model::{EncoderRow, InputRow, OutputRow};
use nonstop_api::{now_us, SERVICE};
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, Value};
use zbus::Connection;

use crate::cli::Bus;
use crate::fail::{bounded, not_running, Fail};
use crate::json::{value_json, J};
use crate::proxies::{ChannelProxy, ManagerProxy};
use crate::text::{age, human_bytes, human_span, local_time, out, table, value_text};
use crate::{CALL_TIMEOUT, CONNECT_TIMEOUT, DRILL_SLACK, EXIT_FAILED, EXIT_UNREACHABLE};

pub struct Client {
    pub conn: Connection,
    pub bus: Bus,
}

/// Everything a channel object shows.
pub struct ChannelStatus {
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
    pub fn json(&self) -> J {
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

    pub fn text(&self) -> String {
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
    pub async fn connect(bus: Bus) -> Result<Client, Fail> {
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

    pub async fn manager(&self, cache: CacheProperties) -> Result<ManagerProxy<'static>, Fail> {
        bounded(&self.bus, CALL_TIMEOUT, async {
            ManagerProxy::builder(&self.conn)
                .cache_properties(cache)
                .build()
                .await
        })
        .await
    }

    pub async fn channel_at(
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

    pub async fn path_of(&self, id: &str) -> Result<OwnedObjectPath, Fail> {
        let m = self.manager(CacheProperties::No).await?;
        bounded(&self.bus, CALL_TIMEOUT, m.get_channel(id)).await
    }

    pub async fn channel(&self, id: &str) -> Result<ChannelProxy<'static>, Fail> {
        let path = self.path_of(id).await?;
        self.channel_at(path, CacheProperties::No).await
    }

    /// Every property of the channel at `path`, from one `GetAll`.
    pub async fn status_of(&self, path: OwnedObjectPath) -> Result<ChannelStatus, Fail> {
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

    pub async fn status(&self, channel: Option<String>, json: bool) -> Result<(), Fail> {
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

    pub async fn drill(
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
}
