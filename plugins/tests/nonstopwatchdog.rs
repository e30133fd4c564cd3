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

/// 10 ms of a stereo 1 kHz tone that reads `lufs`: BS.1770 weighs 1 kHz
/// by 0 dB net, so a sine's loudness is its peak level, RMS + 3.01 dB.
fn at_lufs(lufs: f64, n: u64) -> Vec<u8> {
    tone(lufs - 3.0103, n)
}

/// Element messages named `name` from the bus, others dropped.
fn messages(bus: &gst::Bus, name: &str) -> Vec<gst::Structure> {
    std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == name)
                .map(|s| s.to_owned()),
            _ => None,
        })
        .collect()
}

const CHUNK: ClockTime = ClockTime::from_mseconds(10);

#[test]
fn loudness_is_posted_each_interval_and_reads_the_reference_sine() {
    let props = [
        ("loudness-interval", ClockTime::SECOND.nseconds().to_value()),
        ("stall-timeout", 0u64.to_value()),
    ];
    let mut r = Rig::new(&props, &s16_stereo());
    let mut got = Vec::new();
    for n in 0..1000u64 {
        r.push(CHUNK * n, at_lufs(-23.0, n));
        got.extend(messages(&r.bus, "nonstop-loudness"));
    }
    let times: Vec<u64> = got
        .iter()
        .map(|s| s.get::<u64>("running-time").unwrap() / 1_000_000)
        .collect();
    assert_eq!(times, (1..=9).map(|s| s * 1000).collect::<Vec<_>>());
    // EBU Tech 3341 case 1 (−23 LUFS 1 kHz): −23.0 ± 0.1 LU.
    let last = got.last().unwrap();
    for field in ["momentary", "short-term", "integrated", "true-peak"] {
        let v: f64 = last.get(field).unwrap();
        assert!((v + 23.0).abs() <= 0.1, "{field} {v}");
    }
    assert!(last.get::<f64>("range").unwrap() < 0.5);
    // Momentary is a 400 ms window: right from the first reading.
    assert!((got[0].get::<f64>("momentary").unwrap() + 23.0).abs() <= 0.1);
}

/// (seconds, kind, state) of every alarm while `chunks` are pushed, and
/// the health told downstream with the time it changed.
type Seen = (Vec<(f64, String, String, f64)>, Vec<(f64, bool, String)>);

fn run_levels(
    props: &[(&str, glib::Value)],
    fail_on: &str,
    level: impl Fn(u64) -> Vec<u8>,
    chunks: u64,
) -> Seen {
    let mut r = Rig::new(props, &s16_stereo());
    r.el().set_property_from_str("fail-on", fail_on);
    let (mut alarms, mut health) = (Vec::new(), Vec::new());
    for n in 0..chunks {
        r.push(CHUNK * n, level(n));
        let secs = (CHUNK * n).nseconds() as f64 / 1e9;
        for a in messages(&r.bus, "nonstop-alarm") {
            let (k, s) = kind_state(&a);
            alarms.push((secs, k, s, a.get::<f64>("value").unwrap()));
        }
        while let Some(ev) = r.h.try_pull_event() {
            if let Some(s) = ev.structure().filter(|s| s.name() == "nonstop-health") {
                health.push((secs, s.get("healthy").unwrap(), s.get("alarms").unwrap()));
            }
        }
    }
    (alarms, health)
}

fn within(v: f64, lo: f64, hi: f64) -> bool {
    (lo..=hi).contains(&v)
}

