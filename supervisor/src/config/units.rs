//! Values with units as configs write them: durations (read from TOML,
//! and shown the same way by logs and `check`) and framerates.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration as configs write it and logs and `check` show it
/// (`1s 500ms`), to the millisecond.
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// Durations are strings such as "500ms", "5s" or "1m 30s".
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration \"{s}\" ({e}); expected a duration such as \"500ms\", \"5s\" or \"1m\""
        ))
    })
}

pub(super) fn framerate<'de, D: Deserializer<'de>>(d: D) -> Result<(u32, u32), D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Rate {
        Whole(u32),
        Text(String),
    }
    let bad = |s: &str| {
        serde::de::Error::custom(format!(
            "invalid framerate {s}; expected frames per second such as 50 or \"30000/1001\""
        ))
    };
    match Rate::deserialize(d)? {
        Rate::Whole(n) if n > 0 => Ok((n, 1)),
        Rate::Whole(n) => Err(bad(&n.to_string())),
        Rate::Text(s) => {
            let (n, den) = s.split_once('/').unwrap_or((s.as_str(), "1"));
            match (n.trim().parse::<u32>(), den.trim().parse::<u32>()) {
                (Ok(n), Ok(den)) if n > 0 && den > 0 => Ok((n, den)),
                _ => Err(bad(&format!("\"{s}\""))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::fixtures::{errors, GOOD};

    #[test]
    fn bad_values_say_what_is_expected() {
        let text = GOOD.replace("\"750ms\"", "\"fast\"");
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:5:11: channel[0].timeout: invalid duration \"fast\" (expected number at \
                  0); expected a duration such as \"500ms\", \"5s\" or \"1m\""
            ]
        );
        let text = GOOD.replace("\"30000/1001\"", "\"fast\"");
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:4:52: channel[0].video.framerate: invalid framerate \"fast\"; expected \
                  frames per second such as 50 or \"30000/1001\""
            ]
        );
    }
}
