//! Deterministic tests of `nonstopswitch` on a `TestClock`.
//!
//! A `Rig` drives one or more switches (a group shares one clock): inputs
//! deliver frames on a grid, with outages the test chooses; every output slot
//! is released by cranking the clock, and every output buffer is decoded back
//! to "frame n of input i", "black" or "silence".

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::ClockTime;
use gst_check::TestClock;

const MS: ClockTime = ClockTime::MSECOND;
const T0: ClockTime = ClockTime::from_mseconds(100);

fn init() {
    use std::sync::Once;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstnonstop::plugin_register_static().unwrap();
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Frame { input: u8, seq: u64 },
    Black,
    Silence,
}

#[derive(Debug, Clone)]
struct Out {
    pts: ClockTime,
    duration: ClockTime,
    content: Content,
    /// Audio: the chunk's first sample (a switch fades in from it).
    first_sample: i16,
    /// Video: the caption bytes on the frame.
    cc: Option<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    Video,
    Audio,
}

const W: u32 = 64;
const H: u32 = 48;

fn video_caps(width: u32) -> gst::Caps {
    gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, width, H)
        .fps(gst::Fraction::new(50, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap()
}

fn audio_caps() -> gst::Caps {
    gst_audio::AudioInfo::builder(gst_audio::AudioFormat::S16le, 48000, 2)
        .build()
        .unwrap()
        .to_caps()
        .unwrap()
}

struct Switch {
    element: gst::Element,
    media: Media,
    caps: gst::Caps,
    inputs: Vec<gst::Pad>,
    seq: Vec<u64>,
    next_arrival: Vec<ClockTime>,
    rx: mpsc::Receiver<gst::Buffer>,
    events: mpsc::Receiver<gst::Event>,
    out: Vec<Out>,
}

impl Switch {
    fn period(&self) -> ClockTime {
        match self.media {
            Media::Video => 20 * MS,
            Media::Audio => 10 * MS,
        }
    }

    fn frame(&mut self, input: usize, pts: ClockTime) -> gst::Buffer {
        let seq = self.seq[input];
        self.seq[input] += 1;
        let mut buf = match self.media {
            Media::Video => {
                let mut data = vec![0x80u8; (W * H * 3 / 2) as usize];
                data[0] = 0x40 + input as u8;
                data[1..9].copy_from_slice(&seq.to_le_bytes());
                let mut buf = gst::Buffer::from_mut_slice(data);
                // Captions naming the frame, as a decoder's would.
                gst_video::VideoCaptionMeta::add(
                    buf.get_mut().unwrap(),
                    gst_video::VideoCaptionType::Cea708Raw,
                    &[0xfc, 0x40 + input as u8, seq as u8],
                );
                buf
            }
            Media::Audio => {
                let value = 1000 * (input as i16 + 1);
                let mut data = Vec::with_capacity(480 * 4);
                for _ in 0..480 * 2 {
                    data.extend_from_slice(&value.to_le_bytes());
                }
                gst::Buffer::from_mut_slice(data)
            }
        };
        buf.get_mut().unwrap().set_pts(pts);
        buf
    }
}

fn decode(media: Media, buf: &gst::Buffer) -> Content {
    let map = buf.map_readable().unwrap();
    match media {
        Media::Video => {
            if map[0] >= 0x40 && map[0] < 0x50 {
                Content::Frame {
                    input: map[0] - 0x40,
                    seq: u64::from_le_bytes(map[1..9].try_into().unwrap()),
                }
            } else {
                assert!(
                    map[..(W * H) as usize].iter().all(|&y| y == 16),
                    "neither an input frame nor black"
                );
                Content::Black
            }
        }
        Media::Audio => {
            // The last sample: the first chunk after a switch fades in.
            let n = map.len();
            let first = i16::from_le_bytes([map[n - 2], map[n - 1]]);
            if first == 0 {
                Content::Silence
            } else {
                Content::Frame {
                    input: (first / 1000 - 1) as u8,
                    seq: 0,
                }
            }
        }
    }
}

struct Rig {
    clock: TestClock,
    bus: gst::Bus,
    switches: Vec<Switch>,
    /// Inputs (switch, input) that deliver nothing at a given time.
    down: Box<dyn Fn(usize, usize, ClockTime) -> bool>,
    /// Inputs (switch, input) whose picture is black at a given time.
    black: Box<dyn Fn(usize, usize, ClockTime) -> bool>,
    /// When the buffer of (switch, input) for a given time arrives: at
    /// that time, unless held back to come in a burst.
    hold: Box<dyn Fn(usize, usize, ClockTime) -> ClockTime>,
}

impl Rig {
    fn new() -> Rig {
        init();
        Rig {
            clock: TestClock::new(),
            bus: gst::Bus::new(),
            switches: Vec::new(),
            down: Box::new(|_, _, _| false),
            black: Box::new(|_, _, _| false),
            hold: Box::new(|_, _, at| at),
        }
    }

    /// Adds a switch with `n` inputs; `props` are set before it starts.
    fn add(&mut self, media: Media, n: usize, props: &[(&str, glib::Value)]) -> usize {
        let element = gst::ElementFactory::make("nonstopswitch").build().unwrap();
        for (k, v) in props {
            element.set_property_from_value(k, v);
        }
        element.set_clock(Some(&self.clock)).unwrap();
        element.set_base_time(ClockTime::ZERO);
        element.set_start_time(ClockTime::NONE);
        element.set_bus(Some(&self.bus));

        let (tx, rx) = mpsc::channel();
        let (etx, events) = mpsc::channel();
        let sink = gst::Pad::builder(gst::PadDirection::Sink)
            .name("check_sink")
            .chain_function(move |_, _, buf| {
                tx.send(buf).unwrap();
                Ok(gst::FlowSuccess::Ok)
            })
            .event_function(move |_, _, ev| {
                let _ = etx.send(ev);
                true
            })
            .build();
        sink.set_active(true).unwrap();
        element.static_pad("src").unwrap().link(&sink).unwrap();
        // Keep the sink pad alive with the element.
        unsafe { element.set_data("check-sink", sink) };

        let caps = match media {
            Media::Video => video_caps(W),
            Media::Audio => audio_caps(),
        };
        // Inputs are requested while PLAYING, so their events reach it.
        element.set_state(gst::State::Playing).unwrap();
        let mut sw = Switch {
            element,
            media,
            caps,
            inputs: Vec::new(),
            seq: Vec::new(),
            next_arrival: Vec::new(),
            rx,
            events,
            out: Vec::new(),
        };
        for _ in 0..n {
            add_input(&mut sw);
        }
        self.switches.push(sw);
        self.switches.len() - 1
    }

    fn el(&self, s: usize) -> &gst::Element {
        &self.switches[s].element
    }

    fn sink_pad(&self, s: usize, i: usize) -> gst::Pad {
        self.switches[s].inputs[i].peer().unwrap()
    }

    /// Goes to PLAYING and primes every input with two frames at T0, so all
    /// switches start their output at T0 whatever their threads do.
    fn start(&mut self) {
        self.start_primed(2);
    }

    fn start_primed(&mut self, frames: usize) {
        self.clock.set_time(T0);
        for s in 0..self.switches.len() {
            for i in 0..self.switches[s].inputs.len() {
                if (self.down)(s, i, T0) {
                    // Starts later: delivers from its first scheduled
                    // arrival on.
                    let p = self.switches[s].period();
                    self.switches[s].next_arrival[i] = T0 + p + 2 * MS + (i as u64) * MS;
                    continue;
                }
                for _ in 0..frames {
                    self.push(s, i, T0).unwrap();
                }
                let p = self.switches[s].period();
                self.switches[s].next_arrival[i] = T0 + p + 2 * MS + (i as u64) * MS;
            }
        }
    }

    fn push(
        &mut self,
        s: usize,
        i: usize,
        pts: ClockTime,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut buf = self.switches[s].frame(i, pts);
        if (self.black)(s, i, pts) {
            let b = buf.make_mut();
            let mut map = b.map_writable().unwrap();
            map[9..(W * H) as usize].fill(16);
        }
        self.switches[s].inputs[i].push(buf)
    }

    /// Delivers every scheduled input frame due up to `t`, in time order.
    fn deliver_until(&mut self, t: ClockTime) {
        loop {
            let mut next: Option<(ClockTime, ClockTime, usize, usize)> = None;
            for (s, sw) in self.switches.iter().enumerate() {
                for (i, &at) in sw.next_arrival.iter().enumerate() {
                    if at == ClockTime::MAX {
                        continue;
                    }
                    let due = (self.hold)(s, i, at);
                    if due <= t && next.is_none_or(|n| (due, at) < (n.0, n.1)) {
                        next = Some((due, at, s, i));
                    }
                }
            }
            let Some((due, at, s, i)) = next else { return };
            let p = self.switches[s].period();
            self.switches[s].next_arrival[i] = at + p;
            if (self.down)(s, i, at) {
                continue;
            }
            if due > self.clock.time() {
                self.clock.set_time(due);
            }
            let _ = self.push(s, i, at);
        }
    }

    fn running(&self) -> u32 {
        self.switches.len() as u32
    }

    /// Releases output slots, feeding inputs in between, until the next
    /// slot would start after `end`.
    fn run_until(&mut self, end: ClockTime) {
        loop {
            // Every running switch task waits on exactly one clock id.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while self.clock.peek_id_count() < self.running() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "switch tasks did not wait on the clock"
                );
                std::thread::sleep(Duration::from_micros(200));
            }
            let next = self.clock.peek_next_pending_id().unwrap().time();
            if next > end {
                return;
            }
            self.deliver_until(next);
            if next > self.clock.time() {
                self.clock.set_time(next);
            }
            let mut released = 0;
            while let Some(id) = self
                .clock
                .peek_next_pending_id()
                .filter(|id| id.time() == next)
            {
                // gst_test_clock_process_id() takes the id's reference
                // (transfer full) but the binding lends it: give it one.
                std::mem::forget(id.clone());
                assert!(self.clock.process_id(&id));
                released += 1;
            }
            // Each released slot yields one buffer from one of the switches.
            let mut want = released;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while want > 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no output for a released slot"
                );
                for sw in self.switches.iter_mut() {
                    while let Ok(buf) = sw.rx.try_recv() {
                        let first_sample = {
                            let m = buf.map_readable().unwrap();
                            i16::from_le_bytes([m[0], m[1]])
                        };
                        sw.out.push(Out {
                            pts: buf.pts().unwrap(),
                            duration: buf.duration().unwrap(),
                            content: decode(sw.media, &buf),
                            first_sample,
                            cc: buf
                                .meta::<gst_video::VideoCaptionMeta>()
                                .map(|m| m.data().to_vec()),
                        });
                        want -= 1;
                    }
                }
                if want > 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }

    fn out(&self, s: usize) -> &[Out] {
        &self.switches[s].out
    }

    /// Element messages named `name` posted so far (drains the bus).
    fn messages(&self, name: &str) -> Vec<gst::Structure> {
        let mut v = Vec::new();
        while let Some(m) = self.bus.pop() {
            if let gst::MessageView::Element(e) = m.view() {
                if let Some(s) = e.structure().filter(|s| s.name() == name) {
                    v.push(s.to_owned());
                }
            }
        }
        v
    }

    fn all_messages(&self) -> Vec<gst::Message> {
        std::iter::from_fn(|| self.bus.pop()).collect()
    }

    fn stop(&self) {
        for sw in &self.switches {
            sw.element.set_state(gst::State::Null).unwrap();
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop();
    }
}

