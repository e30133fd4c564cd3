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

/// A number in `lo..=hi` (an integer is taken as its float).
fn bounded<'de, D: Deserializer<'de>>(d: D, lo: f64, hi: f64, what: &str) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Float(f64),
        Int(i64),
    }
    let v = match Num::deserialize(d)? {
        Num::Float(f) => f,
        Num::Int(i) => i as f64,
    };
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is out of range: {what} from {lo} to {hi}"
        )))
    }
}

/// A share, 0 to 1 (black threshold and ratio).
pub(super) fn share<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    bounded(d, 0.0, 1.0, "a share")
}

/// A mean luma difference in 8-bit levels (freeze tolerance).
pub(super) fn luma<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    bounded(d, 0.0, 255.0, "8-bit luma levels")
}

/// An RMS level in dBFS (silence threshold).
pub(super) fn dbfs<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    bounded(d, -200.0, 0.0, "dBFS")
}

/// A percentage, 0 to 100 (SRT loss bound).
pub(super) fn percent<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    bounded(d, 0.0, 100.0, "a percentage")
}

/// A loudness in LUFS (loud and quiet thresholds).
pub(super) fn lufs<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    bounded(d, -70.0, 0.0, "LUFS")
}

/// A true peak level in dBTP.
pub(super) fn dbtp<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    bounded(d, -60.0, 12.0, "dBTP")
}

/// A change of loudness in LU (jump threshold).
pub(super) fn lu<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    bounded(d, 1.0, 60.0, "LU")
}

#[cfg(test)]
mod tests {
    use crate::config::fixtures::{errors, GOOD};

    #[test]
    fn thresholds_out_of_range_say_the_range() {
        let wd = |kv: &str| {
            GOOD.replace(
                "timeout = \"750ms\"",
                &format!("timeout = \"750ms\"\n[channel.watchdog]\n{kv}"),
            )
        };
        assert_eq!(
            errors(&wd("black_threshold = 1.5")),
            ["ch.toml:7:19: channel[0].watchdog.black_threshold: 1.5 is out of range: a share from 0 to 1"]
        );
        assert_eq!(
            errors(&wd("loud_threshold = -80")),
            ["ch.toml:7:18: channel[0].watchdog.loud_threshold: -80 is out of range: LUFS from -70 to 0"]
        );
        assert_eq!(
            errors(&wd("jump_threshold = 0.5")),
            ["ch.toml:7:18: channel[0].watchdog.jump_threshold: 0.5 is out of range: LU from 1 to 60"]
        );
        assert_eq!(
            errors(&wd("silence_threshold = 3")),
            ["ch.toml:7:21: channel[0].watchdog.silence_threshold: 3 is out of range: dBFS from -200 to 0"]
        );
        assert_eq!(
            errors(&wd("freeze_tolerance = -1")),
            ["ch.toml:7:20: channel[0].watchdog.freeze_tolerance: -1 is out of range: 8-bit luma levels from 0 to 255"]
        );
        assert!(errors(&wd("black_ratio = \"high\""))[0].contains("black_ratio"));
        let input = GOOD.replace(
            "uri = \"slate://colour/black\"",
            "uri = \"slate://colour/black\"\nfail_on = [\"stall\", \"hum\"]",
        );
        assert_eq!(
            errors(&input),
            ["ch.toml:14:21: channel[0].input[1].fail_on[1]: unknown variant `hum`, expected one of `stall`, `freeze`, `black`, `silence`, `loud`, `quiet`, `true-peak`, `jump`, `no-captions`"]
        );
    }

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
