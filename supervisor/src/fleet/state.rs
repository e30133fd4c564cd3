//! What the fleet's keys in etcd say, read into plain values: the live
//! members (their lease keys), the drained nodes, each channel's leader
//! (whose key's create revision is the fencing token). Pure, so that the
//! decisions taken on it can be tested without etcd.
//!
//! ```text
//! PREFIX/members/NODE   (leased)  {"capacity":1,"peer":"…","channels":{"ch":"hash"}}
//! PREFIX/drain/NODE               "1" while an operator has drained NODE
//! PREFIX/leaders/CH     (leased)  {"node":"a","hash":"…"}
//! PREFIX/epoch/CH/NODE  (leased)  when it emits a frame, less the frame's
//!                                 UTC time, µs (its last keyframe's)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a box says of itself under its lease.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub capacity: u32,
    /// Where its peers reach it for the failsafe (`host:port`).
    #[serde(default)]
    pub peer: Option<String>,
    /// Channel id → hash of its definition on that box.
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
    /// When it started, µs since the epoch (shown in `fleet status`).
    #[serde(default)]
    pub started_us: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderRecord {
    pub node: String,
    /// The definition it leads with: boxes whose own differs stay off.
    pub hash: String,
}

/// A scheduled handover in progress (`handover/CHANNEL`, under the old
/// leader's lease, which deleted the leader key in the same transaction):
/// `to` takes the channel and sends from `at` (running time = UTC ns, a
/// GOP boundary) on; `from` sends what comes before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub from: String,
    pub to: String,
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub record: MemberRecord,
    pub drained: bool,
    /// The lease its key hangs on.
    pub lease: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub record: LeaderRecord,
    /// The fencing token: the key's create revision.
    pub token: i64,
    /// The lease it hangs on.
    pub lease: i64,
}

/// The fleet as one read of the prefix shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub members: Vec<Member>,
    pub leaders: BTreeMap<String, Leader>,
    /// Drained node names (a drained node that is down is still drained).
    pub drained: Vec<String>,
    /// `PREFIX/epoch/CH/NODE` → that box's output delay against UTC, µs.
    pub epochs: BTreeMap<(String, String), i64>,
    pub handovers: BTreeMap<String, Handover>,
}

/// One key-value as etcd returned it.
pub struct Kv<'a> {
    pub key: &'a str,
    pub value: &'a [u8],
    pub create_revision: i64,
    pub lease: i64,
}

pub fn member_key(prefix: &str, node: &str) -> String {
    format!("{prefix}/members/{node}")
}

pub fn drain_key(prefix: &str, node: &str) -> String {
    format!("{prefix}/drain/{node}")
}

pub fn leader_key(prefix: &str, channel: &str) -> String {
    format!("{prefix}/leaders/{channel}")
}

pub fn handover_key(prefix: &str, channel: &str) -> String {
    format!("{prefix}/handover/{channel}")
}

pub fn epoch_key(prefix: &str, channel: &str, node: &str) -> String {
    format!("{prefix}/epoch/{channel}/{node}")
}

/// Reads every key under `prefix/`; keys it does not know, and records
/// it cannot parse (a newer nonstop's), are skipped.
pub fn observe<'a>(prefix: &str, kvs: impl IntoIterator<Item = Kv<'a>>) -> Observed {
    let mut obs = Observed::default();
    let mut members = Vec::new();
    for kv in kvs {
        let Some(rest) = kv
            .key
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
        else {
            continue;
        };
        let mut parts = rest.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("members"), Some(node), None) => {
                if let Ok(record) = serde_json::from_slice::<MemberRecord>(kv.value) {
                    members.push((node.to_owned(), record, kv.lease));
                }
            }
            (Some("drain"), Some(node), None) => obs.drained.push(node.to_owned()),
            (Some("leaders"), Some(ch), None) => {
                if let Ok(record) = serde_json::from_slice::<LeaderRecord>(kv.value) {
                    obs.leaders.insert(
                        ch.to_owned(),
                        Leader {
                            record,
                            token: kv.create_revision,
                            lease: kv.lease,
                        },
                    );
                }
            }
            (Some("handover"), Some(ch), None) => {
                if let Ok(h) = serde_json::from_slice::<Handover>(kv.value) {
                    obs.handovers.insert(ch.to_owned(), h);
                }
            }
            (Some("epoch"), Some(ch), Some(node)) => {
                if let Some(us) = std::str::from_utf8(kv.value)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    obs.epochs.insert((ch.to_owned(), node.to_owned()), us);
                }
            }
            _ => {}
        }
    }
    obs.drained.sort();
    obs.members = members
        .into_iter()
        .map(|(name, record, lease)| Member {
            drained: obs.drained.binary_search(&name).is_ok(),
            name,
            record,
            lease,
        })
        .collect();
    obs
}

