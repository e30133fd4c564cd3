//! Default values of the config's keys, section by section (documented in
//! docs/config.md). Defaults with a type of their own (alarms, encoders)
//! are next to that type.

use std::time::Duration;

// channel
pub(super) fn default_timeout() -> Duration {
    Duration::from_millis(500)
}
pub(super) fn default_return_after() -> Duration {
    Duration::from_secs(5)
}
pub(super) fn default_clean_gap() -> Duration {
    Duration::from_millis(100)
}
pub(super) fn default_flap_window() -> Duration {
    Duration::from_secs(300)
}
pub(super) fn default_max_return_after() -> Duration {
    Duration::from_secs(300)
}
pub(super) fn default_startup_grace() -> Duration {
    Duration::from_secs(1)
}

// video
pub(super) fn default_width() -> u32 {
    1280
}
pub(super) fn default_height() -> u32 {
    720
}
pub(super) fn default_framerate() -> (u32, u32) {
    (25, 1)
}

// audio
pub(super) fn default_rate() -> u32 {
    48000
}
pub(super) fn default_channels() -> u32 {
    2
}
pub(super) fn default_audio_bitrate() -> u32 {
    128
}

// watchdog
pub(super) fn default_stall_timeout() -> Duration {
    Duration::from_secs(1)
}
pub(super) fn default_content_timeout() -> Duration {
    Duration::ZERO
}
/// Encoders put captions (at least padding) on every picture of a
/// captioned programme; 5 s without is no gap between two captions.
pub(super) fn default_no_captions_timeout() -> Duration {
    Duration::from_secs(5)
}
// nonstopwatchdog's own defaults.
pub(super) fn default_freeze_tolerance() -> f64 {
    2.0
}
pub(super) fn default_black_threshold() -> f64 {
    0.1
}
pub(super) fn default_black_ratio() -> f64 {
    0.98
}
pub(super) fn default_silence_threshold() -> f64 {
    -50.0
}
// Loudness: 10 LU over and 17 LU under R128's −23 LUFS target, R128's
// maximum true peak.
pub(super) fn default_loud_threshold() -> f64 {
    -13.0
}
pub(super) fn default_quiet_threshold() -> f64 {
    -40.0
}
pub(super) fn default_true_peak_limit() -> f64 {
    -1.0
}
pub(super) fn default_jump_threshold() -> f64 {
    10.0
}
// nonstopswitch's.
pub(super) fn default_loss_repeat() -> Duration {
    Duration::from_secs(1)
}

// backoff
pub(super) fn default_backoff_initial() -> Duration {
    Duration::from_millis(500)
}
pub(super) fn default_backoff_max() -> Duration {
    Duration::from_secs(30)
}

// [[alert]]
pub(super) fn default_alert_timeout() -> Duration {
    Duration::from_secs(5)
}
pub(super) fn default_output_grace() -> Duration {
    Duration::from_secs(10)
}

// encoder
pub(super) fn default_video_bitrate() -> u32 {
    4000
}
pub(super) fn default_keyframe_interval() -> Duration {
    Duration::from_secs(2)
}
pub(super) fn default_encoder_stall() -> Duration {
    Duration::from_secs(1)
}
pub(super) fn default_hold_off() -> Duration {
    Duration::from_secs(10)
}
pub(super) fn default_true() -> bool {
    true
}

// output
pub(super) fn default_failover_after() -> u32 {
    3
}
pub(super) fn default_retry_primary() -> Duration {
    Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::fixtures::GOOD;
    use crate::config::{Alarm, AudioFormat, Config};

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
        // The elements' own defaults, unless the config says otherwise.
        assert!(ch.auto_return);
        assert_eq!(ch.loss_repeat, Duration::from_secs(1));
        assert_eq!(ch.watchdog.freeze_tolerance, 2.0);
        assert_eq!(ch.watchdog.black_threshold, 0.1);
        assert_eq!(ch.watchdog.black_ratio, 0.98);
        assert_eq!(ch.watchdog.silence_threshold, -50.0);
        assert!(ch.inputs.iter().all(|i| i.fail_on.is_none()));
        assert_eq!(ch.startup_grace, Duration::from_secs(1));
        assert_eq!(ch.audio.len(), 1);
        assert_eq!(ch.audio[0].id, "main");
        assert_eq!(ch.audio[0].language, None);
        assert_eq!(
            ch.audio[0].format,
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
}
