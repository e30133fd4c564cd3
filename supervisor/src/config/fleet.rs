//! `[fleet]` (the boxes and etcd) and `[channel.fleet]` (how one channel
//! runs on them). Without `[fleet]` a box runs every channel alone, as
//! before.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::Errors;
use super::units::duration;

/// The etcd cluster, this box, and the lease its leaderships hang on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// etcd client URLs, `http://host:2379` or `https://…`.
    pub endpoints: Vec<Spanned<String>>,
    /// This box's name in the fleet (default: the host name).
    #[serde(default)]
    pub node: Option<Spanned<String>>,
    /// Its share of the fleet's channels, relative to the others'.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Every key nonstop writes starts with this.
    #[serde(default = "default_prefix")]
    pub prefix: Spanned<String>,
    /// The lease every leadership of this box hangs on; etcd may raise it
    /// (its minimum is 1.5 × its election timeout).
    #[serde(default = "default_ttl", deserialize_with = "duration")]
    pub ttl: Duration,
    /// `host:port` where this box answers its peers (the failsafe that
    /// keeps a leader on air through an etcd outage). Without it an etcd
    /// outage fences every leader within the TTL.
    #[serde(default)]
    pub peer: Option<Spanned<String>>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// PEM files for `https://` endpoints: the CA, and a client
    /// certificate and key for mutual TLS.
    #[serde(default)]
    pub ca: Option<Spanned<String>>,
    #[serde(default)]
    pub cert: Option<Spanned<String>>,
    #[serde(default)]
    pub key: Option<Spanned<String>>,
}

/// How a channel runs on the fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FleetMode {
    /// One leader sends; warm standbys wait (the default).
    #[default]
    ActivePassive,
    /// Every replica sends, each to its own destinations.
    ActiveActive,
    /// Runs, and sends, on each of `nodes`: no election.
    Pinned,
}

impl FleetMode {
    pub fn name(self) -> &'static str {
        match self {
            FleetMode::ActivePassive => "active-passive",
            FleetMode::ActiveActive => "active-active",
            FleetMode::Pinned => "pinned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelFleet {
    #[serde(default)]
    pub mode: FleetMode,
    /// How many boxes run it (the leader and its warm standbys).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// The boxes that may run it (default: all); for `pinned`, the boxes
    /// that do.
    #[serde(default)]
    pub nodes: Vec<Spanned<String>>,
    /// A box that takes the channel back whenever it is up.
    #[serde(default)]
    pub preferred: Option<Spanned<String>>,
}

impl Default for ChannelFleet {
    fn default() -> Self {
        Self {
            mode: FleetMode::default(),
            replicas: default_replicas(),
            nodes: Vec::new(),
            preferred: None,
        }
    }
}

impl ChannelFleet {
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.get_ref().clone()).collect()
    }
}

fn default_capacity() -> u32 {
    1
}

fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "/nonstop".to_owned())
}

/// Where `[fleet] ttl` is written (the duration itself keeps no span).
fn ttl_span(text: &str) -> Option<std::ops::Range<usize>> {
    #[derive(Deserialize)]
    struct Doc {
        fleet: Option<Table>,
    }
    #[derive(Deserialize)]
    struct Table {
        ttl: Option<Spanned<toml::Value>>,
    }
    let doc: Doc = toml::from_str(text).ok()?;
    Some(doc.fleet?.ttl?.span())
}

pub fn default_ttl() -> Duration {
    Duration::from_secs(2)
}

fn default_replicas() -> usize {
    2
}

/// A node name as it goes into an etcd key (the rule D-Bus callers'
/// names are checked against too).
fn key_safe(s: &str) -> bool {
    nonstop_api::valid_node_name(s)
}

/// The host name, the default node name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

impl Fleet {
    /// This box's name: `node`, or the host name.
    pub fn node_name(&self) -> String {
        self.node
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(hostname)
    }

    /// The key prefix, without a trailing `/`.
    pub fn key_prefix(&self) -> String {
        self.prefix.get_ref().trim_end_matches('/').to_owned()
    }