fn add_input(sw: &mut Switch) -> usize {
    let sinkpad = sw.element.request_pad_simple("sink_%u").unwrap();
    feed(sw, &sinkpad)
}

/// A new test input of `sw` that pushes into `pad`.
fn feed(sw: &mut Switch, pad: &gst::Pad) -> usize {
    let i = sw.inputs.len();
    let src = gst::Pad::builder(gst::PadDirection::Src)
        .name(format!("check_src_{i}"))
        .build();
    src.set_active(true).unwrap();
    src.link(pad).unwrap();
    assert!(src.push_event(gst::event::StreamStart::new(&format!("input-{i}"))));
    assert!(src.push_event(gst::event::Caps::new(&sw.caps)));
    assert!(src.push_event(gst::event::Segment::new(
        &gst::FormattedSegment::<ClockTime>::new()
    )));
    sw.inputs.push(src);
    sw.seq.push(0);
    sw.next_arrival.push(ClockTime::MAX);
    i
}

/// Like add_input, with a `nonstopwatchdog` between the input and the
/// switch, on the rig's clock.
fn add_watched_input(rig: &Rig, sw: &mut Switch, props: &[(&str, &str)]) -> gst::Element {
    let wd = gst::ElementFactory::make("nonstopwatchdog")
        .build()
        .unwrap();
    for (k, v) in props {
        wd.set_property_from_str(k, v);
    }
    wd.set_clock(Some(&rig.clock)).unwrap();
    wd.set_base_time(ClockTime::ZERO);
    wd.set_start_time(ClockTime::NONE);
    wd.set_bus(Some(&rig.bus));
    let sinkpad = sw.element.request_pad_simple("sink_%u").unwrap();
    wd.static_pad("src").unwrap().link(&sinkpad).unwrap();
    wd.set_state(gst::State::Playing).unwrap();
    feed(sw, &wd.static_pad("sink").unwrap());
    wd
}

