//! The channel config: TOML, validated at load. Every error names the file,
//! line, column and key path and says what was expected; unknown keys are
//! errors. Defaults are documented in docs/config.md.
//!
//! One job per file; dependencies run one way, each file using only those
//! after it: `parse` (reading a file: syntax, types, then the checks) →
//! `validate`, `warnings` → `error` (where a mistake is) → `schema` (the
//! file, channels and their other tables) → `encoder` → `format` (video,
//! audio) → `units` (durations, framerates), `defaults`.

mod defaults;
mod encoder;
mod error;
mod fleet;
mod format;
mod parse;
mod schema;
mod units;
mod validate;
mod warnings;

pub use encoder::{
    Backend, Codec, Encoder, Fault, FaultKind, Instance, Preset, Profile, RateControl, Redundancy,
};
pub use error::ConfigError;
pub use fleet::{ChannelFleet, Fleet, FleetMode};
pub use format::{
    iso639_1, iso639_2b, AudioFormat, AudioTrack, TrackSource, VideoFormat, MAIN_TRACK,
};
pub use parse::{drop_in_dir, drop_ins};
pub use schema::{
    Alarm, AlertKind, AlertSink, Backoff, Captions, Channel, Config, Input, Output, OutputMode,
    SrtLinks, Watchdog,
};
pub use units::fmt_duration;

/// Configs the tests of every file start from.
#[cfg(test)]
mod fixtures {
    use super::Config;

    pub(super) const GOOD: &str = r#"
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

    pub(super) fn errors(text: &str) -> Vec<String> {
        Config::parse("ch.toml", text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub(super) const LADDER: &str = r#"
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
}
