//! The read model of a channel object, typed: the rows of its `Inputs`,
//! `Outputs`, `Encoders` and `Links` properties (D-Bus structures, field for field
//! the signatures docs/dbus.md lists) and everything a channel object
//! shows, as `nonstopctl status --json` prints it; the manager's
//! `FleetMembers` rows and the fleet as `nonstopctl fleet status --json`
//! prints it. nonstopd builds the rows, nonstopctl reads them; serde
//! serializes them in field order, both to D-Bus and to JSON.

use serde::{Deserialize, Serialize};
use zvariant::{OwnedValue, Type, Value};

/// One input of `Inputs` (`(sssasttt)`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct InputRow {
    pub id: String,
    /// With its secrets redacted.
    pub uri: String,
    /// `starting`, `receiving`, `waiting` or `stopped`.
    pub state: String,
    /// Raised alarms, `media:kind` (e.g. `video:black`).
    pub alarms: Vec<String>,
    /// The last buffer, µs since the Unix epoch; 0: none yet.
    pub last_seen: u64,
    pub restarts: u64,
    /// How long the input must be clean before the channel returns to it.
    pub return_holdoff_ms: u64,
}

/// One output of `Outputs` (`(ssstt)`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct OutputRow {
    pub id: String,
    /// The destination in use, with its secrets redacted.
    pub uri: String,
    /// `starting`, `live`, `waiting` or `stopped`.
    pub state: String,
    /// Sent by this run of the output.
    pub bytes: u64,
    pub restarts: u64,
}

/// One SRT link of `Links` (`(ssttttttttas)`): an input's or an output's
/// connection, as libsrt counts it (counters start over with each
/// connection).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct LinkRow {
    /// `input` or `output`.
    pub kind: String,
    /// The input's or output's id.
    pub id: String,
    /// Round-trip time, µs.
    pub rtt_us: u64,
    /// libsrt's estimate of the link's capacity, kbit/s.
    pub bandwidth_kbps: u64,
    /// What goes through (sent or received), kbit/s.
    pub rate_kbps: u64,
    /// Packets sent or received on this connection.
    pub packets: u64,
    pub lost: u64,
    /// Resent by an output; received again by a listener input (a caller
    /// input's srtsrc does not count them on GStreamer 1.22).
    pub retransmitted: u64,
    /// Dropped as too late.
    pub dropped: u64,
    /// Packets lost over the last 5 s, per million.
    pub loss_ppm: u64,
    /// Raised alarms: `loss`, `rtt`.
    pub alarms: Vec<String>,
}

/// One encoder instance of `Encoders` (`(sss)`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct EncoderRow {
    /// `rendition.primary` or `rendition.backup`.
    pub id: String,
    /// `x264`, `nvenc`, …
    pub backend: String,
    /// `on-air`, `standby`, `idle`, `starting`, `failed` or `stopped`.
    pub state: String,
}

/// One member of the fleet, in the manager's `FleetMembers` (`(sbbuu)`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct MemberRow {
    /// Its node name.
    pub name: String,
    /// Its lease is alive (a drained box that is down is listed, not alive).
    pub alive: bool,
    /// Drained: its channels move to the other boxes.
    pub drained: bool,
    /// Its share of the fleet's channels, relative to the others'.
    pub capacity: u32,
    /// The channels it leads.
    pub leads: u32,
}

/// A channel's seat in the fleet, as its object shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FleetChannel {
    pub path: String,
    pub id: String,
    /// `active`, `standby` or `off` on this box.
    pub role: String,
    /// The node leading it; empty while nobody does.
    pub leader: String,
    /// The leader's fencing token as this box last read it (0: none).
    pub fencing_token: i64,
}

/// The fleet as one nonstopd sees it: the manager's fleet properties and
/// every channel's seat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FleetStatus {
    pub node_name: String,
    /// Its last etcd call succeeded.
    pub etcd_reachable: bool,
    pub members: Vec<MemberRow>,
    pub channels: Vec<FleetChannel>,
}

/// Every property of one channel object, and its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelStatus {
    pub path: String,
    pub id: String,
    pub state: String,
    pub mode: String,
    pub active_input: String,
    pub switches: u64,
    pub inputs: Vec<InputRow>,
    pub outputs: Vec<OutputRow>,
    pub encoders: Vec<EncoderRow>,
    /// Its SRT links (absent from an older nonstopd's answer).
    #[serde(default)]
    pub links: Vec<LinkRow>,
}