fn field_str(s: &gst::Structure, f: &str) -> Option<String> {
    s.get::<Option<String>>(f).unwrap()
}

fn switch_summary(
    msgs: &[gst::Structure],
) -> Vec<(Option<String>, Option<String>, String, ClockTime)> {
    msgs.iter()
        .map(|s| {
            (
                field_str(s, "from"),
                field_str(s, "to"),
                s.get::<String>("reason").unwrap(),
                ClockTime::from_nseconds(s.get::<u64>("running-time").unwrap()),
            )
        })
        .collect()
}

/// The promise: one buffer per period, PTS +1 period each, no gap.
fn assert_cadence(out: &[Out], period: ClockTime) {
    assert!(!out.is_empty());
    for w in out.windows(2) {
        assert_eq!(w[1].pts, w[0].pts + period, "gap or jump after {:?}", w[0]);
        assert_eq!(w[0].duration, period);
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn fails_over_at_timeout_and_returns_after_hold_off() {
    let mut rig = Rig::new();
    let sw = rig.add(
        Media::Video,
        2,
        &[("return-after", (1000 * MS).nseconds().to_value())],
    );
    // Primary (sink_0) delivers nothing from 1 s to 3 s.
    rig.down = Box::new(|_, i, t| i == 0 && t >= ClockTime::SECOND && t < 3 * ClockTime::SECOND);
    rig.start();
    rig.run_until(5 * ClockTime::SECOND);

    let out = rig.out(sw);
    assert_cadence(out, 20 * MS);
    assert_eq!(out[0].pts, T0);
    let last_primary_arrival = 980 * MS + 2 * MS;

    let sw_msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(sw_msgs.len(), 3, "{sw_msgs:?}");
    assert_eq!(sw_msgs[0], (None, s("sink_0"), "start".into(), T0));
    let (from, to, reason, at) = sw_msgs[1].clone();
    assert_eq!(
        (from, to, reason.as_str()),
        (s("sink_0"), s("sink_1"), "stall")
    );
    let beyond = at - last_primary_arrival - 500 * MS;
    assert!(beyond <= 20 * MS, "failover {beyond} after the timeout");

    // Primary is back at 3.002 s; return only after 1 s of health.
    let (_, to, reason, back) = sw_msgs[2].clone();
    assert_eq!((to, reason.as_str()), (s("sink_0"), "recovered"));
    let first_back = 3 * ClockTime::SECOND + 2 * MS;
    assert!(
        back >= first_back + ClockTime::SECOND && back <= first_back + ClockTime::SECOND + 20 * MS,
        "{sw_msgs:?}"
    );

    // What went out: primary, its last frame repeated until the failover,
    // backup, primary again; never black.
    for o in out {
        let expect_input = if o.pts < at || o.pts >= back { 0 } else { 1 };
        match o.content {
            Content::Frame { input, .. } => assert_eq!(input, expect_input, "{o:?}"),
            other => panic!("unexpected {other:?} at {}", o.pts),
        }
    }
    let repeats = out
        .windows(2)
        .filter(|w| w[0].content == w[1].content)
        .count() as u64;
    assert_eq!(rig.el(sw).property::<u64>("frames-repeated"), repeats);
    assert!(
        (24..=26).contains(&repeats),
        "{repeats} repeats while stalled"
    );
    assert_eq!(rig.el(sw).property::<u64>("switches"), 3);
    assert_eq!(rig.el(sw).property::<u64>("frames-out"), out.len() as u64);

    let inputs = rig.messages("nonstop-input");
    assert!(inputs.is_empty(), "bus already drained");
    rig.stop();
}

#[test]
fn any_gap_beyond_clean_gap_restarts_return_after() {
    let mut rig = Rig::new();
    let sw = rig.add(
        Media::Video,
        2,
        &[("return-after", (1000 * MS).nseconds().to_value())],
    );
    assert_eq!(
        rig.el(sw).property::<u64>("clean-gap"),
        (100 * MS).nseconds()
    );
    // Off air from 1 s to 3 s. Back, it misses 3 frames at 3.4 s (an 80 ms
    // arrival gap: within one frame + clean-gap) and 10 at 3.8 s (200 ms:
    // shorter than the timeout, so no stall, but an interruption).
    rig.down = Box::new(|_, i, t| {
        let ms = t.mseconds();
        i == 0
            && ((1000..3000).contains(&ms)
                || (3400..3460).contains(&ms)
                || (3800..4000).contains(&ms))
    });
    rig.start();
    rig.run_until(6 * ClockTime::SECOND);

    assert_cadence(rig.out(sw), 20 * MS);
    let all = rig.all_messages();
    let named = |name: &str| -> Vec<gst::Structure> {
        all.iter()
            .filter_map(|m| match m.view() {
                gst::MessageView::Element(e) => e.structure().filter(|s| s.name() == name),
                _ => None,
            })
            .map(|s| s.to_owned())
            .collect()
    };
    let sw_msgs = switch_summary(&named("nonstop-switch"));
    assert_eq!(sw_msgs.len(), 3, "{sw_msgs:?}");
    let (_, to, reason, back) = sw_msgs[2].clone();
    assert_eq!((to, reason.as_str()), (s("sink_0"), "recovered"));
    let resumed = 4 * ClockTime::SECOND + 2 * MS;
    assert!(
        back >= resumed + ClockTime::SECOND && back <= resumed + ClockTime::SECOND + 20 * MS,
        "return-after counts from the 200 ms gap's end, not from 3 s: {sw_msgs:?}"
    );
    // The 200 ms gap was reported (the 80 ms one was not), with its length.
    let interrupted: Vec<(String, u64)> = named("nonstop-input")
        .iter()
        .filter(|m| m.get::<String>("state").unwrap() == "interrupted")
        .map(|m| {
            (
                m.get("pad").unwrap(),
                m.get::<u64>("gap").unwrap() / 1_000_000,
            )
        })
        .collect();
    assert_eq!(interrupted, [("sink_0".to_owned(), 220)]);
    rig.stop();
}

#[test]
fn a_flapping_input_waits_a_doubled_hold_off() {
    let mut rig = Rig::new();
    let sw = rig.add(
        Media::Video,
        2,
        &[("return-after", (1000 * MS).nseconds().to_value())],
    );
    // Two outages 2.5 s apart: the second failover comes within the flap
    // window of the first, so the primary must stay clean 2 s, not 1 s.
    rig.down = Box::new(|_, i, t| {
        let ms = t.mseconds();
        i == 0 && ((1000..2000).contains(&ms) || (3500..4500).contains(&ms))
    });
    rig.start();
    rig.run_until(4 * ClockTime::SECOND);
    let p0 = rig.sink_pad(sw, 0);
    assert_eq!(p0.property::<u64>("return-holdoff"), (2000 * MS).nseconds());
    rig.run_until(8 * ClockTime::SECOND);

    assert_cadence(rig.out(sw), 20 * MS);
    let msgs = rig.messages("nonstop-switch");
    let summary = switch_summary(&msgs);
    let reasons: Vec<&str> = summary.iter().map(|m| m.2.as_str()).collect();
    assert_eq!(
        reasons,
        ["start", "stall", "recovered", "stall", "recovered"],
        "{summary:?}"
    );
    let holdoffs: Vec<u64> = msgs
        .iter()
        .map(|m| m.get::<u64>("return-holdoff").unwrap() / 1_000_000)
        .collect();
    // The hold-off of the input left: the backup never failed, so its own
    // stays at return-after.
    assert_eq!(holdoffs, [0, 1000, 1000, 2000, 1000]);
    let first = 2 * ClockTime::SECOND + 2 * MS;
    assert!(
        summary[2].3 >= first + ClockTime::SECOND
            && summary[2].3 <= first + ClockTime::SECOND + 20 * MS
    );
    let second = 4500 * MS + 2 * MS;
    assert!(
        summary[4].3 >= second + 2 * ClockTime::SECOND
            && summary[4].3 <= second + 2 * ClockTime::SECOND + 20 * MS,
        "{summary:?}"
    );
    rig.stop();
}

#[test]
fn at_start_a_backup_waits_the_grace_for_a_late_primary() {
    // The primary's first frame comes 300 ms after the backup's: the output
    // starts on it, black until then, and never on the backup.
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    assert_eq!(
        rig.el(sw).property::<u64>("startup-grace"),
        ClockTime::SECOND.nseconds()
    );
    rig.down = Box::new(|_, i, t| i == 0 && t < T0 + 300 * MS);
    rig.start();
    rig.run_until(T0 + ClockTime::SECOND);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 1, "one start, no cut: {msgs:?}");
    let (from, to, reason, at) = msgs[0].clone();
    assert_eq!((from, to, reason.as_str()), (None, s("sink_0"), "start"));
    assert!(at >= T0 + 300 * MS && at <= T0 + 340 * MS, "{at}");
    let out = rig.out(sw);
    assert_cadence(out, 20 * MS);
    assert!(out
        .iter()
        .take_while(|o| o.pts < at)
        .all(|o| o.content == Content::Black));
    assert!(out
        .iter()
        .skip_while(|o| o.pts < at)
        .all(|o| matches!(o.content, Content::Frame { input: 0, .. })));
    rig.stop();

    // A primary that never comes: the backup after the grace.
    let mut rig = Rig::new();
    let sw = rig.add(
        Media::Video,
        2,
        &[("startup-grace", (500 * MS).nseconds().to_value())],
    );
    rig.down = Box::new(|_, i, _| i == 0);
    rig.start();
    rig.run_until(T0 + ClockTime::SECOND);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(
        (msgs[0].1.clone(), msgs[0].2.as_str()),
        (s("sink_1"), "start")
    );
    assert!(
        msgs[0].3 >= T0 + 500 * MS && msgs[0].3 <= T0 + 520 * MS,
        "{msgs:?}"
    );
    assert_cadence(rig.out(sw), 20 * MS);
    rig.stop();
}

#[test]
fn input_messages_and_pad_properties_follow_health() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    rig.down = Box::new(|_, i, t| i == 1 && t >= 500 * MS);
    rig.start();
    rig.run_until(1500 * MS);
    let msgs = rig.messages("nonstop-input");
    let states: Vec<(String, String)> = msgs
        .iter()
        .map(|m| (m.get("pad").unwrap(), m.get("state").unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("sink_0".into(), "healthy".into()),
            ("sink_1".into(), "healthy".into()),
            ("sink_1".into(), "stalled".into()),
        ]
    );
    let p1 = rig.sink_pad(sw, 1);
    let state: String = {
        let v = p1.property_value("state");
        let e = glib::EnumValue::from_value(&v).unwrap().1;
        e.nick().to_owned()
    };
    assert_eq!(state, "stalled");
    let last_seen = p1.property::<u64>("last-seen");
    assert_eq!(last_seen, (480 * MS + 3 * MS).nseconds());
    let frames_in = rig.sink_pad(sw, 0).property::<u64>("frames-in");
    assert!(frames_in >= 70, "{frames_in}");
    assert_eq!(rig.sink_pad(sw, 1).property::<u32>("priority"), 1);
    rig.stop();
}

