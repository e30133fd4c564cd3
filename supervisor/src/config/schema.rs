//! The config's tables: the whole file, a channel, and the channel's
//! watchdog, backoff, inputs, outputs and the `[[alert]]` sinks (the
//! formats and encoders have files of their own).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::defaults::{
    default_alert_timeout, default_backoff_initial, default_backoff_max, default_black_ratio,
    default_black_threshold, default_clean_gap, default_content_timeout, default_failover_after,
    default_flap_window, default_freeze_tolerance, default_jump_threshold, default_loss_repeat,
    default_loud_threshold, default_max_return_after, default_no_captions_timeout,
    default_output_grace, default_quiet_threshold, default_retry_primary, default_return_after,
    default_silence_threshold, default_stall_timeout, default_startup_grace, default_timeout,
    default_true, default_true_peak_limit,
};
use super::encoder::{default_encoders, one_or_many, Encoder};
use super::format::{default_tracks, tracks, AudioTrack, TrackSource, VideoFormat};
use super::units::{dbfs, dbtp, duration, lu, lufs, luma, percent, share};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "channel", default)]
    pub channels: Vec<Channel>,
    /// `[[alert]]`: where alerts go besides the log and D-Bus.
    #[serde(rename = "alert", default)]
    pub alerts: Vec<AlertSink>,
    /// `[fleet]`: the boxes this one shares its channels with, on etcd.
    #[serde(default)]
    pub fleet: Option<super::fleet::Fleet>,
    /// Where it was read from, to place later errors: the files (each
    /// with the byte where it begins in the text) and their joined text.
    #[serde(skip)]
    pub(super) source: (Vec<(String, usize)>, String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub id: Spanned<String>,
    #[serde(default)]
    pub video: VideoFormat,
    /// `[channel.audio]` (one track, `main`) or `[[channel.audio]]`
    /// (tracks, each with its id and language).
    #[serde(default = "default_tracks", deserialize_with = "tracks")]
    pub audio: Vec<AudioTrack>,
    /// Closed captions (CEA-608/708) from the input on air to the outputs.
    #[serde(default)]
    pub captions: Captions,
    /// SCTE-35 cues of the inputs' TS (from the input on air) go to the
    /// outputs too; off by default (GStreamer 1.22's tsdemux, see
    /// docs/config.md).
    #[serde(default)]
    pub pass_scte35: bool,
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
    /// Return to a better input once it is healthy again (false:
    /// non-revertive, the input on air stays until it fails or an operator
    /// switches).
    #[serde(default = "default_true")]
    pub auto_return: bool,
    /// With no healthy input, the last frame is repeated this long, then
    /// black.
    #[serde(default = "default_loss_repeat", deserialize_with = "duration")]
    pub loss_repeat: Duration,
    #[serde(default)]
    pub watchdog: Watchdog,
    /// `[channel.srt]`: the bounds of its SRT links' alarms.
    #[serde(default)]
    pub srt: SrtLinks,
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
    /// `[channel.fleet]`: how it runs when the config has `[fleet]`.
    #[serde(default)]
    pub fleet: super::fleet::ChannelFleet,
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
    /// Mean luma difference (8-bit levels) up to which a frame counts as
    /// unchanged (freeze).
    #[serde(default = "default_freeze_tolerance", deserialize_with = "luma")]
    pub freeze_tolerance: f64,
    /// Luma at or below this share of the range is dark.
    #[serde(default = "default_black_threshold", deserialize_with = "share")]
    pub black_threshold: f64,
    /// The share of dark pixels that makes a frame black.
    #[serde(default = "default_black_ratio", deserialize_with = "share")]
    pub black_ratio: f64,
    /// RMS level (dBFS) below which a channel is silent.
    #[serde(default = "default_silence_threshold", deserialize_with = "dbfs")]
    pub silence_threshold: f64,
    /// Meter every input's and the programme's loudness (EBU R128) for
    /// metrics and the status page.
    #[serde(default = "default_true")]
    pub loudness: bool,
    #[serde(default = "default_content_timeout", deserialize_with = "duration")]
    pub loud_timeout: Duration,
    /// Short-term loudness (LUFS) above which the sound is too loud.
    #[serde(default = "default_loud_threshold", deserialize_with = "lufs")]
    pub loud_threshold: f64,
    #[serde(default = "default_content_timeout", deserialize_with = "duration")]
    pub quiet_timeout: Duration,
    /// Short-term loudness (LUFS) below which the sound is too quiet.
    #[serde(default = "default_quiet_threshold", deserialize_with = "lufs")]
    pub quiet_threshold: f64,
    #[serde(default = "default_content_timeout", deserialize_with = "duration")]
    pub true_peak_timeout: Duration,
    /// True peak (dBTP) the sound must stay under.
    #[serde(default = "default_true_peak_limit", deserialize_with = "dbtp")]
    pub true_peak_limit: f64,
    #[serde(default = "default_content_timeout", deserialize_with = "duration")]
    pub jump_timeout: Duration,
    /// A change of short-term loudness (LU) within 3 s that is a jump.
    #[serde(default = "default_jump_threshold", deserialize_with = "lu")]
    pub jump_threshold: f64,
    /// With `captions = "required"`: pictures without captions this long
    /// raise `no-captions`.
    #[serde(default = "default_no_captions_timeout", deserialize_with = "duration")]
    pub no_captions_timeout: Duration,
}