/// The manager's properties with every channel's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    pub version: String,
    /// µs since the Unix epoch.
    pub started_at: u64,
    pub channels: Vec<ChannelStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_the_documented_signatures() {
        assert_eq!(InputRow::SIGNATURE.to_string(), "(sssasttt)");
        assert_eq!(OutputRow::SIGNATURE.to_string(), "(ssstt)");
        assert_eq!(EncoderRow::SIGNATURE.to_string(), "(sss)");
        assert_eq!(<Vec<InputRow>>::SIGNATURE.to_string(), "a(sssasttt)");
        assert_eq!(<Vec<MemberRow>>::SIGNATURE.to_string(), "a(sbbuu)");
        assert_eq!(<Vec<LinkRow>>::SIGNATURE.to_string(), "a(ssttttttttas)");
    }

    #[test]
    fn rows_go_through_values_as_structures() {
        let row = InputRow {
            id: "primary".into(),
            uri: "test://ball".into(),
            state: "receiving".into(),
            alarms: vec!["video:black".into()],
            last_seen: 1,
            restarts: 2,
            return_holdoff_ms: 3,
        };
        let v = Value::from(row.clone());
        assert_eq!(v.value_signature().to_string(), "(sssasttt)");
        let owned = OwnedValue::try_from(v).expect("no fds");
        assert_eq!(InputRow::try_from(owned).expect("the same row"), row);
        let tuple: (String, String, String) = ("a".into(), "b".into(), "c".into());
        let e = EncoderRow::try_from(Value::from(tuple)).expect("a tuple is a structure");
        assert_eq!(
            (e.id.as_str(), e.backend.as_str(), e.state.as_str()),
            ("a", "b", "c")
        );
    }

    #[test]
    fn the_json_keys_are_the_property_and_field_names() {
        let s = ChannelStatus {
            path: "/p".into(),
            id: "a".into(),
            state: "on-air".into(),
            mode: "auto".into(),
            active_input: String::new(),
            switches: 0,
            inputs: vec![],
            outputs: vec![OutputRow {
                id: "o".into(),
                uri: "u".into(),
                state: "live".into(),
                bytes: 1,
                restarts: 0,
            }],
            encoders: vec![EncoderRow {
                id: "e".into(),
                backend: "x264".into(),
                state: "on-air".into(),
            }],
            links: vec![LinkRow {
                kind: "output".into(),
                id: "o".into(),
                rtt_us: 1500,
                alarms: vec!["rtt".into()],
                ..Default::default()
            }],
        };
        assert_eq!(
            serde_json::to_string(&s).expect("serializes"),
            concat!(
                r#"{"Path":"/p","Id":"a","State":"on-air","Mode":"auto","ActiveInput":"","Switches":0,"Inputs":[],"Outputs":[{"id":"o","uri":"u","state":"live","bytes":1,"restarts":0}],"Encoders":[{"id":"e","backend":"x264","state":"on-air"}],"#,
                r#""Links":[{"kind":"output","id":"o","rtt_us":1500,"bandwidth_kbps":0,"rate_kbps":0,"packets":0,"lost":0,"retransmitted":0,"dropped":0,"loss_ppm":0,"alarms":["rtt"]}]}"#
            )
        );
        // An older nonstopd's answer, without Links, still reads.
        let old: ChannelStatus = serde_json::from_str(
            r#"{"Path":"/p","Id":"a","State":"on-air","Mode":"auto","ActiveInput":"","Switches":0,"Inputs":[],"Outputs":[],"Encoders":[]}"#,
        )
        .expect("reads");
        assert!(old.links.is_empty());
        let st = Status {
            version: "v".into(),
            started_at: 1,
            channels: vec![],
        };
        assert_eq!(
            serde_json::to_string(&st).expect("serializes"),
            r#"{"Version":"v","StartedAt":1,"Channels":[]}"#
        );
    }

    #[test]
    fn the_fleet_as_json() {
        let f = FleetStatus {
            node_name: "a".into(),
            etcd_reachable: true,
            members: vec![MemberRow {
                name: "a".into(),
                alive: true,
                drained: false,
                capacity: 2,
                leads: 1,
            }],
            channels: vec![FleetChannel {
                path: "/p".into(),
                id: "news".into(),
                role: "active".into(),
                leader: "a".into(),
                fencing_token: 7,
            }],
        };
        assert_eq!(
            serde_json::to_string(&f).expect("serializes"),
            r#"{"NodeName":"a","EtcdReachable":true,"Members":[{"name":"a","alive":true,"drained":false,"capacity":2,"leads":1}],"Channels":[{"Path":"/p","Id":"news","Role":"active","Leader":"a","FencingToken":7}]}"#
        );
        let row = MemberRow::try_from(Value::from(("b".to_owned(), false, true, 1u32, 0u32)))
            .expect("a tuple is a structure");
        assert_eq!(
            (row.name.as_str(), row.alive, row.drained),
            ("b", false, true)
        );
    }
}