#[test]
fn all_lost_repeats_then_black_then_recovers() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 1, &[]);
    rig.down = Box::new(|_, _, t| t >= ClockTime::SECOND && t < 4 * ClockTime::SECOND);
    rig.start();
    rig.run_until(5 * ClockTime::SECOND);
    let out = rig.out(sw);
    assert_cadence(out, 20 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    let (_, to, reason, lost_at) = msgs[1].clone();
    assert_eq!((to, reason.as_str()), (None, "all-lost"));
    let (_, to, reason, back_at) = msgs[2].clone();
    assert_eq!((to, reason.as_str()), (s("sink_0"), "recovered"));
    assert!(back_at >= 4 * ClockTime::SECOND && back_at <= 4 * ClockTime::SECOND + 40 * MS);

    let last = out.iter().rfind(|o| o.pts < lost_at).unwrap().content;
    for o in out.iter().filter(|o| o.pts >= lost_at && o.pts < back_at) {
        let expect = if o.pts < lost_at + ClockTime::SECOND {
            last
        } else {
            Content::Black
        };
        assert_eq!(o.content, expect, "at {}", o.pts);
    }
    let black = out.iter().filter(|o| o.content == Content::Black).count() as u64;
    assert_eq!(rig.el(sw).property::<u64>("frames-black"), black);
    assert!(black > 50, "{black}");
    assert!(matches!(
        out.last().unwrap().content,
        Content::Frame { input: 0, .. }
    ));
    rig.stop();
}

