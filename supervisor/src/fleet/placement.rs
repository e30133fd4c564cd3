//! Which boxes run a channel, computed alike by every box from the live
//! membership, with no scheduler: rendezvous (highest random weight)
//! hashing weighted by capacity. Each (node, channel) pair gets a score
//! from a hash fixed across boxes and builds; a channel's nodes are the
//! highest scores among those that may take it. A node joining or leaving
//! moves only the channels whose best node changes: those it would now
//! win, or those it held.
//!
//! Pure: the fleet's leadership code asks, etcd's election decides.

/// A member of the fleet as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Relative share of channels (≥ 1): a node of capacity 2 gets about
    /// twice the channels of a node of capacity 1.
    pub capacity: u32,
    /// Drained by an operator: it keeps no channel it need not keep.
    pub drained: bool,
}

/// What a channel asks of placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want<'a> {
    pub channel: &'a str,
    /// Boxes that run it: the leader and its standbys (≥ 1).
    pub replicas: usize,
    /// The nodes it may run on; empty: any.
    pub allowed: &'a [String],
    /// A node it returns to whenever that node can take it.
    pub preferred: Option<&'a str>,
}

/// FNV-1a, then splitmix64's finalizer: the same on every box and every
/// build (std's hasher is seeded per process), and well spread.
fn hash(node: &str, channel: &str) -> u64 {
    mix(node.bytes().chain([0xff]).chain(channel.bytes()))
}

/// The same hash of one string (definition hashes).
pub fn stable_hash(s: &str) -> u64 {
    mix(s.bytes())
}

