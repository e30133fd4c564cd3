//! Loudness of an audio stream after EBU R128 / ITU-R BS.1770 (ATSC A/85
//! measures the same way): momentary (400 ms), short-term (3 s),
//! integrated and range over the whole run, and the true peak. The
//! `ebur128` crate does the measuring; this maps GStreamer's channel
//! positions and sample formats onto it.

use ebur128::{Channel, EbuR128, Mode};
use gst_audio::AudioChannelPosition as P;

/// One reading. Loudness in LUFS (−∞ below the absolute gate or before
/// enough audio), range in LU, true peak in dBTP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub momentary: f64,
    pub short_term: f64,
    pub integrated: f64,
    pub range: f64,
    /// The highest true peak of any channel since the previous reading.
    pub true_peak: f64,
}

pub struct Meter {
    ebu: EbuR128,
    format: gst_audio::AudioFormat,
    channels: u32,
    /// Highest true peak (linear) since the last `take_peak`.
    peak: f64,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("format", &self.format)
            .field("channels", &self.channels)
            .finish()
    }
}

/// Where BS.1770 puts a speaker: its weight follows from the type (LFE
/// and height speakers it does not weigh are left out).
fn channel_of(p: P) -> Channel {
    match p {
        P::Mono => Channel::DualMono,
        P::FrontLeft => Channel::Left,
        P::FrontRight => Channel::Right,
        P::FrontCenter => Channel::Center,
        P::RearLeft | P::SideLeft | P::SurroundLeft => Channel::LeftSurround,
        P::RearRight | P::SideRight | P::SurroundRight => Channel::RightSurround,
        P::FrontLeftOfCenter => Channel::MpSC,
        P::FrontRightOfCenter => Channel::MmSC,
        P::RearCenter => Channel::Mp180,
        P::WideLeft => Channel::Mp060,
        P::WideRight => Channel::Mm060,
        _ => Channel::Unused,
    }
}

fn db(linear: f64) -> f64 {
    20.0 * linear.log10()
}

impl Meter {
    pub fn new(info: &gst_audio::AudioInfo) -> Result<Meter, String> {
        let mode = Mode::M | Mode::S | Mode::I | Mode::LRA | Mode::TRUE_PEAK | Mode::HISTOGRAM;
        let mut ebu = EbuR128::new(info.channels(), info.rate(), mode)
            .map_err(|e| format!("loudness meter for {info:?}: {e}"))?;
        // HISTOGRAM bounds the memory of the integrated measure: a 24/7
        // input never grows it. Positions unknown (NONE) keep the crate's
        // default L, R, C, unused, Ls, Rs.
        let map: Option<Vec<Channel>> = info.positions().and_then(|ps| {
            (!ps.iter().any(|p| matches!(p, P::None | P::Invalid)))
                .then(|| ps.iter().copied().map(channel_of).collect())
        });
        // A mono programme is heard on both ears: BS.1770 counts it as
        // dual mono, so it reads as its stereo twin.
        match map {
            Some(map) => ebu.set_channel_map(&map),
            None if info.channels() == 1 => ebu.set_channel_map(&[Channel::DualMono]),
            None => Ok(()),
        }
        .map_err(|e| format!("loudness channel map: {e}"))?;
        Ok(Meter {
            ebu,
            format: info.format(),
            channels: info.channels(),
            peak: 0.0,
        })
    }

    /// Adds interleaved samples in the meter's format (S16LE, S32LE,
    /// F32LE or F64LE: what `analysis::audio_supported` lets in).
    pub fn add(&mut self, data: &[u8]) {
        use gst_audio::AudioFormat as F;
        let res = match self.format {
            F::S16le => self.ebu.add_frames_i16(&samples(data, i16::from_le_bytes)),
            F::S32le => self.ebu.add_frames_i32(&samples(data, i32::from_le_bytes)),
            F::F32le => self.ebu.add_frames_f32(&samples(data, f32::from_le_bytes)),
            F::F64le => self.ebu.add_frames_f64(&samples(data, f64::from_le_bytes)),
            _ => return,
        };
        if res.is_err() {
            return;
        }
        for c in 0..self.channels {
            if let Ok(p) = self.ebu.prev_true_peak(c) {
                self.peak = self.peak.max(p);
            }
        }
    }

    pub fn momentary(&self) -> f64 {
        self.ebu.loudness_momentary().unwrap_or(f64::NEG_INFINITY)
    }

    pub fn short_term(&self) -> f64 {
        self.ebu.loudness_shortterm().unwrap_or(f64::NEG_INFINITY)
    }

    /// The highest true peak (dBTP) since the last call.
    pub fn take_peak(&mut self) -> f64 {
        db(std::mem::take(&mut self.peak))
    }

    /// A full reading; the true peak is the highest since the last.
    pub fn reading(&mut self, true_peak: f64) -> Reading {
        Reading {
            momentary: self.momentary(),
            short_term: self.short_term(),
            integrated: self.ebu.loudness_global().unwrap_or(f64::NEG_INFINITY),
            range: self.ebu.loudness_range().unwrap_or(0.0),
            true_peak,
        }
    }
}