#[test]
fn captions_go_with_their_frame_never_with_a_repeat_or_black() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    // The primary fails at 1 s (the backup goes on air), both are lost
    // from 3 s to 5 s (repeats, then black), the backup is back at 5 s.
    rig.down = Box::new(|_, i, t| {
        (i == 0 && t >= ClockTime::SECOND)
            || (t >= 3 * ClockTime::SECOND && t < 5 * ClockTime::SECOND)
    });
    rig.start();
    rig.run_until(6 * ClockTime::SECOND);
    let out = rig.out(sw);
    assert_cadence(out, 20 * MS);
    let (mut fresh, mut repeats, mut black) = (0, 0, 0);
    let mut last = None;
    for o in out {
        match o.content {
            Content::Frame { input, seq } if last != Some(o.content) => {
                fresh += 1;
                assert_eq!(
                    o.cc.as_deref(),
                    Some(&[0xfc, 0x40 + input, seq as u8][..]),
                    "at {}: the frame's own captions",
                    o.pts
                );
            }
            Content::Frame { .. } => {
                repeats += 1;
                assert_eq!(o.cc, None, "at {}: a repeat carries no captions", o.pts);
            }
            _ => {
                black += 1;
                assert_eq!(o.cc, None, "at {}: black carries no captions", o.pts);
            }
        }
        last = Some(o.content);
    }
    assert!(
        fresh > 100 && repeats > 20 && black > 20,
        "{fresh} {repeats} {black}"
    );
    let backup_frames = out
        .iter()
        .filter(|o| matches!(o.content, Content::Frame { input: 1, .. }))
        .count();
    assert!(
        backup_frames > 50,
        "the backup went on air: {backup_frames}"
    );
    rig.stop();
}