    pub(super) fn validate(&self, errors: &mut Errors) {
        if self.endpoints.is_empty() {
            errors.push(
                0..0,
                "fleet.endpoints",
                "no etcd endpoint: give at least one, such as \"http://10.0.0.1:2379\"",
            );
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            match url::Url::parse(e.get_ref()) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.port().is_some() =>
                {
                    if u.scheme() == "https" && self.ca.is_none() {
                        errors.push(e.span(), format!("fleet.endpoints[{i}]"), "an https:// endpoint needs `ca`, the PEM file of the CA that signed etcd's certificate");
                    }
                }
                _ => errors.push(
                    e.span(),
                    format!("fleet.endpoints[{i}]"),
                    format!(
                        "\"{}\" is not an etcd client URL such as \"http://10.0.0.1:2379\"",
                        e.get_ref()
                    ),
                ),
            }
        }
        let node = self.node_name();
        if !key_safe(&node) {
            let span = self.node.as_ref().map_or(0..0, |n| n.span());
            errors.push(
                span,
                "fleet.node",
                format!("\"{node}\" cannot name a node: 1 to 64 letters, digits, '-', '_' or '.'"),
            );
        }
        if self.capacity == 0 {
            errors.push(0..0, "fleet.capacity", "must be at least 1");
        }
        let prefix = self.prefix.get_ref();
        if !prefix.starts_with('/') || prefix.trim_end_matches('/').is_empty() {
            errors.push(
                self.prefix.span(),
                "fleet.prefix",
                format!(
                    "\"{prefix}\" must start with '/' and name something, such as \"/nonstop\""
                ),
            );
        }
        if self.ttl < Duration::from_secs(1) || self.ttl.subsec_nanos() != 0 {
            let at = ttl_span(errors.text).unwrap_or(0..0);
            errors.push(at, "fleet.ttl", format!("{} is not a whole number of seconds of at least 1 s (etcd leases count in seconds)", humantime::format_duration(self.ttl)));
        }
        if let Some(peer) = &self.peer {
            if peer.get_ref().parse::<std::net::SocketAddr>().is_err() {
                errors.push(
                    peer.span(),
                    "fleet.peer",
                    format!(
                        "\"{}\" is not an address such as \"10.0.0.5:7580\"",
                        peer.get_ref()
                    ),
                );
            }
        }
        if self.username.is_some() != self.password.is_some() {
            errors.push(0..0, "fleet", "`username` and `password` go together");
        }
        if self.cert.is_some() != self.key.is_some() {
            errors.push(0..0, "fleet", "`cert` and `key` go together");
        }
        for (name, file) in [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)] {
            if let Some(f) = file {
                if std::fs::metadata(f.get_ref()).is_err() {
                    errors.push(
                        f.span(),
                        format!("fleet.{name}"),
                        format!("cannot read \"{}\"", f.get_ref()),
                    );
                }
            }
        }
    }
}

