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

/// A duration as configs write it and logs and `check` show it
/// (`1s 500ms`), to the millisecond.
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

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
    /// `[[alert]]`: where alerts go besides the log and D-Bus.
    #[serde(rename = "alert", default)]
    pub alerts: Vec<AlertSink>,
    /// Where it was read from, to place later errors (file, text).
    #[serde(skip)]
    source: (String, String),
}

impl Config {
    /// An error at `span` of the config text (for checks made after
    /// loading, such as encoder probing).
    pub fn error_at(
        &self,
        span: Range<usize>,
        path: impl fmt::Display,
        message: impl fmt::Display,
    ) -> ConfigError {
        let mut errors = Errors {
            file: &self.source.0,
            text: &self.source.1,
            list: Vec::new(),
        };
        errors.push(span, path, message);
        errors.list.remove(0)
    }
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
    /// Any interruption longer than this (beyond a frame) restarts the
    /// clean window that `return_after` counts.
    #[serde(default = "default_clean_gap", deserialize_with = "duration")]
    pub clean_gap: Duration,
    /// Failovers away from one input within this long of each other double
    /// its hold-off before a return.
    #[serde(default = "default_flap_window", deserialize_with = "duration")]
    pub flap_window: Duration,
    /// The doubled hold-off never exceeds this.
    #[serde(default = "default_max_return_after", deserialize_with = "duration")]
    pub max_return_after: Duration,
    /// At start, how long a lower input waits for a better one that has
    /// not delivered yet.
    #[serde(default = "default_startup_grace", deserialize_with = "duration")]
    pub startup_grace: Duration,
    #[serde(default)]
    pub watchdog: Watchdog,
    #[serde(default)]
    pub backoff: Backoff,
    #[serde(rename = "input", default)]
    pub inputs: Vec<Input>,
    /// `[channel.encoder]` (one) or `[[channel.encoder]]` (a ladder).
    #[serde(
        rename = "encoder",
        default = "default_encoders",
        deserialize_with = "one_or_many"
    )]
    pub encoders: Vec<Encoder>,
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
    /// AAC bitrate in kbit/s: one audio encoder per channel, shared by
    /// every rendition.
    #[serde(default = "default_audio_bitrate")]
    pub bitrate: u32,
}