#[test]
fn manual_mode_switches_now_and_fails_over_only_if_allowed() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    // sink_1 goes down from 1.5 s.
    rig.down = Box::new(|_, i, t| i == 1 && t >= 1500 * MS);
    rig.start();
    rig.run_until(500 * MS);
    let p1 = rig.sink_pad(sw, 1);
    rig.el(sw).set_property("active-pad", &p1);
    let mode = rig.el(sw).property_value("mode");
    assert_eq!(
        glib::EnumValue::from_value(&mode).unwrap().1.nick(),
        "manual"
    );
    rig.run_until(1000 * MS);
    let active: gst::Pad = rig.el(sw).property("active-pad");
    assert_eq!(active, p1);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs[1].2, "manual");
    assert!(msgs[1].3 > 500 * MS && msgs[1].3 <= 540 * MS, "{msgs:?}");

    // manual-failover (default true): sink_1 stalls, sink_0 takes over.
    rig.run_until(2500 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(
        (msgs[0].1.clone(), msgs[0].2.as_str()),
        (s("sink_0"), "stall")
    );
    rig.stop();

    // Pinned: the same outage keeps sink_1 on air (repeat, then black).
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[("manual-failover", false.to_value())]);
    rig.down = Box::new(|_, i, t| i == 1 && t >= 1500 * MS);
    rig.start();
    rig.run_until(500 * MS);
    let p1 = rig.sink_pad(sw, 1);
    rig.el(sw).set_property("active-pad", &p1);
    rig.run_until(4000 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let out = rig.out(sw);
    assert_cadence(out, 20 * MS);
    assert!(out
        .iter()
        .filter(|o| o.pts > 1600 * MS)
        .all(|o| !matches!(o.content, Content::Frame { input: 0, .. })));
    assert_eq!(out.last().unwrap().content, Content::Black);

    // Back to auto: the best input returns (it has been healthy for long).
    rig.el(sw).set_property_from_str("mode", "auto");
    rig.run_until(4100 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].1, s("sink_0"));
    rig.stop();
}

#[test]
fn auto_return_off_stays_on_backup() {
    let mut rig = Rig::new();
    let sw = rig.add(
        Media::Video,
        2,
        &[
            ("auto-return", false.to_value()),
            ("return-after", (100 * MS).nseconds().to_value()),
        ],
    );
    rig.down = Box::new(|_, i, t| i == 0 && t >= 500 * MS && t < 1500 * MS);
    rig.start();
    rig.run_until(3000 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(matches!(
        rig.out(sw).last().unwrap().content,
        Content::Frame { input: 1, .. }
    ));
    rig.stop();
}

#[test]
fn priority_property_decides_the_order() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    rig.sink_pad(sw, 0).set_property("priority", 5u32);
    rig.sink_pad(sw, 1).set_property("priority", 1u32);
    rig.start();
    rig.run_until(300 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs[0].1, s("sink_1"));
    rig.stop();
}

#[test]
fn timeout_changes_while_playing() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    rig.down = Box::new(|_, i, t| i == 0 && t >= ClockTime::SECOND);
    rig.start();
    rig.run_until(900 * MS);
    rig.el(sw).set_property("timeout", (200 * MS).nseconds());
    rig.run_until(2 * ClockTime::SECOND);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    let stall_at = msgs[1].3;
    let last = 980 * MS + 2 * MS;
    assert!(
        stall_at >= last + 200 * MS && stall_at <= last + 220 * MS,
        "{stall_at}"
    );
    rig.stop();
}

#[test]
fn eos_is_input_loss_and_goes_downstream_when_all_inputs_end() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    rig.start();
    rig.run_until(400 * MS);
    assert!(rig.switches[sw].inputs[0].push_event(gst::event::Eos::new()));
    rig.down = Box::new(|_, i, _| i == 0);
    rig.run_until(800 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    let msgs = &msgs[1..];
    assert_eq!(
        (msgs[0].1.clone(), msgs[0].2.as_str()),
        (s("sink_1"), "eos")
    );
    assert!(
        msgs[0].3 <= 440 * MS,
        "failover on EOS is immediate: {msgs:?}"
    );
    let events: Vec<_> = rig.switches[sw]
        .events
        .try_iter()
        .map(|e| e.type_())
        .collect();
    assert!(!events.contains(&gst::EventType::Eos));
    assert_cadence(rig.out(sw), 20 * MS);

    assert!(rig.switches[sw].inputs[1].push_event(gst::event::Eos::new()));
    rig.clock.set_time(rig.clock.time() + 20 * MS);
    let id = rig.clock.wait_for_next_pending_id();
    std::mem::forget(id.clone());
    rig.clock.process_id(&id);
    let ev = rig.switches[sw]
        .events
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(ev.type_(), gst::EventType::Eos);
    rig.stop();
}

#[test]
fn eos_sent_to_the_element_ends_the_output() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    rig.start();
    rig.run_until(200 * MS);
    let _: Vec<_> = rig.switches[sw].events.try_iter().collect();
    assert!(rig.el(sw).send_event(gst::event::Eos::new()));
    let id = rig.clock.wait_for_next_pending_id();
    rig.clock.set_time(id.time());
    std::mem::forget(id.clone());
    rig.clock.process_id(&id);
    let ev = rig.switches[sw]
        .events
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(ev.type_(), gst::EventType::Eos);
    // The inputs were not told anything: they simply no longer matter.
    let state = rig.sink_pad(sw, 0).property_value("state");
    assert_eq!(
        glib::EnumValue::from_value(&state).unwrap().1.nick(),
        "healthy"
    );
}

#[test]
fn releasing_the_pad_on_air_names_it() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    rig.start();
    rig.run_until(200 * MS);
    let pad = rig.sink_pad(sw, 0);
    rig.el(sw).release_request_pad(&pad);
    rig.switches[sw].next_arrival[0] = ClockTime::MAX;
    rig.run_until(300 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(
        (msgs[1].0.clone(), msgs[1].1.clone(), msgs[1].2.as_str()),
        (s("sink_0"), s("sink_1"), "eos")
    );
}

