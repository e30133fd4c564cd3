//! The channel config: TOML, validated at load. Every error names the file,
//! line, column and key path and says what was expected; unknown keys are
//! errors. Defaults are documented in docs/config.md.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// A config error a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {path}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Key path, e.g. `channel[0].input[1].uri`.
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "channel", default)]
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub id: Spanned<String>,
    #[serde(default)]
    pub video: VideoFormat,
    #[serde(default)]
    pub audio: AudioFormat,
    /// No data from the input on air for this long: fail over.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// A better input must be healthy this long before the channel returns.
    #[serde(default = "default_return_after", deserialize_with = "duration")]
    pub return_after: Duration,
    #[serde(default)]
    pub watchdog: Watchdog,
    #[serde(default)]
    pub backoff: Backoff,
    #[serde(rename = "input", default)]
    pub inputs: Vec<Input>,
    #[serde(default)]
    pub encoder: Encoder,
    #[serde(rename = "output", default)]
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoFormat {
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    /// Frames per second: `50`, or a fraction such as `"30000/1001"`.
    #[serde(default = "default_framerate", deserialize_with = "framerate")]
    pub framerate: (u32, u32),
}

impl Default for VideoFormat {
    fn default() -> Self {
        Self {
            width: default_width(),
            height: default_height(),
            framerate: default_framerate(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioFormat {
    #[serde(default = "default_rate")]
    pub rate: u32,
    #[serde(default = "default_channels")]
    pub channels: u32,
}

impl Default for AudioFormat {
    fn default() -> Self {
        Self {
            rate: default_rate(),
            channels: default_channels(),
        }
    }
}

/// Content checks on every input, and which of them cause a failover.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watchdog {
    /// Alarms that take an input off air.
    #[serde(default = "default_fail_on")]
    pub fail_on: Vec<Alarm>,
    #[serde(default = "default_stall_timeout", deserialize_with = "duration")]
    pub stall_timeout: Duration,
    #[serde(default = "default_content_timeout", deserialize_with = "duration")]
    pub freeze_timeout: Duration,
    #[serde(default = "default_content_timeout", deserialize_with = "duration")]
    pub black_timeout: Duration,
    #[serde(default = "default_content_timeout", deserialize_with = "duration")]
    pub silence_timeout: Duration,
}

impl Default for Watchdog {
    fn default() -> Self {
        Self {
            fail_on: default_fail_on(),
            stall_timeout: default_stall_timeout(),
            freeze_timeout: default_content_timeout(),
            black_timeout: default_content_timeout(),
            silence_timeout: default_content_timeout(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alarm {
    Stall,
    Freeze,
    Black,
    Silence,
}

impl Alarm {
    /// The name in configs, logs and nonstopwatchdog's `fail-on` flags.
    pub fn name(self) -> &'static str {
        match self {
            Alarm::Stall => "stall",
            Alarm::Freeze => "freeze",
            Alarm::Black => "black",
            Alarm::Silence => "silence",
        }
    }
}

/// Rebuilding a failed input or output: exponential, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    #[serde(default = "default_backoff_initial", deserialize_with = "duration")]
    pub initial: Duration,
    #[serde(default = "default_backoff_max", deserialize_with = "duration")]
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: default_backoff_initial(),
            max: default_backoff_max(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encoder {
    /// Video bitrate in kbit/s.
    #[serde(default = "default_video_bitrate")]
    pub video_bitrate: u32,
    /// Audio bitrate in kbit/s.
    #[serde(default = "default_audio_bitrate")]
    pub audio_bitrate: u32,
    #[serde(default = "default_keyframe_interval", deserialize_with = "duration")]
    pub keyframe_interval: Duration,
    #[serde(default = "default_true")]
    pub low_latency: bool,
    /// Speed against quality, x264's names.
    #[serde(default)]
    pub preset: Preset,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Ultrafast,
    Superfast,
    #[default]
    Veryfast,
    Faster,
    Fast,
    Medium,
    Slow,
    Slower,
    Veryslow,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Ultrafast => "ultrafast",
            Preset::Superfast => "superfast",
            Preset::Veryfast => "veryfast",
            Preset::Faster => "faster",
            Preset::Fast => "fast",
            Preset::Medium => "medium",
            Preset::Slow => "slow",
            Preset::Slower => "slower",
            Preset::Veryslow => "veryslow",
        }
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            video_bitrate: default_video_bitrate(),
            audio_bitrate: default_audio_bitrate(),
            keyframe_interval: default_keyframe_interval(),
            low_latency: true,
            preset: Preset::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub id: Spanned<String>,
    pub uri: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub id: Spanned<String>,
    pub uri: Spanned<String>,
}

fn default_width() -> u32 {
    1280
}
fn default_height() -> u32 {
    720
}
fn default_framerate() -> (u32, u32) {
    (25, 1)
}
fn default_rate() -> u32 {
    48000
}
fn default_channels() -> u32 {
    2
}
fn default_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_return_after() -> Duration {
    Duration::from_secs(5)
}
fn default_fail_on() -> Vec<Alarm> {
    vec![Alarm::Stall]
}
fn default_stall_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_content_timeout() -> Duration {
    Duration::ZERO
}
fn default_backoff_initial() -> Duration {
    Duration::from_millis(500)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(30)
}
fn default_video_bitrate() -> u32 {
    4000
}
fn default_audio_bitrate() -> u32 {
    128
}
fn default_keyframe_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_true() -> bool {
    true
}

/// Durations are strings such as "500ms", "5s" or "1m 30s".
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration \"{s}\" ({e}); expected a duration such as \"500ms\", \"5s\" or \"1m\""
        ))
    })
}

fn framerate<'de, D: Deserializer<'de>>(d: D) -> Result<(u32, u32), D::Error> {
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

/// Line and column (1-based) of byte `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

struct Errors<'a> {
    file: &'a str,
    text: &'a str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn push(&mut self, span: Range<usize>, path: impl fmt::Display, message: impl fmt::Display) {
        let (line, column) = line_col(self.text, span.start);
        self.list.push(ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            path: path.to_string(),
            message: message.to_string(),
        });
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                file: file.clone(),
                line: 0,
                column: 0,
                path: String::new(),
                message: format!("cannot read the config: {e}"),
            }]
        })?;
        Config::parse(&file, &text)
    }

    /// Parses and validates `text`, read from `file`.
    pub fn parse(file: &str, text: &str) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Errors {
            file,
            text,
            list: Vec::new(),
        };
        let de = match toml::Deserializer::parse(text) {
            Ok(de) => de,
            Err(e) => {
                errors.push(e.span().unwrap_or(0..0), "(syntax)", e.message().trim());
                return Err(errors.list);
            }
        };
        let config = match serde_path_to_error::deserialize::<_, Config>(de) {
            Ok(c) => c,
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let path = if path == "." {
                    "(top)".to_owned()
                } else {
                    path
                };
                errors.push(inner.span().unwrap_or(0..0), path, inner.message().trim());
                return Err(errors.list);
            }
        };
        config.validate(&mut errors);
        if errors.list.is_empty() {
            Ok(config)
        } else {
            Err(errors.list)
        }
    }

    fn validate(&self, errors: &mut Errors) {
        if self.channels.is_empty() {
            errors.push(
                0..0,
                "channel",
                "no channel: add at least one [[channel]] table",
            );
        }
        let mut channel_ids = HashSet::new();
        for (c, ch) in self.channels.iter().enumerate() {
            let at = format!("channel[{c}]");
            check_id(
                errors,
                &ch.id,
                &format!("{at}.id"),
                &mut channel_ids,
                "channel",
            );
            if ch.inputs.is_empty() {
                errors.push(
                    ch.id.span(),
                    format!("{at}.input"),
                    "no input: add at least one [[channel.input]] table",
                );
            }
            let mut ids = HashSet::new();
            for (i, input) in ch.inputs.iter().enumerate() {
                let at = format!("{at}.input[{i}]");
                check_id(errors, &input.id, &format!("{at}.id"), &mut ids, "input");
                if let Err(e) = crate::uri::check_input(input.uri.get_ref()) {
                    errors.push(input.uri.span(), format!("{at}.uri"), e);
                }
            }
            let mut ids = HashSet::new();
            for (o, output) in ch.outputs.iter().enumerate() {
                let at = format!("{at}.output[{o}]");
                check_id(errors, &output.id, &format!("{at}.id"), &mut ids, "output");
                if let Err(e) = crate::uri::check_output(output.uri.get_ref()) {
                    errors.push(output.uri.span(), format!("{at}.uri"), e);
                }
            }
        }
    }
}