impl Default for AudioFormat {
    fn default() -> Self {
        Self {
            rate: default_rate(),
            channels: default_channels(),
            bitrate: default_audio_bitrate(),
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

/// An alert destination. Only webhooks for now: a POST of a JSON object
/// per alert (see docs/monitoring.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSink {
    /// `webhook`.
    #[serde(rename = "type")]
    pub kind: AlertKind,
    /// `http://` or `https://`.
    pub url: Spanned<String>,
    /// Extra HTTP headers, e.g. `{ Authorization = "Bearer …" }`.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Spanned<String>>,
    /// One attempt may take this long.
    #[serde(default = "default_alert_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// An output down this long is alerted (a quick restart is not).
    #[serde(default = "default_output_grace", deserialize_with = "duration")]
    pub output_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Webhook,
}

fn default_alert_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_output_grace() -> Duration {
    Duration::from_secs(10)
}

/// One video encoder (one rendition of the channel), possibly redundant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encoder {
    /// Names the rendition for outputs; default `video` (needed when a
    /// channel has several encoders).
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    #[serde(default)]
    pub codec: Codec,
    /// `auto` or an explicit backend.
    #[serde(default)]
    pub backend: Option<Spanned<Backend>>,
    /// An explicit backend that is missing or cannot open falls back to
    /// the `auto` order instead of failing.
    #[serde(default)]
    pub fallback: bool,
    /// Picture size of this rendition; default: the channel's.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Video bitrate in kbit/s.
    #[serde(default = "default_video_bitrate")]
    pub video_bitrate: u32,
    #[serde(default)]
    pub rate_control: RateControl,
    #[serde(default = "default_keyframe_interval", deserialize_with = "duration")]
    pub keyframe_interval: Duration,
    #[serde(default)]
    pub bframes: u32,
    /// Default: `high` (H.264), `main` (H.265).
    #[serde(default)]
    pub profile: Option<Spanned<Profile>>,
    #[serde(default = "default_true")]
    pub low_latency: bool,
    /// Speed against quality, on x264's scale; mapped onto each backend.
    #[serde(default)]
    pub preset: Preset,
    #[serde(default)]
    pub redundancy: Redundancy,
    /// The second encoder's backend; default: the codec's software one.
    #[serde(default)]
    pub backup_backend: Option<Spanned<Backend>>,
    /// An encoder with no output for this long has failed.
    #[serde(default = "default_encoder_stall", deserialize_with = "duration")]
    pub stall_timeout: Duration,
    /// A rebuilt encoder healthy this long becomes the standby again.
    #[serde(default = "default_hold_off", deserialize_with = "duration")]
    pub hold_off: Duration,
    /// Faults to inject, for tests and drills: the same path as real ones.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    #[default]
    H264,
    H265,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Auto,
    Nvenc,
    Va,
    Vaapi,
    Qsv,
    X264,
    X265,
    Openh264,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Nvenc => "nvenc",
            Backend::Va => "va",
            Backend::Vaapi => "vaapi",
            Backend::Qsv => "qsv",
            Backend::X264 => "x264",
            Backend::X265 => "x265",
            Backend::Openh264 => "openh264",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateControl {
    #[default]
    Cbr,
    Vbr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Baseline,
    Main,
    High,
    Main10,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Baseline => "baseline",
            Profile::Main => "main",
            Profile::High => "high",
            Profile::Main10 => "main10",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Redundancy {
    #[default]
    None,
    ActiveActive,
    ActivePassive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// The encoder stops passing buffers.
    Stall,
    /// The encoder posts an error.
    Error,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Stall => "stall",
            FaultKind::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Instance {
    #[default]
    Primary,
    Backup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    #[serde(default)]
    pub instance: Instance,
    /// When, after the channel started.
    #[serde(deserialize_with = "duration")]
    pub at: Duration,
}

impl Encoder {
    pub fn id(&self) -> &str {
        self.id.as_ref().map_or("video", |s| s.get_ref().as_str())
    }

    pub fn backend(&self) -> Backend {
        self.backend
            .as_ref()
            .map_or(Backend::Auto, |b| *b.get_ref())
    }

    pub fn profile(&self) -> Profile {
        self.profile
            .as_ref()
            .map(|p| *p.get_ref())
            .unwrap_or(match self.codec {
                Codec::H264 => Profile::High,
                Codec::H265 => Profile::Main,
            })
    }

    /// The backup instance's backend: as configured, else the codec's
    /// software encoder.
    pub fn backup_backend(&self) -> Backend {
        self.backup_backend
            .as_ref()
            .map(|b| *b.get_ref())
            .unwrap_or(match self.codec {
                Codec::H264 => Backend::X264,
                Codec::H265 => Backend::X265,
            })
    }

    /// The rendition's picture size.
    pub fn size(&self, channel: &VideoFormat) -> (u32, u32) {
        (
            self.width.unwrap_or(channel.width),
            self.height.unwrap_or(channel.height),
        )
    }
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
            id: None,
            codec: Codec::default(),
            backend: None,
            fallback: false,
            width: None,
            height: None,
            video_bitrate: default_video_bitrate(),
            rate_control: RateControl::default(),
            keyframe_interval: default_keyframe_interval(),
            bframes: 0,
            profile: None,
            low_latency: true,
            preset: Preset::default(),
            redundancy: Redundancy::default(),
            backup_backend: None,
            stall_timeout: default_encoder_stall(),
            hold_off: default_hold_off(),
            faults: Vec::new(),
        }
    }
}

fn default_encoders() -> Vec<Encoder> {
    vec![Encoder::default()]
}

fn default_encoder_stall() -> Duration {
    Duration::from_secs(1)
}

fn default_hold_off() -> Duration {
    Duration::from_secs(10)
}

fn default_failover_after() -> u32 {
    3
}

fn default_retry_primary() -> Duration {
    Duration::from_secs(60)
}

/// A table or an array of tables. A visitor, not an untagged enum, so the
/// inner errors (unknown key, bad value) keep their message and place.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Encoder>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<Encoder>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a [channel.encoder] table or [[channel.encoder]] tables")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Encoder::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|e| vec![e])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(V)
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
    /// The encoders (renditions) it carries; default: the first (HLS: all).
    #[serde(default)]
    pub encoders: Option<Vec<Spanned<String>>>,
    /// Backup destinations, tried in order (CDN backup ingest points).
    #[serde(default)]
    pub backup: Vec<Spanned<String>>,
    /// `failover`: move on after `failover_after` failures in a row;
    /// `both`: send to every destination at once.
    #[serde(default)]
    pub mode: OutputMode,
    #[serde(default = "default_failover_after")]
    pub failover_after: u32,
    /// On a backup destination, try the primary again after this long.
    #[serde(default = "default_retry_primary", deserialize_with = "duration")]
    pub retry_primary: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    #[default]
    Failover,
    Both,
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
fn default_clean_gap() -> Duration {
    Duration::from_millis(100)
}
fn default_flap_window() -> Duration {
    Duration::from_secs(300)
}
fn default_max_return_after() -> Duration {
    Duration::from_secs(300)
}
fn default_startup_grace() -> Duration {
    Duration::from_secs(1)
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
                // "": an empty key at the top ("" = 1, found by fuzz/).
                let path = if path == "." || path.is_empty() {
                    "(top)".to_owned()
                } else {
                    path
                };
                let mut message = inner.message().trim().to_owned();
                if message.starts_with("unknown field `audio_bitrate`") {
                    message.push_str(
                        " (the AAC bitrate is now `bitrate` in the channel's `audio` table)",
                    );
                }
                errors.push(inner.span().unwrap_or(0..0), path, message);
                return Err(errors.list);
            }
        };
        config.validate(&mut errors);
        if errors.list.is_empty() {
            let mut config = config;
            config.source = (file.to_owned(), text.to_owned());
            Ok(config)
        } else {
            Err(errors.list)
        }
    }

    fn validate(&self, errors: &mut Errors) {
        for (a, sink) in self.alerts.iter().enumerate() {
            let url = sink.url.get_ref();
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => errors.push(
                    sink.url.span(),
                    format!("alert[{a}].url"),
                    format!(
                        "\"{}\" is not an http:// or https:// URL",
                        crate::uri::redact(url)
                    ),
                ),
            }
            // Sent as they are: one the HTTP client refuses fails every
            // delivery, and the webhook's queue waits on it for ever.
            for (name, value) in &sink.headers {
                let at = format!("alert[{a}].headers.{name}");
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    errors.push(
                        value.span(),
                        at,
                        format!(
                            "\"{name}\" is not an HTTP header name: letters, digits and !#$%&'*+-.^_`|~ only"
                        ),
                    );
                } else if reqwest::header::HeaderValue::from_str(value.get_ref()).is_err() {
                    // The value is not shown: it is often a token.
                    errors.push(
                        value.span(),
                        at,
                        "an HTTP header value cannot hold a newline or another control character",
                    );
                }
            }
        }
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
            if ch.max_return_after < ch.return_after {
                errors.push(
                    ch.id.span(),
                    format!("{at}.max_return_after"),
                    format!(
                        "{} is shorter than return_after ({}): a flapping input's hold-off \
                         could never grow; make it at least return_after",
                        humantime::format_duration(ch.max_return_after),
                        humantime::format_duration(ch.return_after)
                    ),
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
            let mut encoder_ids = HashSet::new();
            for (e, enc) in ch.encoders.iter().enumerate() {
                let at = format!("{at}.encoder[{e}]");
                let span = enc.id.as_ref().map_or(ch.id.span(), |i| i.span());
                match &enc.id {
                    Some(id) => {
                        check_id(errors, id, &format!("{at}.id"), &mut encoder_ids, "encoder")
                    }
                    None if ch.encoders.len() > 1 => errors.push(
                        span.clone(),
                        format!("{at}.id"),
                        "an id is needed when a channel has several encoders (outputs name them)",
                    ),
                    None => {
                        encoder_ids.insert("video".to_owned());
                    }
                }
                enc.validate(&at, span, errors);
            }
            let mut ids = HashSet::new();
            for (o, output) in ch.outputs.iter().enumerate() {
                let at = format!("{at}.output[{o}]");
                check_id(errors, &output.id, &format!("{at}.id"), &mut ids, "output");
                let kind = match crate::uri::output_kind(output.uri.get_ref()) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        errors.push(output.uri.span(), format!("{at}.uri"), e);
                        None
                    }
                };
                let hls = matches!(kind, Some(crate::uri::OutputKind::Hls { .. }));
                if let Some(list) = &output.encoders {
                    if list.is_empty() {
                        errors.push(
                            output.id.span(),
                            format!("{at}.encoders"),
                            "names no encoder",
                        );
                    }
                    if list.len() > 1 && !hls {
                        errors.push(
                            list[1].span(),
                            format!("{at}.encoders"),
                            "only an hls:// output carries several encoders (renditions); this one carries one",
                        );
                    }
                    for (i, name) in list.iter().enumerate() {
                        if !encoder_ids.contains(name.get_ref()) {
                            let known: Vec<&str> = ch.encoders.iter().map(|e| e.id()).collect();
                            errors.push(
                                name.span(),
                                format!("{at}.encoders[{i}]"),
                                format!(
                                    "no encoder \"{}\"; the channel has {}",
                                    name.get_ref(),
                                    known.join(", ")
                                ),
                            );
                        }
                    }
                }
                for (b, backup) in output.backup.iter().enumerate() {
                    let at = format!("{at}.backup[{b}]");
                    match crate::uri::output_kind(backup.get_ref()) {
                        Err(e) => errors.push(backup.span(), at, e),
                        Ok(
                            crate::uri::OutputKind::Hls { .. }
                            | crate::uri::OutputKind::File { .. },
                        ) => errors.push(
                            backup.span(),
                            at,
                            "backup destinations are for network outputs (srt, udp, rtmp, rtmps)",
                        ),
                        Ok(_) => {}
                    }
                }
                if !output.backup.is_empty()
                    && (hls || matches!(kind, Some(crate::uri::OutputKind::File { .. })))
                {
                    errors.push(
                        output.uri.span(),
                        format!("{at}.backup"),
                        "backup destinations are for network outputs (srt, udp, rtmp, rtmps)",
                    );
                }
                if output.failover_after == 0 {
                    errors.push(
                        output.id.span(),
                        format!("{at}.failover_after"),
                        "must be at least 1",
                    );
                }
            }
        }
        self.check_listeners(errors);
    }

    /// What is valid but will fail at run time unless the box changes
    /// first: a recording or HLS directory that cannot be created now (it
    /// may live on a disk that is mounted later, so it is no error).
    pub fn warnings(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        for (c, ch) in self.channels.iter().enumerate() {
            for (o, output) in ch.outputs.iter().enumerate() {
                let dir = match crate::uri::output_kind(output.uri.get_ref()) {
                    Ok(crate::uri::OutputKind::File { path, .. }) => std::path::Path::new(&path)
                        .parent()
                        .map(std::path::Path::to_path_buf),
                    Ok(crate::uri::OutputKind::Hls { dir, .. }) => Some(dir.into()),
                    _ => None,
                };
                if let Some(why) = dir.as_deref().and_then(unwritable) {
                    out.push(self.error_at(
                        output.uri.span(),
                        format!("channel[{c}].output[{o}].uri"),
                        format!("warning: {why}; the output will fail and retry until it can be written"),
                    ));
                }
            }
        }
        out
    }

    /// Two sockets of this config listening on one port: the second would
    /// fail to bind at run time, over and over.
    fn check_listeners(&self, errors: &mut Errors) {
        let mut seen: Vec<(String, String, u16, String)> = Vec::new();
        for (c, ch) in self.channels.iter().enumerate() {
            let inputs = ch
                .inputs
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("channel[{c}].input[{i}].uri"), &x.uri, true));
            let outputs = ch
                .outputs
                .iter()
                .enumerate()
                .map(|(o, x)| (format!("channel[{c}].output[{o}].uri"), &x.uri, false));
            for (at, uri, input) in inputs.chain(outputs) {
                let Some((host, port)) = crate::uri::listening_on(uri.get_ref(), input) else {
                    continue;
                };
                let any = |h: &str| matches!(h, "0.0.0.0" | "::" | "");
                if let Some((first, ..)) = seen
                    .iter()
                    .find(|(_, h, p, _)| *p == port && (*h == host || any(h) || any(&host)))
                {
                    errors.push(
                        uri.span(),
                        at.clone(),
                        format!(
                            "port {port} is already where {first} listens; two sockets cannot share it"
                        ),
                    );
                } else {
                    seen.push((at, host, port, String::new()));
                }
            }
        }
    }
}