#[test]
fn optional_caps_fields_do_not_make_a_mismatch() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    let mut richer = video_caps(W);
    richer.make_mut().set("multiview-mode", "mono");
    richer.make_mut().set("chroma-site", "mpeg2");
    richer.make_mut().set("colorimetry", "bt601");
    rig.switches[sw].inputs[1].push_event(gst::event::Caps::new(&richer));
    rig.start();
    rig.run_until(200 * MS);
    assert!(!rig
        .all_messages()
        .iter()
        .any(|m| matches!(m.view(), gst::MessageView::Error(_))));
    assert_cadence(rig.out(sw), 20 * MS);
}

#[test]
fn caps_mismatch_is_an_error_naming_pad_and_both_caps() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    rig.start();
    rig.run_until(100 * MS);
    let other = video_caps(W * 2);
    rig.switches[sw].inputs[1].push_event(gst::event::Caps::new(&other));
    assert!(rig.switches[sw].inputs[1]
        .push(gst::Buffer::with_size(10).unwrap())
        .is_err());
    let err = rig
        .all_messages()
        .into_iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an error message");
    assert!(err.contains("sink_1"), "{err}");
    assert!(err.contains("width=(int)128"), "{err}");
    assert!(err.contains("width=(int)64"), "{err}");
    assert!(err.contains("sink_0"), "{err}");
    // The output goes on from sink_0.
    rig.run_until(300 * MS);
    assert_cadence(rig.out(sw), 20 * MS);
    rig.stop();

    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 1, &[]);
    let h264 = gst::Caps::builder("video/x-h264")
        .field("stream-format", "byte-stream")
        .build();
    rig.switches[sw].inputs[0].push_event(gst::event::Caps::new(&h264));
    let err = rig
        .all_messages()
        .into_iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an error message");
    assert!(
        err.contains("sink_0") && err.contains("video/x-h264") && err.contains("raw"),
        "{err}"
    );
}

#[test]
fn grouped_video_and_audio_switch_at_the_same_running_time() {
    let mut rig = Rig::new();
    let props = [("group", "test-av-1".to_value())];
    let v = rig.add(Media::Video, 2, &props);
    let a = rig.add(Media::Audio, 2, &props);
    // Only the AUDIO of input 0 dies at 1 s: the whole input must go.
    rig.down = Box::new(move |s, i, t| s == a && i == 0 && t >= ClockTime::SECOND);
    rig.start();
    rig.run_until(2 * ClockTime::SECOND);

    assert_cadence(rig.out(v), 20 * MS);
    assert_cadence(rig.out(a), 10 * MS);
    let all = rig.all_messages();
    let by = |el: &gst::Element| {
        let v: Vec<gst::Structure> = all
            .iter()
            .filter(|m| m.src() == Some(el.upcast_ref()))
            .filter_map(|m| match m.view() {
                gst::MessageView::Element(e) => e
                    .structure()
                    .filter(|s| s.name() == "nonstop-switch")
                    .map(|s| s.to_owned()),
                _ => None,
            })
            .collect();
        switch_summary(&v)
    };
    let vm = by(rig.el(v));
    let am = by(rig.el(a));
    assert_eq!(vm.len(), 2, "{vm:?}");
    assert_eq!(vm, am, "both members switch the same way at the same time");
    assert_eq!(vm[1].2, "stall");
    let cut = vm[1].3;
    let first_backup = |out: &[Out]| {
        out.iter()
            .find(|o| matches!(o.content, Content::Frame { input: 1, .. }))
            .unwrap()
            .pts
    };
    assert_eq!(first_backup(rig.out(v)), cut);
    assert_eq!(first_backup(rig.out(a)), cut);
    // The audio cut fades in from silence (input 0's audio had stopped)
    // instead of starting mid-waveform; the chunk after it is plain.
    let at_cut = rig.out(a).iter().position(|o| o.pts == cut).unwrap();
    assert!(rig.out(a)[at_cut].first_sample.abs() < 50);
    assert_eq!(rig.out(a)[at_cut + 1].first_sample, 2000);
    // Audio before the cut is input 0 or (once it stalled) silence; video
    // is input 0 throughout until the cut.
    assert!(rig
        .out(v)
        .iter()
        .filter(|o| o.pts < cut)
        .all(|o| matches!(o.content, Content::Frame { input: 0, .. })));
    assert!(rig
        .out(a)
        .iter()
        .filter(|o| o.pts < cut)
        .all(|o| o.content != Content::Frame { input: 1, seq: 0 }));
    rig.stop();
}

#[test]
fn audio_keeps_chunk_cadence_and_fills_silence() {
    let mut rig = Rig::new();
    let a = rig.add(Media::Audio, 1, &[]);
    rig.down = Box::new(|_, _, t| t >= 500 * MS && t < 1000 * MS);
    rig.start();
    rig.run_until(1500 * MS);
    let out = rig.out(a);
    assert_cadence(out, 10 * MS);
    let silent: Vec<_> = out
        .iter()
        .filter(|o| o.content == Content::Silence)
        .collect();
    // Nothing arrives for 500 ms: about 50 chunks of silence, no more.
    assert!((45..=55).contains(&silent.len()), "{}", silent.len());
    assert!(matches!(
        out.last().unwrap().content,
        Content::Frame { input: 0, .. }
    ));
    rig.stop();
}