fn mix(bytes: impl Iterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The weighted rendezvous score: capacity / -ln(u), u uniform in (0, 1)
/// from the hash, so a node's chance to win is its share of capacity.
fn score(node: &Member, channel: &str) -> f64 {
    let u = ((hash(&node.name, channel) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(node.capacity.max(1)) / -u.ln()
}

fn may_take(m: &Member, want: &Want<'_>) -> bool {
    want.allowed.is_empty() || want.allowed.contains(&m.name)
}

/// The nodes that may run the channel, best first (ties by name, so the
/// order never depends on the order of `members`). Drained nodes come
/// last: they take a channel only when nothing else can.
pub fn rank<'a>(want: &Want<'_>, members: &'a [Member]) -> Vec<&'a Member> {
    let mut v: Vec<(&Member, f64)> = members
        .iter()
        .filter(|m| may_take(m, want))
        .map(|m| (m, score(m, want.channel)))
        .collect();
    v.sort_by(|(a, sa), (b, sb)| {
        a.drained
            .cmp(&b.drained)
            .then(sb.total_cmp(sa))
            .then_with(|| a.name.cmp(&b.name))
    });
    v.into_iter().map(|(m, _)| m).collect()
}

/// The channel's nodes, the leader first: the one leading now keeps it
/// while it may (a returning node does not take its channels back, so
/// nothing flaps), unless the channel prefers another node that can take
/// it, or the leader is drained and an undrained node can.
pub fn place<'a>(want: &Want<'_>, members: &'a [Member], leader: Option<&str>) -> Vec<&'a str> {
    let ranked = rank(want, members);
    let first = |pick: &dyn Fn(&Member) -> bool| ranked.iter().copied().find(|m| pick(m));
    // A drained leader hands over only if an undrained node can take it.
    let handover = ranked.iter().any(|m| !m.drained);
    let chosen = want
        .preferred
        .and_then(|p| first(&|m| m.name == p && !m.drained))
        .or_else(|| leader.and_then(|l| first(&|m| m.name == l && !(m.drained && handover))))
        .or_else(|| ranked.first().copied());
    let Some(chosen) = chosen else {
        return Vec::new();
    };
    std::iter::once(chosen)
        .chain(ranked.iter().copied().filter(|m| m.name != chosen.name))
        .take(want.replicas.max(1))
        .map(|m| m.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[(&str, u32)]) -> Vec<Member> {
        names
            .iter()
            .map(|(n, c)| Member {
                name: (*n).to_owned(),
                capacity: *c,
                drained: false,
            })
            .collect()
    }

    fn want(channel: &str) -> Want<'_> {
        Want {
            channel,
            replicas: 2,
            allowed: &[],
            preferred: None,
        }
    }

    fn channels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("ch{i}")).collect()
    }

    /// Leader per channel with no leader yet.
    fn leaders(m: &[Member], chs: &[String]) -> Vec<String> {
        chs.iter()
            .map(|c| place(&want(c), m, None)[0].to_owned())
            .collect()
    }

    #[test]
    fn the_hash_is_fixed_across_builds() {
        // Every box must agree: a change of these values moves channels
        // between boxes running different versions.
        assert_eq!(hash("box-a", "news"), hash("box-a", "news"));
        assert_ne!(hash("box-a", "news"), hash("box-b", "news"));
        assert_ne!(hash("ab", "c"), hash("a", "bc"));
        assert_eq!(hash("box-a", "news"), 0xf083_d26d_9780_f567);
    }

    #[test]
    fn the_order_of_members_changes_nothing() {
        let m = members(&[("a", 1), ("b", 2), ("c", 1), ("d", 1)]);
        let mut r = m.clone();
        r.reverse();
        for c in channels(200) {
            assert_eq!(place(&want(&c), &m, None), place(&want(&c), &r, None));
        }
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_channels() {
        let all = members(&[("a", 1), ("b", 1), ("c", 1), ("d", 1), ("e", 1)]);
        let chs = channels(1000);
        let before = leaders(&all, &chs);
        let without_c: Vec<Member> = all.iter().filter(|m| m.name != "c").cloned().collect();
        let after = leaders(&without_c, &chs);
        for (b, a) in before.iter().zip(&after) {
            if b != "c" {
                assert_eq!(a, b, "a channel not on c moved");
            }
        }
        let on_c = before.iter().filter(|l| *l == "c").count();
        assert!((120..=280).contains(&on_c), "c led {on_c} of 1000");
    }

    #[test]
    fn a_node_joining_takes_about_its_share_and_only_for_itself() {
        let four = members(&[("a", 1), ("b", 1), ("c", 1), ("d", 1)]);
        let mut five = four.clone();
        five.extend(members(&[("e", 1)]));
        let chs = channels(1000);
        let before = leaders(&four, &chs);
        let after = leaders(&five, &chs);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if a != b {
                assert_eq!(a, "e", "a channel moved to an old node");
                moved += 1;
            }
        }
        assert!((120..=280).contains(&moved), "{moved} of 1000 moved to e");
    }

    #[test]
    fn capacity_weights_the_share() {
        let m = members(&[("small", 1), ("big", 3)]);
        let l = leaders(&m, &channels(4000));
        let big = l.iter().filter(|n| *n == "big").count();
        assert!((2800..=3200).contains(&big), "big led {big} of 4000");
    }

    #[test]
    fn the_leader_keeps_its_channel_when_a_better_node_returns() {
        let m = members(&[("a", 1), ("b", 1), ("c", 1)]);
        for c in channels(50) {
            let w = want(&c);
            let best = place(&w, &m, None)[0];
            let other = m.iter().find(|x| x.name != best).unwrap().name.as_str();
            let placed = place(&w, &m, Some(other));
            assert_eq!(placed[0], other, "{c}: the leader was moved to {best}");
            assert_eq!(placed.len(), 2);
            assert_ne!(placed[1], other);
        }
    }

    #[test]
    fn a_preferred_node_takes_the_channel_back() {
        let m = members(&[("a", 1), ("b", 1), ("c", 1)]);
        let w = Want {
            preferred: Some("c"),
            ..want("news")
        };
        assert_eq!(place(&w, &m, Some("a"))[0], "c");
        let without_c: Vec<Member> = m.iter().filter(|x| x.name != "c").cloned().collect();
        assert_ne!(place(&w, &without_c, Some("a"))[0], "c");
        assert_eq!(place(&w, &without_c, Some("a"))[0], "a");
    }

    #[test]
    fn drained_nodes_give_their_channels_away_unless_nothing_else_can() {
        let mut m = members(&[("a", 1), ("b", 1)]);
        m[0].drained = true;
        for c in channels(50) {
            let placed = place(&want(&c), &m, Some("a"));
            assert_eq!(placed, ["b", "a"], "{c}: drained a is only a standby");
        }
        m[1].drained = true;
        assert_eq!(
            place(&want("x"), &m, Some("a"))[0],
            "a",
            "all drained: keep it"
        );
    }

    #[test]
    fn only_allowed_nodes_and_no_more_than_there_are() {
        let m = members(&[("a", 1), ("b", 1), ("c", 1)]);
        let allowed = vec!["b".to_owned(), "z".to_owned()];
        let w = Want {
            allowed: &allowed,
            replicas: 3,
            ..want("news")
        };
        assert_eq!(place(&w, &m, Some("a")), ["b"]);
        let none = vec!["z".to_owned()];
        let w = Want {
            allowed: &none,
            ..want("news")
        };
        assert!(place(&w, &m, None).is_empty());
        assert!(place(&want("news"), &[], None).is_empty());
    }
}