impl Encoder {
    fn validate(&self, at: &str, span: Range<usize>, errors: &mut Errors) {
        let backend_span =
            |b: &Option<Spanned<Backend>>| b.as_ref().map_or(span.clone(), |b| b.span());
        // Whether a backend can encode the codec is the encoders' to say:
        // crate::encode::check_backends, after loading.
        if self.backup_backend.is_some() && self.redundancy == Redundancy::None {
            errors.push(
                backend_span(&self.backup_backend),
                format!("{at}.backup_backend"),
                "needs redundancy = \"active-active\" or \"active-passive\"",
            );
        }
        match (self.width, self.height) {
            (None, None) => {}
            (Some(w), Some(h))
                if (16..=7680).contains(&w)
                    && (16..=4320).contains(&h)
                    && w % 2 == 0
                    && h % 2 == 0 => {}
            (Some(_), Some(_)) => errors.push(
                span.clone(),
                format!("{at}.width"),
                "width and height must be even, 16 to 7680 × 16 to 4320",
            ),
            _ => errors.push(
                span.clone(),
                format!("{at}.width"),
                "give both width and height, or neither",
            ),
        }
        if let Some(p) = &self.profile {
            let ok = match self.codec {
                Codec::H264 => matches!(
                    p.get_ref(),
                    Profile::Baseline | Profile::Main | Profile::High
                ),
                Codec::H265 => matches!(p.get_ref(), Profile::Main | Profile::Main10),
            };
            if !ok {
                errors.push(
                    p.span(),
                    format!("{at}.profile"),
                    format!(
                        "{} has no profile {}; expected {}",
                        self.codec.name(),
                        p.get_ref().name(),
                        match self.codec {
                            Codec::H264 => "baseline, main or high",
                            Codec::H265 => "main or main10",
                        }
                    ),
                );
            }
        }
        if self.bframes > 0 && self.low_latency {
            errors.push(
                span.clone(),
                format!("{at}.bframes"),
                "low_latency = true means no B-frames: set bframes = 0 or low_latency = false",
            );
        }
        if self.bframes > 0 && self.profile() == Profile::Baseline {
            errors.push(
                span.clone(),
                format!("{at}.bframes"),
                "profile baseline has no B-frames",
            );
        }
        if self.bframes > 16 {
            errors.push(span.clone(), format!("{at}.bframes"), "at most 16");
        }
        for (i, f) in self.faults.iter().enumerate() {
            if f.instance == Instance::Backup && self.redundancy == Redundancy::None {
                errors.push(
                    span.clone(),
                    format!("{at}.faults[{i}].instance"),
                    "there is no backup instance without redundancy",
                );
            }
        }
        if self.stall_timeout < Duration::from_millis(100) {
            errors.push(
                span.clone(),
                format!("{at}.stall_timeout"),
                "must be at least 100ms",
            );
        }
        if self.video_bitrate == 0 {
            errors.push(
                span.clone(),
                format!("{at}.video_bitrate"),
                "must be above 0",
            );
        }
    }
}