/// What a channel does with its inputs' closed captions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Captions {
    /// Carried from the input on air to the outputs, when it has them.
    #[default]
    Carry,
    /// Carried, and an input without them raises `no-captions`.
    Required,
    /// Taken off every input.
    Drop,
}

impl Captions {
    pub fn name(self) -> &'static str {
        match self {
            Captions::Carry => "carry",
            Captions::Required => "required",
            Captions::Drop => "drop",
        }
    }
}

impl Default for Watchdog {
    fn default() -> Self {
        Self {
            fail_on: default_fail_on(),
            stall_timeout: default_stall_timeout(),
            freeze_timeout: default_content_timeout(),
            black_timeout: default_content_timeout(),
            silence_timeout: default_content_timeout(),
            freeze_tolerance: default_freeze_tolerance(),
            black_threshold: default_black_threshold(),
            black_ratio: default_black_ratio(),
            silence_threshold: default_silence_threshold(),
            loudness: true,
            loud_timeout: default_content_timeout(),
            loud_threshold: default_loud_threshold(),
            quiet_timeout: default_content_timeout(),
            quiet_threshold: default_quiet_threshold(),
            true_peak_timeout: default_content_timeout(),
            true_peak_limit: default_true_peak_limit(),
            jump_timeout: default_content_timeout(),
            jump_threshold: default_jump_threshold(),
            no_captions_timeout: default_no_captions_timeout(),
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
    Loud,
    Quiet,
    #[serde(rename = "true-peak")]
    TruePeak,
    Jump,
    #[serde(rename = "no-captions")]
    NoCaptions,
}

impl Alarm {
    /// The name in configs, logs and nonstopwatchdog's `fail-on` flags.
    pub fn name(self) -> &'static str {
        match self {
            Alarm::Stall => "stall",
            Alarm::Freeze => "freeze",
            Alarm::Black => "black",
            Alarm::Silence => "silence",
            Alarm::Loud => "loud",
            Alarm::Quiet => "quiet",
            Alarm::TruePeak => "true-peak",
            Alarm::Jump => "jump",
            Alarm::NoCaptions => "no-captions",
        }
    }
}

/// When an SRT link (an input's or an output's) is alarmed: loss or
/// round trip over its bound for 5 s. Zero: not judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrtLinks {
    /// Percent of packets lost over 5 s.
    #[serde(default, deserialize_with = "percent")]
    pub max_loss: f64,
    #[serde(default, deserialize_with = "duration")]
    pub max_rtt: Duration,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub id: Spanned<String>,
    pub uri: Spanned<String>,
    /// The alarms that take this input off air, instead of the channel's
    /// `watchdog.fail_on`.
    #[serde(default)]
    pub fail_on: Option<Vec<Alarm>>,
    /// `[channel.input.audio]`: track id → its stream in this input (an
    /// index or a language); a track not named takes the stream in its
    /// language, else the one at its position.
    #[serde(default)]
    pub audio: std::collections::BTreeMap<String, TrackSource>,
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

fn default_fail_on() -> Vec<Alarm> {
    vec![Alarm::Stall]
}
