//! What this box does with one channel, from one read of the fleet: lead
//! it, take it, hand it over, stand by, or stay off. Pure: the agent
//! carries the decision out against etcd, the channel obeys it.

use super::placement::{self, Want};
use super::state::{Leader, Observed};
use crate::config::{ChannelFleet, FleetMode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep leading with this token.
    Lead { token: i64 },
    /// Nobody leads and this box is the `rank`-th choice: try to take the
    /// leader key (rank 0 at once, the others after a wait, in case the
    /// better ones cannot).
    Take { rank: usize },
    /// This box leads but another should: end, then delete the key.
    HandOver { token: i64, to: String },
    /// The key names this box under a lease it no longer holds (a
    /// previous run of nonstopd): delete it, nobody sends on it.
    ClearStale { token: i64 },
    /// Another box leads; this one is warm.
    Standby { leader: String },
    /// Not run here.
    Off(Why),
    /// Active-active or pinned: sends, with no election.
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Not among the channel's replicas (or not an allowed node).
    NotAReplica,
    /// Its definition here differs from the one the fleet runs.
    ConfigMismatch { ours: String, fleet: String },
}

/// The hash the fleet runs the channel with: the leader's, or else the
/// one most live boxes have (ties: the smallest, so every box agrees).
pub fn fleet_hash(channel: &str, obs: &Observed) -> Option<String> {
    if let Some(l) = obs.leaders.get(channel) {
        return Some(l.record.hash.clone());
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for m in &obs.members {
        if let Some(h) = m.record.channels.get(channel) {
            *counts.entry(h).or_default() += 1;
        }
    }
    let best = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(h, _)| h.to_owned())
}