/// Ids name D-Bus objects and metrics labels: keep them plain.
/// Why `dir` cannot be created or written now, if so. The nearest
/// existing ancestor is tried for real (a scratch directory made and
/// removed): permissions alone say nothing for root, nor for /proc.
fn unwritable(dir: &std::path::Path) -> Option<String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if !m.is_dir() => return Some(format!("{} is not a directory", at.display())),
            Ok(_) => break,
            Err(_) => at = at.parent()?,
        }
    }
    let scratch = at.join(format!(".nonstopd-check-{}", std::process::id()));
    match std::fs::create_dir(&scratch) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&scratch);
            None
        }
        Err(e) if at == dir => Some(format!("{} is not writable ({e})", dir.display())),
        Err(e) => Some(format!(
            "{} cannot be created: nothing can be made in {} ({e})",
            dir.display(),
            at.display()
        )),
    }
}

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
        assert_eq!(ch.clean_gap, Duration::from_millis(100));
        assert_eq!(ch.flap_window, Duration::from_secs(300));
        assert_eq!(ch.max_return_after, Duration::from_secs(300));
        assert_eq!(ch.startup_grace, Duration::from_secs(1));
        assert_eq!(
            ch.audio,
            AudioFormat {
                rate: 48000,
                channels: 2,
                bitrate: 128
            }
        );
        assert_eq!(ch.watchdog.fail_on, vec![Alarm::Stall]);
        assert_eq!(ch.backoff.max, Duration::from_secs(30));
        assert_eq!(ch.encoders.len(), 1);
        assert_eq!(ch.encoders[0].id(), "video");
        assert_eq!(ch.encoders[0].video_bitrate, 4000);
        assert_eq!(ch.inputs.len(), 2);
    }

    #[test]
    fn an_output_directory_that_cannot_be_made_is_a_warning() {
        let text = GOOD.replace(
            "rtmp://live.example.com/app/streamkey123",
            "file:///proc/nope/rec.ts",
        )
            + "\n[[channel.output]]\nid = \"ok\"\nuri = \"file:///tmp/nonstop-check-ok/rec.ts\"\n";
        let c = Config::parse("ch.toml", &text).unwrap();
        let w: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("channel[0].output[0].uri: warning: /proc/nope cannot be created"),
            "{w:?}"
        );
        assert!(
            !std::path::Path::new("/tmp/nonstop-check-ok").exists(),
            "check creates nothing"
        );
    }

    #[test]
    fn two_listeners_on_one_port_are_refused() {
        let text = GOOD.replace(
            "[[channel.output]]",
            "[[channel.output]]\nid = \"relay\"\nuri = \"srt://0.0.0.0:9000?mode=listener\"\n\n[[channel.output]]",
        );
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("channel[0].output[0].uri: port 9000 is already where channel[0].input[0].uri listens"),
            "{e:?}"
        );
    }

    #[test]
    fn flap_damping_keys_are_read_and_checked() {
        let text = GOOD.replace(
            "timeout = \"750ms\"",
            "timeout = \"750ms\"\nclean_gap = \"40ms\"\nflap_window = \"1m\"\nmax_return_after = \"20s\"",
        );
        let c = Config::parse("ch.toml", &text).unwrap();
        let ch = &c.channels[0];
        assert_eq!(
            (ch.clean_gap, ch.flap_window, ch.max_return_after),
            (
                Duration::from_millis(40),
                Duration::from_secs(60),
                Duration::from_secs(20)
            )
        );
        let text = GOOD.replace("timeout = \"750ms\"", "max_return_after = \"2s\"");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("channel[0].max_return_after: 2s is shorter than return_after (5s)"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_keys_name_the_place_and_what_is_expected() {
        let text = GOOD.replace("timeout = \"750ms\"", "timeuot = \"750ms\"");
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:5:1: channel[0].timeuot: unknown field `timeuot`, expected one of `id`, \
                  `video`, `audio`, `timeout`, `return_after`, `clean_gap`, `flap_window`, \
                  `max_return_after`, `startup_grace`, `watchdog`, `backoff`, `input`, `encoder`, \
                  `output`"
            ]
        );
    }

    #[test]
    fn webhook_headers_must_be_valid_http() {
        let alert = "[[alert]]\ntype = \"webhook\"\nurl = \"https://a.example/x\"\n";
        let text = format!(
            "{alert}headers = {{ \"X Key\" = \"v\", Authorization = \"Bearer a\\nb\" }}\n{GOOD}"
        );
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:4:44: alert[0].headers.Authorization: an HTTP header value cannot hold \
                 a newline or another control character",
                "ch.toml:4:23: alert[0].headers.X Key: \"X Key\" is not an HTTP header name: \
                 letters, digits and !#$%&'*+-.^_`|~ only",
            ]
        );
        let text = format!("{alert}headers = {{ Authorization = \"Bearer x\" }}\n{GOOD}");
        assert!(Config::parse("ch.toml", &text).is_ok());
    }

    #[test]
    fn an_empty_key_at_the_top_has_a_place() {
        assert_eq!(
            errors("\"\" = \"=\""),
            vec!["ch.toml:1:1: (top): unknown field ``, expected `channel` or `alert`"]
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

    const LADDER: &str = r#"
[[channel]]
id = "news"

[[channel.input]]
id = "a"
uri = "test://smpte"

[[channel.encoder]]
id = "hd"
redundancy = "active-active"

[[channel.encoder]]
id = "sd"
width = 640
height = 360
video_bitrate = 1000

[[channel.output]]
id = "hls"
uri = "hls:///srv/hls"

[[channel.output]]
id = "cdn"
uri = "rtmp://a.example/live/key"
encoders = ["sd"]
backup = ["rtmp://b.example/live/key"]
"#;

    #[test]
    fn a_ladder_with_redundancy_and_backup_destinations() {
        let c = Config::parse("l.toml", LADDER).unwrap();
        let ch = &c.channels[0];
        assert_eq!(ch.encoders.len(), 2);
        assert_eq!(ch.encoders[0].redundancy, Redundancy::ActiveActive);
        assert_eq!(ch.encoders[0].backup_backend(), Backend::X264);
        assert_eq!(ch.encoders[1].size(&ch.video), (640, 360));
        assert_eq!(ch.outputs[1].backup.len(), 1);
        assert_eq!(ch.outputs[1].failover_after, 3);
        assert_eq!(ch.outputs[1].retry_primary, Duration::from_secs(60));
    }

    #[test]
    fn encoder_and_output_mistakes_are_reported_where_they_are() {
        let text = LADDER
            .replace(
                "id = \"sd\"\n",
                "id = \"sd\"\nprofile = \"main10\"\nbframes = 2\n",
            )
            .replace("encoders = [\"sd\"]", "encoders = [\"sd\", \"uhd\"]")
            .replace(
                "backup = [\"rtmp://b.example/live/key\"]",
                "backup = [\"hls:///x\"]",
            );
        let e = errors(&text);
        assert!(
            e.iter().any(|l| l.contains(
                "encoder[1].profile: h264 has no profile main10; expected baseline, main or high"
            )),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l.contains("encoder[1].bframes: low_latency = true means no B-frames")),
            "{e:#?}"
        );
        assert!(
            e.iter().any(|l| l
                .contains("output[1].encoders: only an hls:// output carries several encoders")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l
                    .contains("output[1].encoders[1]: no encoder \"uhd\"; the channel has hd, sd")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l
                    .contains("output[1].backup[0]: backup destinations are for network outputs")),
            "{e:#?}"
        );
        let text = LADDER.replacen("id = \"hd\"\n", "", 1);
        assert!(errors(&text)
            .iter()
            .any(|l| l
                .contains("encoder[0].id: an id is needed when a channel has several encoders")));
    }

    #[test]
    fn a_single_encoder_table_still_works() {
        let text = GOOD.to_owned() + "\n[channel.encoder]\nvideo_bitrate = 2500\n";
        let c = Config::parse("s.toml", &text).unwrap();
        assert_eq!(c.channels[0].encoders[0].video_bitrate, 2500);
        let text = GOOD.to_owned() + "\n[channel.encoder]\nvideo_bitrat = 2500\n";
        assert!(
            errors(&text)[0].contains("unknown field `video_bitrat`"),
            "{:?}",
            errors(&text)
        );
    }
}