/// Little-endian samples of `N` bytes, whole frames only (a torn tail is
/// dropped: GStreamer never sends one).
fn samples<T, const N: usize>(data: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| from(c.try_into().expect("chunk of N bytes")))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `secs` of a sine of `hz` at `dbfs` (peak amplitude) on every
    /// channel, F32LE at 48 kHz.
    pub(crate) fn sine(channels: u32, hz: f64, dbfs: f64, secs: f64) -> Vec<u8> {
        let a = 10f64.powf(dbfs / 20.0);
        let n = (48_000.0 * secs) as usize;
        (0..n)
            .flat_map(|i| {
                let v = (a * (2.0 * std::f64::consts::PI * hz * i as f64 / 48_000.0).sin()) as f32;
                std::iter::repeat_n(v.to_le_bytes(), channels as usize).flatten()
            })
            .collect()
    }

    fn info(format: gst_audio::AudioFormat, channels: u32) -> gst_audio::AudioInfo {
        gst::init().unwrap();
        gst_audio::AudioInfo::builder(format, 48_000, channels)
            .build()
            .unwrap()
    }

    #[test]
    fn a_minus_23_dbfs_1khz_stereo_sine_reads_minus_23_lufs() {
        // EBU Tech 3341, case 1: −23.0 ± 0.1 on every measure.
        let mut m = Meter::new(&info(gst_audio::AudioFormat::F32le, 2)).unwrap();
        m.add(&sine(2, 1000.0, -23.0, 20.0));
        let peak = m.take_peak();
        let r = m.reading(peak);
        for (what, v) in [
            ("momentary", r.momentary),
            ("short-term", r.short_term),
            ("integrated", r.integrated),
        ] {
            assert!((v + 23.0).abs() <= 0.1, "{what} {v}");
        }
        // A 1 kHz sine's true peak is its sample peak: −23 dBTP.
        assert!((r.true_peak + 23.0).abs() <= 0.1, "{}", r.true_peak);
        assert!(r.range < 0.1, "a steady tone has no range: {}", r.range);
    }

    #[test]
    fn integer_formats_read_the_same() {
        let f32s = sine(2, 1000.0, -23.0, 5.0);
        let as_i16: Vec<u8> = f32s
            .chunks_exact(4)
            .flat_map(|c| {
                let v = f32::from_le_bytes(c.try_into().unwrap());
                ((v * 32767.0).round() as i16).to_le_bytes()
            })
            .collect();
        let as_i32: Vec<u8> = f32s
            .chunks_exact(4)
            .flat_map(|c| {
                let v = f32::from_le_bytes(c.try_into().unwrap()) as f64;
                ((v * 2147483647.0).round() as i32).to_le_bytes()
            })
            .collect();
        for (fmt, data) in [
            (gst_audio::AudioFormat::S16le, as_i16),
            (gst_audio::AudioFormat::S32le, as_i32),
        ] {
            let mut m = Meter::new(&info(fmt, 2)).unwrap();
            m.add(&data);
            let s = m.short_term();
            assert!((s + 23.0).abs() <= 0.1, "{fmt:?} {s}");
        }
    }

    #[test]
    fn mono_counts_as_dual_mono_and_lfe_is_not_weighed() {
        let mut m = Meter::new(&info(gst_audio::AudioFormat::F32le, 1)).unwrap();
        m.add(&sine(1, 1000.0, -23.0, 5.0));
        assert!((m.short_term() + 23.0).abs() <= 0.1, "{}", m.short_term());

        // 5.1 with a tone on the LFE only: nothing BS.1770 weighs.
        gst::init().unwrap();
        let pos = [
            P::FrontLeft,
            P::FrontRight,
            P::FrontCenter,
            P::Lfe1,
            P::RearLeft,
            P::RearRight,
        ];
        let info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::F32le, 48_000, 6)
            .positions(&pos)
            .build()
            .unwrap();
        let mut m = Meter::new(&info).unwrap();
        let lfe_only: Vec<u8> = sine(1, 60.0, -6.0, 5.0)
            .chunks_exact(4)
            .flat_map(|c| {
                let mut frame = [0u8; 24];
                frame[12..16].copy_from_slice(c);
                frame
            })
            .collect();
        m.add(&lfe_only);
        assert_eq!(m.short_term(), f64::NEG_INFINITY);
    }

    #[test]
    fn true_peak_sees_between_the_samples() {
        // A sine at a quarter of the rate, sampled at ±45°: the samples
        // reach 0.707 of the peak, the waveform between them the peak.
        let mut m = Meter::new(&info(gst_audio::AudioFormat::F32le, 2)).unwrap();
        let data: Vec<u8> = (0..48_000)
            .flat_map(|i| {
                let phase = std::f64::consts::FRAC_PI_4 + std::f64::consts::FRAC_PI_2 * i as f64;
                let v = (0.9 * phase.sin()) as f32;
                [v.to_le_bytes(), v.to_le_bytes()].concat()
            })
            .collect();
        m.add(&data);
        let tp = m.take_peak();
        let sample_peak = db(0.9 * std::f64::consts::FRAC_1_SQRT_2);
        assert!(
            tp > sample_peak + 2.0,
            "true peak {tp} vs sample {sample_peak}"
        );
        assert!((tp - db(0.9)).abs() < 0.6, "{tp}");
        assert_eq!(m.take_peak(), f64::NEG_INFINITY, "taken");
    }
}
