//! udp:// options: a multicast output's TTL, interface and loop; an
//! input's interface and source-specific multicast (docs/config.md#udp-multicast).

use url::Url;

use super::{parse_bool, OutputKind};

/// A udp:// input's options, taken out of the URI udpsrc gets:
/// `udp://GROUP:PORT?iface=NAME&source=ADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpInput {
    pub host: String,
    pub port: u16,
    /// The interface to join the multicast group on (udpsrc's
    /// `multicast-iface`); the route decides without it.
    pub iface: Option<String>,
    /// Source-specific multicast: the group's packets from this sender
    /// only.
    pub source: Option<std::net::IpAddr>,
}

/// `host` as a multicast group address, or an error saying that `what`
/// needs one.
fn multicast_group(host: &str, what: &str) -> Result<std::net::IpAddr, String> {
    match host.parse::<std::net::IpAddr>() {
        Ok(a) if a.is_multicast() => Ok(a),
        _ => Err(format!(
            "{what} applies to a multicast group (224.0.0.0/4, ff00::/8); {host} is not one"
        )),
    }
}

/// A network interface name as Linux takes it (`eth1`, `enp3s0`, `vlan.42`).
fn iface_name(what: &str, v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v != "."
        && v != ".."
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "{what} \"{v}\" is not a network interface name (1 to 15 letters, digits, '.', '-', '_', e.g. eth1)"
        ))
    }
}

fn host_of(u: &Url) -> String {
    u.host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned()
}

/// A udp:// input's options.
pub(super) fn input(u: &Url) -> Result<UdpInput, String> {
    let host = host_of(u);
    let mut opts = UdpInput {
        host: host.clone(),
        port: u.port().unwrap_or_default(),
        iface: None,
        source: None,
    };
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "iface" => {
                multicast_group(&host, "udp iface")?;
                opts.iface = Some(iface_name("udp iface", &v)?);
            }
            "source" => {
                let group = multicast_group(&host, "udp source (source-specific multicast)")?;
                let source = v
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .filter(|a| !a.is_multicast() && !a.is_unspecified())
                    .ok_or_else(|| {
                        format!("udp source \"{v}\" must be the sender's unicast IP address, e.g. 10.0.0.5")
                    })?;
                if source.is_ipv4() != group.is_ipv4() {
                    return Err(format!(
                        "udp source {source} and group {group} are not of the same IP version"
                    ));
                }
                opts.source = Some(source);
            }
            other => {
                return Err(format!(
                    "unknown udp:// input option \"{other}\"; expected iface or source"
                ))
            }
        }
    }
    Ok(opts)
}

/// A udp:// output: `udp://HOST:PORT?ttl=N&iface=NAME&loop=BOOL`.
pub(super) fn output(u: &Url) -> Result<OutputKind, String> {
    let host = host_of(u);
    let (mut ttl, mut iface, mut multicast_loop) = (None, None, None);
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "ttl" => {
                ttl =
                    Some(v.parse::<u8>().ok().filter(|t| *t >= 1).ok_or_else(|| {
                        format!("udp ttl \"{v}\" must be a number of hops, 1 to 255")
                    })?)
            }
            "iface" => {
                multicast_group(&host, "udp iface")?;
                iface = Some(iface_name("udp iface", &v)?);
            }
            "loop" => {
                multicast_group(&host, "udp loop")?;
                multicast_loop = Some(parse_bool("udp loop", &v)?);
            }
            other => {
                return Err(format!(
                    "unknown udp:// output option \"{other}\"; expected ttl, iface or loop"
                ))
            }
        }
    }
    Ok(OutputKind::Udp {
        host,
        port: u.port().unwrap_or_default(),
        ttl,
        iface,
        multicast_loop,
    })
}
