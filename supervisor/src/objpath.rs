//! Channel ids in D-Bus object paths, both ways: nonstopd escapes an id
//! into a path element (`control::channel_path`), nonstopctl reads the
//! paths it gets from the bus back into ids. One file for both sides so
//! they cannot drift apart; nonstopctl includes it by path, as it uses
//! nothing else of the daemon.

/// Where channel objects live.
pub const CHANNEL_PREFIX: &str = "/org/nonstop/Supervisor1/channel/";

/// A channel id as an object path element, the way systemd escapes unit
/// names: letters and digits stay, anything else becomes `_xx` (hex).
pub fn escape(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The channel id of an object path (reverses `escape`: `_xx` is a byte
/// in hex). None: not a channel path.
pub fn channel_id(path: &str) -> Option<String> {
    let esc = path.strip_prefix(CHANNEL_PREFIX)?;
    if esc == "_" {
        return Some(String::new());
    }
    let b = esc.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'_' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(byte) = hex {
            bytes.push(byte);
            i += 3;
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_the_round_trip() {
        for id in ["news", "news-hd_2", "", "_", "_5f", "aé", "a/b c"] {
            let path = format!("{CHANNEL_PREFIX}{}", escape(id));
            assert_eq!(channel_id(&path).as_deref(), Some(id), "{path}");
        }
    }
}
