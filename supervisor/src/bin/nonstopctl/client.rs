//! The commands: a connection to nonstopd and what each command asks it.

use std::time::Duration;

use nonstop_api::model::{ChannelStatus, FleetChannel, FleetStatus, Status};
use nonstop_api::{now_us, SERVICE};
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, Value};
use zbus::Connection;

use crate::cli::Bus;
use crate::fail::{bounded, not_running, Fail};
use crate::json::{pretty, DbusJson, Ordered};
use crate::proxies::{ChannelProxy, ManagerProxy};
use crate::text::{channel_text, fleet_text, local_time, out, value_text};
use crate::{
    CALL_TIMEOUT, CONNECT_TIMEOUT, DRILL_SLACK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE,
};

pub struct Client {
    pub conn: Connection,
    pub bus: Bus,
}

impl Client {
    /// Connects to the bus nonstopd is on; with no bus named, the system
    /// bus (the service) first, then the session bus.
    pub async fn connect(bus: Bus) -> Result<Client, Fail> {
        if bus != Bus::Auto {
            return Client::connect_to(bus).await;
        }
        let system = match Client::connect_to(Bus::System).await {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        match Client::connect_to(Bus::Session).await {
            Ok(c) => Ok(c),
            Err(session) => Err(Fail::new(
                session.code.max(system.code),
                format!(
                    "nonstopd is not running on the system bus nor on the session bus \
                     (system bus: {}; session bus: {})",
                    system.msg, session.msg
                ),
            )),
        }
    }

    async fn connect_to(bus: Bus) -> Result<Client, Fail> {
        let builder = match &bus {
            Bus::Auto | Bus::Session => zbus::connection::Builder::session(),
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
                active_input: p.active_input().await?,
                switches: p.switches().await?,
                inputs: p.inputs().await?,
                outputs: p.outputs().await?,
                encoders: p.encoders().await?,
                // An older nonstopd has no Links.
                links: p.links().await.unwrap_or_default(),
            })
        })
        .await
    }

    pub async fn status(&self, channel: Option<String>, json: bool) -> Result<(), Fail> {
        if let Some(id) = channel {
            let st = self.status_of(self.path_of(&id).await?).await?;
            out(&if json { pretty(&st) } else { channel_text(&st) });
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
            out(&pretty(&Status {
                version,
                started_at: started,
                channels,
            }));
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
            s.push_str(&channel_text(c));
        }
        out(&s);
        Ok(())
    }

    /// `fleet status`: the manager's fleet properties and every channel's
    /// seat (`Role`, `Leader`, `FencingToken`).
    pub async fn fleet_status(&self, json: bool) -> Result<(), Fail> {
        let m = self.manager(CacheProperties::Yes).await?;
        let (node_name, etcd_reachable, members, paths) = bounded(&self.bus, CALL_TIMEOUT, async {
            Ok((
                m.node_name().await?,
                m.etcd_reachable().await?,
                m.fleet_members().await?,
                m.channels().await?,
            ))
        })
        .await?;
        if node_name.is_empty() {
            // As nonstopd answers Drain without a fleet.
            return Err(Fail::new(
                EXIT_REFUSED,
                format!(
                    "{}: {}",
                    nonstop_api::NO_FLEET,
                    nonstop_api::NO_FLEET_MESSAGE
                ),
            ));
        }
        let mut channels = Vec::new();
        for path in paths {
            let p = self.channel_at(path.clone(), CacheProperties::Yes).await?;
            channels.push(
                bounded(&self.bus, CALL_TIMEOUT, async {
                    Ok(FleetChannel {
                        path: path.as_str().to_owned(),
                        id: p.id().await?,
                        role: p.role().await?,
                        leader: p.leader().await?,
                        fencing_token: p.fencing_token().await?,
                    })
                })
                .await?,
            );
        }
        let st = FleetStatus {
            node_name,
            etcd_reachable,
            members,
            channels,
        };
        out(&if json { pretty(&st) } else { fleet_text(&st) });
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
            let j = Ordered(keys.iter().map(|k| (*k, DbusJson(&report[*k]))).collect());
            out(&pretty(&j));
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
