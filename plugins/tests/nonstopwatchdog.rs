//! Tests of `nonstopwatchdog` with synthetic frames and samples; the stall
//! alarm is timed by a `TestClock`.

use gst::glib;
use gst::prelude::*;
use gst::ClockTime;
use gst_check::Harness;

const MS: ClockTime = ClockTime::MSECOND;
const W: usize = 64;
const H: usize = 48;

fn init() {
    use std::sync::Once;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstnonstop::plugin_register_static().unwrap();
    });
}

struct Rig {
    h: Harness,
    bus: gst::Bus,
}

impl Rig {
    fn new(props: &[(&str, glib::Value)], caps: &gst::Caps) -> Rig {
        init();
        let mut h = Harness::new("nonstopwatchdog");
        let el = h.element().unwrap();
        for (k, v) in props {
            el.set_property_from_value(k, v);
        }
        let bus = gst::Bus::new();
        el.set_bus(Some(&bus));
        h.set_src_caps(caps.clone());
        h.play();
        Rig { h, bus }
    }

    fn el(&self) -> gst::Element {
        self.h.element().unwrap()
    }

    fn push(&mut self, pts: ClockTime, data: Vec<u8>) {
        let mut buf = gst::Buffer::from_mut_slice(data);
        buf.get_mut().unwrap().set_pts(pts);
        self.h.push(buf).unwrap();
        let _ = self.h.pull().unwrap();
    }

    fn alarms(&self) -> Vec<gst::Structure> {
        std::iter::from_fn(|| self.bus.pop())
            .filter_map(|m| match m.view() {
                gst::MessageView::Element(e) => e
                    .structure()
                    .filter(|s| s.name() == "nonstop-alarm")
                    .map(|s| s.to_owned()),
                _ => None,
            })
            .collect()
    }

    fn errors(&self) -> Vec<String> {
        std::iter::from_fn(|| self.bus.pop())
            .filter_map(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            })
            .collect()
    }
}

fn i420() -> gst::Caps {
    init();
    gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, W as u32, H as u32)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap()
}

/// An I420 frame whose luma comes from `y(x, y)`.
fn frame(y: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut d = vec![128u8; W * H * 3 / 2];
    for row in 0..H {
        for col in 0..W {
            d[row * W + col] = y(col, row);
        }
    }
    d
}

fn kind_state(s: &gst::Structure) -> (String, String) {
    (s.get("kind").unwrap(), s.get("state").unwrap())
}

const FRAME: ClockTime = ClockTime::from_mseconds(40);

#[test]
fn black_is_raised_at_the_timeout_and_cleared_on_the_first_good_frame() {
    let second = ClockTime::SECOND.nseconds().to_value();
    let mut r = Rig::new(
        &[
            ("black-timeout", second),
            ("stall-timeout", 0u64.to_value()),
        ],
        &i420(),
    );
    // 1 s of picture, 2 s of black, then picture again.
    for n in 0..100u64 {
        let t = FRAME * n;
        let black = (25..75).contains(&n);
        r.push(t, frame(|x, _| if black { 16 } else { 60 + x as u8 }));
        let raised = r.alarms();
        match n {
            50 => {
                assert_eq!(raised.len(), 1, "raised at 1 s of black");
                assert_eq!(kind_state(&raised[0]), ("black".into(), "raised".into()));
                assert_eq!(
                    raised[0].get::<u64>("since").unwrap(),
                    (FRAME * 25).nseconds()
                );
                let luma: f64 = raised[0].get("value").unwrap();
                assert!((luma - 16.0 / 255.0).abs() < 0.01, "{luma}");
                let flags = r.el().property_value("alarms");
                let v = glib::FlagsValue::from_value(&flags).unwrap().1;
                assert_eq!(
                    v.iter().map(|f| f.nick()).collect::<Vec<_>>(),
                    vec!["black"]
                );
            }
            75 => {
                assert_eq!(raised.len(), 1, "cleared by the first good frame");
                assert_eq!(kind_state(&raised[0]), ("black".into(), "cleared".into()));
                assert_eq!(
                    raised[0].get::<u64>("duration").unwrap(),
                    (FRAME * 50).nseconds()
                );
            }
            _ => assert!(raised.is_empty(), "frame {n}: {raised:?}"),
        }
    }
}