#[test]
fn a_jump_to_loud_raises_jump_then_loud_which_fails_the_input() {
    let props = [
        ("loud-timeout", (2000 * MS).nseconds().to_value()),
        ("jump-timeout", (100 * MS).nseconds().to_value()),
        ("stall-timeout", 0u64.to_value()),
    ];
    // −23 LUFS for 6 s, −8 for 10 s, −23 again for 6 s.
    let level = |n: u64| {
        at_lufs(
            if (600..1600).contains(&n) {
                -8.0
            } else {
                -23.0
            },
            n,
        )
    };
    let (alarms, health) = run_levels(&props, "loud", level, 2200);
    let at = |kind: &str, state: &str| -> Vec<(f64, f64)> {
        alarms
            .iter()
            .filter(|a| a.1 == kind && a.2 == state)
            .map(|a| (a.0, a.3))
            .collect()
    };
    // The 3 s short-term window passes 10 LU up 0.88 s after the step.
    let jumps = at("jump", "raised");
    assert_eq!(jumps.len(), 2, "up and down: {alarms:?}");
    assert!(
        within(jumps[0].0, 6.8, 7.2) && jumps[0].1 >= 10.0,
        "{jumps:?}"
    );
    // Down: 10 LU under −8 is 2.8 s after the step back.
    assert!(within(jumps[1].0, 18.6, 19.1), "{jumps:?}");
    let loud = at("loud", "raised");
    assert_eq!(loud.len(), 1, "{alarms:?}");
    // Over −13 at 6.88 s, held for the 2 s timeout.
    assert!(within(loud[0].0, 8.8, 9.1) && loud[0].1 > -13.0, "{loud:?}");
    let cleared = at("loud", "cleared");
    assert!(
        cleared.len() == 1 && within(cleared[0].0, 17.9, 18.4),
        "{cleared:?}"
    );
    // fail-on loud: unhealthy while loud, healthy again after; jump is
    // not in fail-on and says nothing downstream.
    assert_eq!(health.len(), 2, "{health:?}");
    assert_eq!(
        (health[0].0, health[0].1, health[0].2.as_str()),
        (loud[0].0, false, "loud")
    );
    assert_eq!((health[1].0, health[1].1), (cleared[0].0, true));
}

#[test]
fn quiet_waits_for_a_whole_window_and_true_peak_holds_a_second() {
    let props = [
        ("quiet-timeout", (1000 * MS).nseconds().to_value()),
        ("stall-timeout", 0u64.to_value()),
    ];
    let (alarms, _) = run_levels(&props, "quiet", |n| at_lufs(-45.0, n), 500);
    // A window still filling reads low: quiet is judged from 3 s on, so
    // the one-second timeout raises it at 4 s, not at 1 s.
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert!(
        within(alarms[0].0, 3.99, 4.11) && alarms[0].2 == "raised",
        "{alarms:?}"
    );
    assert!((alarms[0].3 + 45.0).abs() < 0.2, "{alarms:?}");

    let props = [
        ("true-peak-timeout", (100 * MS).nseconds().to_value()),
        ("true-peak-limit", (-1.0f64).to_value()),
        ("stall-timeout", 0u64.to_value()),
    ];
    // Half a second peaking at −0.5 dBFS (over −1 dBTP) between −23 LUFS.
    let level = |n: u64| at_lufs(if (200..250).contains(&n) { -0.5 } else { -23.0 }, n);
    let (alarms, _) = run_levels(&props, "", level, 500);
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    assert_eq!(
        (alarms[0].1.as_str(), alarms[0].2.as_str()),
        ("true-peak", "raised")
    );
    assert!(within(alarms[0].0, 2.1, 2.3), "{alarms:?}");
    assert!((alarms[0].3 + 0.5).abs() < 0.3, "{alarms:?}");
    // Cleared a second after the last peak over the limit (2.5 s).
    assert_eq!(alarms[1].2, "cleared");
    assert!(within(alarms[1].0, 3.4, 3.7), "{alarms:?}");
}

#[test]
fn pictures_without_captions_raise_no_captions_which_can_fail_the_input() {
    let mut r = Rig::new(
        &[
            ("captions-timeout", ClockTime::SECOND.nseconds().to_value()),
            ("stall-timeout", 0u64.to_value()),
        ],
        &i420(),
    );
    r.el().set_property_from_str("fail-on", "no-captions");
    // 1 s with captions, 2 s without, then captions again.
    let mut seen = Vec::new();
    let mut health = Vec::new();
    for n in 0..100u64 {
        let mut buf = gst::Buffer::from_mut_slice(frame(|x, _| x as u8));
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(FRAME * n);
            if !(25..75).contains(&n) {
                gst_video::VideoCaptionMeta::add(
                    b,
                    gst_video::VideoCaptionType::Cea708Raw,
                    &[0xf8, 0x80, 0x80],
                );
            }
        }
        r.h.push(buf).unwrap();
        let out = r.h.pull().unwrap();
        assert_eq!(
            gstnonstop::captions::has(&out),
            !(25..75).contains(&n),
            "frame {n}: the captions pass as they came"
        );
        for a in r.alarms() {
            seen.push((n, kind_state(&a)));
        }
        while let Some(ev) = r.h.try_pull_event() {
            if let Some(s) = ev.structure().filter(|s| s.name() == "nonstop-health") {
                health.push((n, s.get::<bool>("healthy").unwrap()));
            }
        }
    }
    let k = |s: &str| ("no-captions".to_string(), s.to_string());
    assert_eq!(seen, vec![(50, k("raised")), (75, k("cleared"))]);
    assert_eq!(health, vec![(50, false), (75, true)]);
}