#[test]
fn bursty_audio_is_played_whole() {
    // A TS input's audio comes in bursts: a PES of several AAC frames, a
    // muxer's interleaving. Here 200 ms of it at once, every 200 ms. The
    // switch must hold a burst, not cut it to one buffer's worth and fill
    // the rest of the wait with silence.
    let mut rig = Rig::new();
    let a = rig.add(Media::Audio, 1, &[]);
    let burst = 200 * MS;
    rig.hold = Box::new(move |_, _, at| {
        ClockTime::from_nseconds(at.nseconds().div_ceil(burst.nseconds()) * burst.nseconds())
    });
    rig.start();
    rig.run_until(3000 * MS);
    let out = rig.out(a);
    assert_cadence(out, 10 * MS);
    // Once the first bursts have shown how the input comes, every chunk
    // is the input's.
    let settled: Vec<_> = out.iter().filter(|o| o.pts >= 1000 * MS).collect();
    let silent = settled
        .iter()
        .filter(|o| o.content == Content::Silence)
        .count();
    assert_eq!(silent, 0, "{silent} of {} chunks silent", settled.len());
    rig.stop();
}

#[test]
fn pads_come_and_go_while_playing() {
    let mut rig = Rig::new();
    let sw = rig.add(
        Media::Video,
        1,
        &[("return-after", (200 * MS).nseconds().to_value())],
    );
    rig.down = Box::new(|_, i, t| i == 0 && t >= 600 * MS);
    rig.start();
    rig.run_until(300 * MS);

    // A backup appears while playing.
    let i = add_input(&mut rig.switches[sw]);
    rig.switches[sw].next_arrival[i] = rig.clock.time() + 5 * MS;
    rig.run_until(1500 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(
        (msgs[1].1.clone(), msgs[1].2.as_str()),
        (s("sink_1"), "stall")
    );

    // The backup on air is released: nothing healthy is left.
    let pad = rig.sink_pad(sw, 1);
    rig.el(sw).release_request_pad(&pad);
    rig.switches[sw].next_arrival[1] = ClockTime::MAX;
    rig.run_until(2000 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!((msgs[0].1.clone(), msgs[0].2.as_str()), (None, "all-lost"));
    assert_cadence(rig.out(sw), 20 * MS);
    let names: HashSet<String> = rig
        .el(sw)
        .sink_pads()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    assert_eq!(names, HashSet::from(["sink_0".to_string()]));
    rig.stop();
}

#[test]
fn flushing_an_input_does_not_stop_the_output() {
    let mut rig = Rig::new();
    let sw = rig.add(Media::Video, 2, &[]);
    rig.start();
    rig.run_until(300 * MS);
    let src = rig.switches[sw].inputs[0].clone();
    assert!(src.push_event(gst::event::FlushStart::new()));
    assert!(src.push_event(gst::event::FlushStop::new(true)));
    assert!(src.push_event(gst::event::Segment::new(
        &gst::FormattedSegment::<ClockTime>::new()
    )));
    rig.run_until(800 * MS);
    assert_cadence(rig.out(sw), 20 * MS);
    let events: Vec<_> = rig.switches[sw]
        .events
        .try_iter()
        .map(|e| e.type_())
        .collect();
    assert!(!events.contains(&gst::EventType::FlushStart), "{events:?}");
    rig.stop();
}

#[test]
fn latency_query_adds_one_period_plus_latency() {
    let mut rig = Rig::new();
    let sw = rig.add(
        Media::Video,
        2,
        &[("latency", (30 * MS).nseconds().to_value())],
    );
    // With 30 ms of jitter allowance the output waits for 70 ms of input.
    rig.start_primed(3);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        rig.clock.peek_id_count(),
        0,
        "started before the allowance was queued"
    );
    rig.start_primed(1);
    rig.run_until(100 * MS);
    let mut q = gst::query::Latency::new();
    assert!(rig.el(sw).static_pad("src").unwrap().query(&mut q));
    let (live, min, max) = q.result();
    assert!(live);
    assert_eq!(min, 50 * MS);
    assert_eq!(max, ClockTime::NONE);
    rig.stop();
}

#[test]
fn a_watchdog_makes_the_switch_fail_over_on_black_and_return_after_recovery() {
    let mut rig = Rig::new();
    let sw = rig.add(
        Media::Video,
        0,
        &[("return-after", (1000 * MS).nseconds().to_value())],
    );
    // sink_0 through a watchdog that fails on black, sink_1 plain.
    let mut swd = rig.switches.remove(sw);
    let wd = add_watched_input(
        &rig,
        &mut swd,
        &[
            ("black-timeout", "500000000"),
            ("stall-timeout", "0"),
            ("fail-on", "black"),
        ],
    );
    add_input(&mut swd);
    rig.switches.push(swd);
    // The primary's picture is black from 1 s to 3 s; data keeps flowing.
    rig.black = Box::new(|_, i, t| i == 0 && t >= ClockTime::SECOND && t < 3 * ClockTime::SECOND);
    rig.start();
    rig.run_until(5 * ClockTime::SECOND);

    assert_cadence(rig.out(sw), 20 * MS);
    let msgs = switch_summary(&rig.messages("nonstop-switch"));
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    let (from, to, reason, at) = msgs[1].clone();
    assert_eq!(
        (from, to, reason.as_str()),
        (s("sink_0"), s("sink_1"), "stall")
    );
    // First black frame at 1.002 s; black for 500 ms; the next slot cuts.
    assert!(
        at >= 1502 * MS && at <= 1502 * MS + 40 * MS,
        "failover at {at}"
    );
    let (_, to, reason, back) = msgs[2].clone();
    assert_eq!((to, reason.as_str()), (s("sink_0"), "recovered"));
    // First good frame at 3.002 s, then return-after (1 s).
    assert!(
        back >= 4002 * MS && back <= 4002 * MS + 40 * MS,
        "returned at {back}"
    );
    let flags = wd.property_value("alarms");
    assert!(glib::FlagsValue::from_value(&flags).unwrap().1.is_empty());
    wd.set_state(gst::State::Null).unwrap();
}