#[test]
fn dark_scenes_are_not_black() {
    let second = ClockTime::SECOND.nseconds().to_value();
    let mut r = Rig::new(
        &[
            ("black-timeout", second),
            ("stall-timeout", 0u64.to_value()),
        ],
        &i420(),
    );
    for n in 0..60u64 {
        // A night scene: luma 30 (above 25), and a mostly black frame with
        // a lit tenth of the picture.
        let y = if n % 2 == 0 {
            frame(|_, _| 30)
        } else {
            frame(|x, _| if x < W / 10 + 1 { 200 } else { 16 })
        };
        r.push(FRAME * n, y);
    }
    assert!(r.alarms().is_empty());
}

#[test]
fn frozen_pictures_are_caught_identical_or_noisy_but_motion_is_not() {
    let second = ClockTime::SECOND.nseconds().to_value();
    let props = [
        ("freeze-timeout", second),
        ("stall-timeout", 0u64.to_value()),
    ];
    let mut seed = 12345u32;
    let mut noise = move || {
        seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
        ((seed >> 16) % 3) as u8 // 0..=2 levels of encoder-like noise
    };
    for noisy in [false, true] {
        let mut r = Rig::new(&props, &i420());
        let mut raised_at = None;
        for n in 0..40u64 {
            let nz: Vec<u8> = (0..W * H)
                .map(|_| if noisy { noise() } else { 0 })
                .collect();
            let data = frame(|x, y| ((x * 3 + y * 2) as u8).wrapping_add(nz[y * W + x]));
            r.push(FRAME * n, data);
            if !r.alarms().is_empty() {
                raised_at.get_or_insert(n);
            }
        }
        assert_eq!(
            raised_at,
            Some(25),
            "noisy={noisy}: raised within one frame of 1 s"
        );
    }
    // A slowly moving picture: a gradient shifting one pixel per frame.
    let mut r = Rig::new(&props, &i420());
    for n in 0..60u64 {
        r.push(FRAME * n, frame(|x, y| ((x + n as usize) * 4 + y) as u8));
    }
    assert!(r.alarms().is_empty());
}

fn s16_stereo() -> gst::Caps {
    init();
    gst_audio::AudioInfo::builder(gst_audio::AudioFormat::S16le, 48000, 2)
        .build()
        .unwrap()
        .to_caps()
        .unwrap()
}