/// The channel's replicas, leader first, among the live boxes that carry
/// the fleet's definition of it.
pub fn replicas(channel: &str, spec: &ChannelFleet, obs: &Observed) -> Vec<String> {
    let Some(hash) = fleet_hash(channel, obs) else {
        return Vec::new();
    };
    let members: Vec<placement::Member> = obs
        .members
        .iter()
        .filter(|m| m.record.channels.get(channel) == Some(&hash))
        .map(|m| placement::Member {
            name: m.name.clone(),
            capacity: m.record.capacity.max(1),
            drained: m.drained,
        })
        .collect();
    let allowed = spec.node_names();
    let preferred = spec.preferred.as_ref().map(|p| p.get_ref().as_str());
    let want = Want {
        channel,
        replicas: spec.replicas,
        allowed: &allowed,
        preferred,
    };
    let leader = obs.leaders.get(channel).map(|l| l.record.node.as_str());
    placement::place(&want, &members, leader)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// This box's decision for `channel` (its definition hash here `ours`),
/// holding lease `lease`.
pub fn decide(
    me: &str,
    lease: i64,
    channel: &str,
    ours: &str,
    spec: &ChannelFleet,
    obs: &Observed,
) -> Decision {
    if spec.mode != FleetMode::ActivePassive {
        let mismatch = fleet_hash(channel, obs).filter(|h| h != ours);
        if let Some(fleet) = mismatch {
            return Decision::Off(Why::ConfigMismatch {
                ours: ours.to_owned(),
                fleet,
            });
        }
        let on = spec.mode == FleetMode::ActiveActive && spec.nodes.is_empty()
            || spec.nodes.iter().any(|n| n.get_ref() == me);
        return if on {
            Decision::Always
        } else {
            Decision::Off(Why::NotAReplica)
        };
    }
    let leader: Option<&Leader> = obs.leaders.get(channel);
    if let Some(l) = leader {
        if l.record.node == me && l.lease != lease {
            return Decision::ClearStale { token: l.token };
        }
    }
    match fleet_hash(channel, obs) {
        Some(fleet) if fleet != ours => {
            return Decision::Off(Why::ConfigMismatch {
                ours: ours.to_owned(),
                fleet,
            })
        }
        _ => {}
    }
    let order = replicas(channel, spec, obs);
    let rank = order.iter().position(|n| n == me);
    match (leader, rank) {
        (Some(l), _) if l.record.node == me => match order.first() {
            Some(first) if first != me => Decision::HandOver {
                token: l.token,
                to: first.clone(),
            },
            _ => Decision::Lead { token: l.token },
        },
        (Some(l), Some(_)) => Decision::Standby {
            leader: l.record.node.clone(),
        },
        // A scheduled handover names the box that takes the channel; the
        // others stand by for it.
        (None, Some(rank)) => match obs.handovers.get(channel) {
            Some(h) if h.to == me => Decision::Take { rank: 0 },
            Some(h) if h.from != me && order.contains(&h.to) => Decision::Standby {
                leader: h.to.clone(),
            },
            _ => Decision::Take { rank },
        },
        (_, None) => Decision::Off(Why::NotAReplica),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::state::{LeaderRecord, Member, MemberRecord};
    use toml::Spanned;

    fn member(name: &str, hash: &str, drained: bool) -> Member {
        Member {
            name: name.into(),
            record: MemberRecord {
                capacity: 1,
                channels: [("news".to_owned(), hash.to_owned())].into(),
                ..MemberRecord::default()
            },
            drained,
            lease: 0,
        }
    }

    fn obs(members: Vec<Member>, leader: Option<(&str, i64, i64)>) -> Observed {
        let mut o = Observed {
            members,
            ..Observed::default()
        };
        if let Some((node, token, lease)) = leader {
            o.leaders.insert(
                "news".into(),
                Leader {
                    record: LeaderRecord {
                        node: node.into(),
                        hash: "h".into(),
                    },
                    token,
                    lease,
                },
            );
        }
        o
    }

    fn spec() -> ChannelFleet {
        ChannelFleet::default()
    }

    #[test]
    fn with_no_leader_the_first_replica_takes_at_once_and_the_next_waits() {
        let o = obs(vec![member("a", "h", false), member("b", "h", false)], None);
        let order = replicas("news", &spec(), &o);
        assert_eq!(order.len(), 2);
        let first = decide(&order[0], 1, "news", "h", &spec(), &o);
        let second = decide(&order[1], 2, "news", "h", &spec(), &o);
        assert_eq!(first, Decision::Take { rank: 0 });
        assert_eq!(second, Decision::Take { rank: 1 });
    }

    #[test]
    fn a_scheduled_handover_names_the_taker_and_the_others_stand_by_for_it() {
        let mut three = spec();
        three.replicas = 3;
        let mut o = obs(
            vec![
                member("a", "h", true),
                member("b", "h", false),
                member("c", "h", false),
            ],
            None,
        );
        let order = replicas("news", &three, &o);
        // The one handed to need not be the first by rank.
        let (first, second) = (order[0].clone(), order[1].clone());
        o.handovers.insert(
            "news".into(),
            crate::fleet::state::Handover {
                from: "a".into(),
                to: second.clone(),
                at: 1,
            },
        );
        assert_eq!(
            decide(&second, 1, "news", "h", &three, &o),
            Decision::Take { rank: 0 }
        );
        assert_eq!(
            decide(&first, 2, "news", "h", &three, &o),
            Decision::Standby {
                leader: second.clone()
            }
        );
        // The old leader itself goes by its rank (its handover is under way).
        let rank_a = order.iter().position(|n| n == "a").unwrap();
        assert_eq!(
            decide("a", 3, "news", "h", &three, &o),
            Decision::Take { rank: rank_a }
        );
        // A handover to a box that is no replica (gone): ranks as usual.
        o.handovers.get_mut("news").unwrap().to = "gone".into();
        assert_eq!(
            decide(&first, 2, "news", "h", &three, &o),
            Decision::Take { rank: 0 }
        );
    }

    #[test]
    fn the_leader_leads_and_the_other_stands_by() {
        let o = obs(
            vec![member("a", "h", false), member("b", "h", false)],
            Some(("b", 40, 7)),
        );
        assert_eq!(
            decide("b", 7, "news", "h", &spec(), &o),
            Decision::Lead { token: 40 }
        );
        assert_eq!(
            decide("a", 9, "news", "h", &spec(), &o),
            Decision::Standby { leader: "b".into() }
        );
    }

    #[test]
    fn a_drained_leader_hands_over_and_a_lone_drained_one_keeps_it() {
        let o = obs(
            vec![member("a", "h", false), member("b", "h", true)],
            Some(("b", 40, 7)),
        );
        assert_eq!(
            decide("b", 7, "news", "h", &spec(), &o),
            Decision::HandOver {
                token: 40,
                to: "a".into()
            }
        );
        let alone = obs(vec![member("b", "h", true)], Some(("b", 40, 7)));
        assert_eq!(
            decide("b", 7, "news", "h", &spec(), &alone),
            Decision::Lead { token: 40 }
        );
    }

    #[test]
    fn a_returning_box_does_not_take_back_unless_preferred() {
        let o = obs(
            vec![member("a", "h", false), member("b", "h", false)],
            Some(("b", 40, 7)),
        );
        for who in ["a", "b"] {
            let mut s = spec();
            s.preferred = Some(Spanned::new(0..0, who.to_owned()));
            let d = decide("b", 7, "news", "h", &s, &o);
            if who == "a" {
                assert_eq!(
                    d,
                    Decision::HandOver {
                        token: 40,
                        to: "a".into()
                    }
                );
            } else {
                assert_eq!(d, Decision::Lead { token: 40 });
            }
        }
    }

    #[test]
    fn a_different_definition_never_takes_over() {
        let o = obs(
            vec![member("a", "h", false), member("b", "x", false)],
            Some(("a", 40, 7)),
        );
        assert_eq!(
            decide("b", 9, "news", "x", &spec(), &o),
            Decision::Off(Why::ConfigMismatch {
                ours: "x".into(),
                fleet: "h".into()
            })
        );
        // With no leader, the definition most boxes carry wins (ties: the
        // smallest hash), so every box reaches the same verdict.
        let o = obs(
            vec![
                member("a", "h", false),
                member("b", "x", false),
                member("c", "x", false),
            ],
            None,
        );
        assert_eq!(fleet_hash("news", &o).as_deref(), Some("x"));
        assert!(matches!(
            decide("a", 1, "news", "h", &spec(), &o),
            Decision::Off(_)
        ));
        assert!(!replicas("news", &spec(), &o).contains(&"a".to_owned()));
    }

    #[test]
    fn a_key_of_this_node_under_an_old_lease_is_cleared() {
        let o = obs(vec![member("a", "h", false)], Some(("a", 40, 5)));
        assert_eq!(
            decide("a", 6, "news", "h", &spec(), &o),
            Decision::ClearStale { token: 40 }
        );
    }

    #[test]
    fn beyond_the_replica_count_and_outside_the_allowed_nodes_a_box_is_off() {
        let o = obs(
            vec![
                member("a", "h", false),
                member("b", "h", false),
                member("c", "h", false),
            ],
            None,
        );
        let order = replicas("news", &spec(), &o);
        let third = ["a", "b", "c"]
            .into_iter()
            .find(|n| !order.iter().any(|o| o == n))
            .unwrap();
        assert_eq!(
            decide(third, 1, "news", "h", &spec(), &o),
            Decision::Off(Why::NotAReplica)
        );
        let mut s = spec();
        s.nodes = vec![Spanned::new(0..0, "c".to_owned())];
        assert_eq!(
            decide("a", 1, "news", "h", &s, &o),
            Decision::Off(Why::NotAReplica)
        );
        assert_eq!(
            decide("c", 1, "news", "h", &s, &o),
            Decision::Take { rank: 0 }
        );
    }

    #[test]
    fn active_active_and_pinned_channels_send_where_they_run() {
        let o = obs(vec![member("a", "h", false), member("b", "h", false)], None);
        let mut s = spec();
        s.mode = FleetMode::ActiveActive;
        assert_eq!(decide("a", 1, "news", "h", &s, &o), Decision::Always);
        s.mode = FleetMode::Pinned;
        s.nodes = vec![Spanned::new(0..0, "b".to_owned())];
        assert_eq!(
            decide("a", 1, "news", "h", &s, &o),
            Decision::Off(Why::NotAReplica)
        );
        assert_eq!(decide("b", 1, "news", "h", &s, &o), Decision::Always);
    }
}
