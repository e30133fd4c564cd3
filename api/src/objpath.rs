//! Channel ids in D-Bus object paths, both ways, escaped exactly as
//! systemd's `bus_label_escape` escapes unit names: ASCII letters stay,
//! digits stay except in first place, every other byte becomes `_xx`
//! (lower-case hex); an empty id is `_`.

/// Where channel objects live.
pub const CHANNEL_PREFIX: &str = "/org/nonstop/Supervisor1/channel/";

/// A channel id as an object path element.
pub fn escape(id: &str) -> String {
    if id.is_empty() {
        return "_".into();
    }
    let mut out = String::with_capacity(id.len());
    for (i, b) in id.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push('_');
            out.push(char::from_digit(u32::from(b >> 4), 16).expect("a nibble"));
            out.push(char::from_digit(u32::from(b & 15), 16).expect("a nibble"));
        }
    }
    out
}

/// The object path of channel `id`.
pub fn channel_path(id: &str) -> String {
    format!("{CHANNEL_PREFIX}{}", escape(id))
}

/// The channel id of an object path (reverses [`escape`]: `_xx` is a byte
/// in hex). `None`: not a channel path.
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
    fn escapes_as_systemd_does() {
        // systemd's own examples (busctl tree org.freedesktop.systemd1).
        assert_eq!(escape("dbus.service"), "dbus_2eservice");
        assert_eq!(
            escape("systemd-journald.service"),
            "systemd_2djournald_2eservice"
        );
        // A leading digit is escaped, a later one is not.
        assert_eq!(escape("1tv"), "_31tv");
        assert_eq!(escape("tv1"), "tv1");
        assert_eq!(escape("news-hd"), "news_2dhd");
        assert_eq!(escape("_"), "_5f");
        assert_eq!(escape(""), "_");
        assert_eq!(escape("aé"), "a_c3_a9");
    }

    #[test]
    fn ids_survive_the_round_trip() {
        for id in [
            "news",
            "news-hd_2",
            "",
            "_",
            "_5f",
            "aé",
            "a/b c",
            "1tv",
            "24-7",
        ] {
            assert_eq!(channel_id(&channel_path(id)).as_deref(), Some(id), "{id}");
        }
        assert_eq!(channel_id("/org/nonstop/Supervisor1"), None);
    }
}