/// Ids name D-Bus objects and metrics labels: keep them plain.
fn check_id(
    errors: &mut Errors,
    id: &Spanned<String>,
    path: &str,
    seen: &mut HashSet<String>,
    what: &str,
) {
    let s = id.get_ref();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        errors.push(
            id.span(),
            path,
            format!("invalid {what} id \"{s}\"; expected 1 to 64 letters, digits, '-' or '_'"),
        );
    } else if !seen.insert(s.clone()) {
        errors.push(id.span(), path, format!("duplicate {what} id \"{s}\""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[channel]]
id = "news"
video = { width = 1920, height = 1080, framerate = "30000/1001" }
timeout = "750ms"

[[channel.input]]
id = "primary"
uri = "srt://0.0.0.0:9000?mode=listener&passphrase=topsecret1"

[[channel.input]]
id = "slate"
uri = "slate://colour/black"

[[channel.output]]
id = "cdn"
uri = "rtmp://live.example.com/app/streamkey123"
"#;

    fn errors(text: &str) -> Vec<String> {
        Config::parse("ch.toml", text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_config_with_defaults() {
        let c = Config::parse("ch.toml", GOOD).unwrap();
        let ch = &c.channels[0];
        assert_eq!(ch.id.get_ref(), "news");
        assert_eq!(ch.video.framerate, (30000, 1001));
        assert_eq!(ch.timeout, Duration::from_millis(750));
        assert_eq!(ch.return_after, Duration::from_secs(5));
        assert_eq!(
            ch.audio,
            AudioFormat {
                rate: 48000,
                channels: 2
            }
        );
        assert_eq!(ch.watchdog.fail_on, vec![Alarm::Stall]);
        assert_eq!(ch.backoff.max, Duration::from_secs(30));
        assert_eq!(ch.encoder.video_bitrate, 4000);
        assert_eq!(ch.inputs.len(), 2);
    }

    #[test]
    fn unknown_keys_name_the_place_and_what_is_expected() {
        let text = GOOD.replace("timeout = \"750ms\"", "timeuot = \"750ms\"");
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:5:1: channel[0].timeuot: unknown field `timeuot`, expected one of `id`, \
                  `video`, `audio`, `timeout`, `return_after`, `watchdog`, `backoff`, `input`, \
                  `encoder`, `output`"
            ]
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

    #[test]
    fn semantic_errors_are_all_reported_with_positions() {
        let text = GOOD
            .replace("id = \"slate\"", "id = \"primary\"")
            .replace("rtmp://live", "ftp://live");
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:12:6: channel[0].input[1].id: duplicate input id \"primary\"",
                "ch.toml:17:7: channel[0].output[0].uri: unsupported output scheme \"ftp\"; \
                 expected srt, udp, rtmp, rtmps, hls or file",
            ]
        );
    }

    #[test]
    fn syntax_errors_point_at_the_spot() {
        let e = errors("[[channel]]\nid = = \"x\"\n");
        assert_eq!(
            e,
            vec!["ch.toml:2:6: (syntax): extra `=`, expected nothing"]
        );
    }

    #[test]
    fn empty_config_needs_a_channel() {
        assert_eq!(
            errors(""),
            vec!["ch.toml:1:1: channel: no channel: add at least one [[channel]] table"]
        );
    }
}