/// 10 ms of a 1 kHz tone at `dbfs` RMS (0 dBFS RMS = full-scale square).
fn tone(dbfs: f64, n: u64) -> Vec<u8> {
    let amp = 10f64.powf(dbfs / 20.0) * std::f64::consts::SQRT_2 * 32767.0;
    (0..480u64)
        .flat_map(|i| {
            let t = (n * 480 + i) as f64 / 48000.0;
            let v = (amp * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16;
            [v.to_le_bytes(), v.to_le_bytes()].concat()
        })
        .collect()
}

#[test]
fn silence_and_quiet_tones_alarm_but_a_tone_does_not() {
    let half = (500 * MS).nseconds().to_value();
    let props = [
        ("silence-timeout", half),
        ("stall-timeout", 0u64.to_value()),
    ];
    let chunk = 10 * MS;
    for (what, data, expect) in [
        ("digital silence", vec![0u8; 480 * 4], true),
        ("tone at -60 dBFS", tone(-60.0, 0), true),
        ("tone at -20 dBFS", tone(-20.0, 0), false),
    ] {
        let mut r = Rig::new(&props, &s16_stereo());
        let mut raised_at = None;
        for n in 0..100u64 {
            r.push(chunk * n, data.clone());
            let a = r.alarms();
            if let Some(m) = a.first() {
                assert_eq!(kind_state(m), ("silence".into(), "raised".into()));
                let db: f64 = m.get("value").unwrap();
                assert!(db < -50.0, "{what}: {db}");
                raised_at.get_or_insert(n);
            }
        }
        assert_eq!(raised_at.is_some(), expect, "{what}");
        if expect {
            assert_eq!(raised_at, Some(50), "{what}: raised at 500 ms");
        }
    }
}

#[test]
fn stall_is_timed_by_the_clock() {
    let mut r = Rig::new(
        &[("stall-timeout", (500 * MS).nseconds().to_value())],
        &i420(),
    );
    let clock = r.h.testclock().unwrap();
    let base = r.el().base_time().unwrap();
    clock.set_time(base + 100 * MS);
    r.push(100 * MS, frame(|_, _| 100));
    // The timer waits for last-seen + timeout; no buffer has to come.
    let id = clock.wait_for_next_pending_id();
    assert_eq!(id.time(), base + 600 * MS);
    assert!(r.h.crank_single_clock_wait().is_ok());
    let a = r.alarms();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(kind_state(&a[0]), ("stall".into(), "raised".into()));
    assert_eq!(a[0].get::<u64>("since").unwrap(), (100 * MS).nseconds());
    // The stall clears with the next buffer, and tells downstream.
    clock.set_time(base + 900 * MS);
    r.push(900 * MS, frame(|_, _| 100));
    let a = r.alarms();
    assert_eq!(kind_state(&a[0]), ("stall".into(), "cleared".into()));
    assert_eq!(a[0].get::<u64>("duration").unwrap(), (800 * MS).nseconds());
    assert!((a[0].get::<f64>("value").unwrap() - 0.8).abs() < 1e-9);
}

#[test]
fn fail_on_sends_health_events_downstream() {
    let props = [
        ("black-timeout", (200 * MS).nseconds().to_value()),
        ("stall-timeout", 0u64.to_value()),
    ];
    let mut r = Rig::new(&props, &i420());
    r.el().set_property_from_str("fail-on", "black+freeze");
    let mut health = Vec::new();
    for n in 0..30u64 {
        let black = (5..15).contains(&n);
        r.push(FRAME * n, frame(|_, _| if black { 16 } else { 120 }));
        while let Some(ev) = r.h.try_pull_event() {
            if let Some(s) = ev.structure().filter(|s| s.name() == "nonstop-health") {
                assert!(ev.is_sticky());
                health.push((
                    n,
                    s.get::<bool>("healthy").unwrap(),
                    s.get::<String>("alarms").unwrap(),
                ));
            }
        }
    }
    assert_eq!(
        health,
        vec![(10, false, "black".to_string()), (15, true, String::new())]
    );
}

#[test]
fn unsupported_formats_are_a_clear_error_and_other_caps_pass() {
    init();
    let y41b = gst_video::VideoInfo::builder(gst_video::VideoFormat::Y41b, 64, 48)
        .build()
        .unwrap()
        .to_caps()
        .unwrap();
    let mut h = Harness::new("nonstopwatchdog");
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.set_src_caps(y41b);
    h.play();
    assert!(h
        .push(gst::Buffer::with_size(64 * 48 * 2).unwrap())
        .is_err());
    let errs: Vec<String> = std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .collect();
    assert!(
        errs.iter()
            .any(|e| e.contains("Y41B") && e.contains("I420")),
        "{errs:?}"
    );

    // Encoded data passes untouched: only stall detection applies.
    init();
    let h264 = gst::Caps::builder("video/x-h264")
        .field("stream-format", "byte-stream")
        .build();
    let mut r = Rig::new(&[("black-timeout", 1u64.to_value())], &h264);
    let data = vec![0u8, 0, 0, 1, 0x65, 0x88];
    let mut buf = gst::Buffer::from_slice(data.clone());
    buf.get_mut().unwrap().set_pts(ClockTime::ZERO);
    r.h.push(buf).unwrap();
    let out = r.h.pull().unwrap();
    assert_eq!(out.map_readable().unwrap().as_slice(), &data[..]);
    assert!(r.errors().is_empty());
}
