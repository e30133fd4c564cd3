//! The SRT options of a listener input's URI: what srtin applies to the
//! listening socket and checks of each caller.

use std::net::{SocketAddr, ToSocketAddrs};

use url::Url;

/// The SRT options of a listener input's URI that libsrt applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub addr: SocketAddr,
    pub latency_ms: Option<i32>,
    pub passphrase: Option<String>,
    pub pbkeylen: Option<i32>,
    /// Callers must present this stream id.
    pub streamid: Option<String>,
}

impl Options {
    /// From an input URI already checked by [`crate::uri::input_kind`].
    pub fn from_uri(uri: &str) -> anyhow::Result<Options> {
        let u = Url::parse(uri)?;
        let host = u.host_str().unwrap_or("0.0.0.0").trim_matches(['[', ']']);
        let port = u
            .port()
            .ok_or_else(|| anyhow::anyhow!("srt listener without a port"))?;
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow::anyhow!("srt listener host {host} has no address"))?;
        let mut o = Options {
            addr,
            latency_ms: None,
            passphrase: None,
            pbkeylen: None,
            streamid: None,
        };
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "latency" => o.latency_ms = v.parse().ok(),
                "passphrase" => o.passphrase = Some(v.into_owned()),
                "pbkeylen" => o.pbkeylen = v.parse().ok().filter(|n| *n != 0),
                "streamid" => o.streamid = Some(v.into_owned()),
                _ => {}
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_a_listener_uri() {
        let o = Options::from_uri(
            "srt://127.0.0.1:9000?mode=listener&latency=200&passphrase=topsecret1&pbkeylen=32&streamid=live%2Fa",
        )
        .unwrap();
        assert_eq!(o.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(o.latency_ms, Some(200));
        assert_eq!(o.passphrase.as_deref(), Some("topsecret1"));
        assert_eq!(o.pbkeylen, Some(32));
        assert_eq!(o.streamid.as_deref(), Some("live/a"));
        let bare = Options::from_uri("srt://0.0.0.0:9001?mode=listener&pbkeylen=0").unwrap();
        assert_eq!(bare.pbkeylen, None);
        assert_eq!(bare.passphrase, None);
    }
}