/// A channel definition's hash, the same on every box for the same
/// `[[channel]]` table (TOML tables are sorted maps, so key order in the
/// file does not matter). An active-active channel's outputs are left
/// out: each box sends to its own destinations by design.
pub fn definition_hash(table: &toml::Value) -> String {
    let active_active = table
        .get("fleet")
        .and_then(|f| f.get("mode"))
        .and_then(|m| m.as_str())
        == Some("active-active");
    let text = match table.as_table() {
        Some(t) if active_active => {
            let mut t = t.clone();
            t.remove("output");
            t.to_string()
        }
        _ => table.to_string(),
    };
    format!("{:016x}", super::placement::stable_hash(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv<'a>(key: &'a str, value: &'a str, rev: i64, lease: i64) -> Kv<'a> {
        Kv {
            key,
            value: value.as_bytes(),
            create_revision: rev,
            lease,
        }
    }

    #[test]
    fn reads_members_drains_leaders_and_skips_the_rest() {
        let obs = observe(
            "/n",
            [
                kv(
                    "/n/members/a",
                    r#"{"capacity":2,"channels":{"c":"h1"}}"#,
                    5,
                    7,
                ),
                kv("/n/members/b", r#"{"capacity":1}"#, 6, 8),
                kv("/n/members/bad", "not json", 6, 8),
                kv("/n/drain/b", "1", 9, 0),
                kv("/n/drain/gone", "1", 9, 0),
                kv("/n/leaders/c", r#"{"node":"a","hash":"h1"}"#, 12, 7),
                kv("/n/epoch/c/a", "1700000000000000", 13, 7),
                kv("/n/handover/c", r#"{"from":"a","to":"b","at":42}"#, 14, 7),
                kv("/n/unknown/x", "", 1, 0),
                kv("/other/members/z", r#"{"capacity":1}"#, 1, 0),
            ],
        );
        let names: Vec<(&str, bool)> = obs
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.drained))
            .collect();
        assert_eq!(names, [("a", false), ("b", true)]);
        assert_eq!(obs.members[0].record.capacity, 2);
        assert_eq!((obs.members[0].lease, obs.members[1].lease), (7, 8));
        assert_eq!(obs.members[0].record.channels["c"], "h1");
        assert_eq!(obs.drained, ["b", "gone"]);
        let l = &obs.leaders["c"];
        assert_eq!((l.record.node.as_str(), l.token, l.lease), ("a", 12, 7));
        assert_eq!(obs.epochs[&("c".into(), "a".into())], 1_700_000_000_000_000);
        let h = &obs.handovers["c"];
        assert_eq!((h.from.as_str(), h.to.as_str(), h.at), ("a", "b", 42));
    }

    #[test]
    fn the_definition_hash_ignores_key_order_and_sees_values() {
        let a: toml::Value = toml::from_str("id = \"c\"\ntimeout = \"1s\"").unwrap();
        let b: toml::Value = toml::from_str("timeout = \"1s\"\nid = \"c\"").unwrap();
        let c: toml::Value = toml::from_str("timeout = \"2s\"\nid = \"c\"").unwrap();
        assert_eq!(definition_hash(&a), definition_hash(&b));
        assert_ne!(definition_hash(&a), definition_hash(&c));
        assert_eq!(definition_hash(&a).len(), 16);
        // Active-active: each box's own destinations do not count.
        let aa = |dest: &str| -> toml::Value {
            toml::from_str(&format!(
                "id = \"c\"\nfleet = {{ mode = \"active-active\" }}\n[[output]]\nid = \"o\"\nuri = \"{dest}\""
            ))
            .unwrap()
        };
        assert_eq!(
            definition_hash(&aa("hls:///a")),
            definition_hash(&aa("hls:///b"))
        );
        let ap = |dest: &str| -> toml::Value {
            toml::from_str(&format!(
                "id = \"c\"\n[[output]]\nid = \"o\"\nuri = \"{dest}\""
            ))
            .unwrap()
        };
        assert_ne!(
            definition_hash(&ap("hls:///a")),
            definition_hash(&ap("hls:///b"))
        );
    }
}