impl ChannelFleet {
    pub(super) fn validate(
        &self,
        at: &str,
        span: std::ops::Range<usize>,
        fleet: Option<&Fleet>,
        errors: &mut Errors,
    ) {
        if self.replicas == 0 {
            errors.push(
                span.clone(),
                format!("{at}.fleet.replicas"),
                "must be at least 1",
            );
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if !key_safe(n.get_ref()) {
                errors.push(
                    n.span(),
                    format!("{at}.fleet.nodes[{i}]"),
                    format!(
                        "\"{}\" cannot name a node: 1 to 64 letters, digits, '-', '_' or '.'",
                        n.get_ref()
                    ),
                );
            }
        }
        if self.mode == FleetMode::Pinned && self.nodes.is_empty() {
            errors.push(
                span.clone(),
                format!("{at}.fleet.nodes"),
                "a pinned channel names the nodes it runs on",
            );
        }
        if let Some(p) = &self.preferred {
            if !self.nodes.is_empty() && !self.nodes.iter().any(|n| n.get_ref() == p.get_ref()) {
                errors.push(
                    p.span(),
                    format!("{at}.fleet.preferred"),
                    format!("\"{}\" is not one of the channel's nodes", p.get_ref()),
                );
            }
        }
        if fleet.is_none() && self.nodes.iter().chain(&self.preferred).next().is_some() {
            errors.push(
                span.clone(),
                format!("{at}.fleet"),
                "names nodes, but the config has no [fleet] table",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::fixtures::{errors, GOOD};
    use crate::config::{Config, FleetMode};

    const FLEET: &str = r#"
[fleet]
endpoints = ["http://10.0.0.11:2379", "http://10.0.0.12:2379"]
node = "enc-a"
peer = "10.0.0.21:7580"
"#;

    #[test]
    fn a_fleet_table_with_its_defaults() {
        let cfg = Config::parse("ch.toml", &format!("{FLEET}{GOOD}")).unwrap();
        let f = cfg.fleet.as_ref().unwrap();
        assert_eq!(f.node_name(), "enc-a");
        assert_eq!(f.key_prefix(), "/nonstop");
        assert_eq!(f.ttl, std::time::Duration::from_secs(2));
        assert_eq!(f.capacity, 1);
        let ch = &cfg.channels[0].fleet;
        assert_eq!((ch.mode, ch.replicas), (FleetMode::ActivePassive, 2));
        assert!(Config::parse("ch.toml", GOOD).unwrap().fleet.is_none());
    }

    #[test]
    fn fleet_mistakes_are_reported_where_they_are() {
        let text = format!(
            "{}{GOOD}",
            r#"
[fleet]
endpoints = ["10.0.0.11:2379", "https://10.0.0.12:2379"]
node = "enc a"
ttl = "1500ms"
peer = "somewhere"
prefix = "nonstop"
username = "u"
"#
        );
        let got = errors(&text);
        let want = [
            "ch.toml:3:14: fleet.endpoints[0]: \"10.0.0.11:2379\" is not an etcd client URL",
            "ch.toml:3:32: fleet.endpoints[1]: an https:// endpoint needs `ca`",
            "ch.toml:4:8: fleet.node: \"enc a\" cannot name a node",
            "fleet.prefix: \"nonstop\" must start with '/'",
            "ch.toml:5:7: fleet.ttl: 1s 500ms is not a whole number of seconds",
            "ch.toml:6:8: fleet.peer: \"somewhere\" is not an address",
            "fleet: `username` and `password` go together",
        ];
        for w in want {
            assert!(
                got.iter().any(|g| g.contains(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn channel_fleet_mistakes_name_the_channel() {
        let pinned = GOOD.replace(
            "timeout = \"750ms\"",
            "timeout = \"750ms\"\nfleet = { mode = \"pinned\", replicas = 0, preferred = \"x\" }",
        );
        let got = errors(&format!("{FLEET}{pinned}"));
        assert!(
            got.iter()
                .any(|g| g.ends_with("channel[0].fleet.replicas: must be at least 1")),
            "{got:#?}"
        );
        assert!(
            got.iter().any(|g| g
                .ends_with("channel[0].fleet.nodes: a pinned channel names the nodes it runs on")),
            "{got:#?}"
        );
        let alone = GOOD.replace(
            "timeout = \"750ms\"",
            "timeout = \"750ms\"\nfleet = { nodes = [\"enc-a\"], preferred = \"enc-b\" }",
        );
        let got = errors(&alone);
        assert!(
            got.iter().any(|g| g.contains(
                "channel[0].fleet.preferred: \"enc-b\" is not one of the channel's nodes"
            )),
            "{got:#?}"
        );
        assert!(
            got.iter().any(|g| g
                .contains("channel[0].fleet: names nodes, but the config has no [fleet] table")),
            "{got:#?}"
        );
        let bad_mode = GOOD.replace(
            "timeout = \"750ms\"",
            "timeout = \"750ms\"\nfleet = { mode = \"both\" }",
        );
        let got = errors(&bad_mode);
        assert!(got[0].contains("unknown variant `both`, expected one of `active-passive`, `active-active`, `pinned`"), "{got:#?}");
    }
}
