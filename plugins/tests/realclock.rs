//! Real-clock integration test: two live `videotestsrc` through
//! `nonstopswitch`, the primary stalled by a `valve`. Real time is the point
//! here, so bounds are generous enough for a loaded 2-core machine; the
//! tight figures live in the benchmark (scripts/bench).

use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst::ClockTime;

const MS: ClockTime = ClockTime::MSECOND;
const BACKUP_TAG: u64 = 1 << 40;

#[derive(Debug, Clone, Copy)]
struct Seen {
    arrival: ClockTime,
    pts: ClockTime,
    backup: bool,
}

fn wait_until(pipeline: &gst::Pipeline, running_time: ClockTime) {
    let clock = pipeline.clock().unwrap();
    let id = clock.new_single_shot_id(pipeline.base_time().unwrap() + running_time);
    let _ = id.wait();
}

fn running_time(pipeline: &gst::Pipeline) -> ClockTime {
    pipeline.clock().unwrap().time() - pipeline.base_time().unwrap()
}

#[test]
fn live_sources_keep_cadence_through_a_stall() {
    gst::init().unwrap();
    gstnonstop::plugin_register_static().unwrap();

    let caps = "video/x-raw,format=I420,width=160,height=120,framerate=50/1";
    let pipeline = gst::parse::launch(&format!(
        "nonstopswitch name=s timeout=500000000 return-after=1000000000 ! fakesink name=out sync=true \
         videotestsrc is-live=true ! {caps} ! valve name=v ! s.sink_0 \
         videotestsrc is-live=true pattern=ball ! {caps} ! identity name=b ! s.sink_1"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let switch = pipeline.by_name("s").unwrap();
    let valve = pipeline.by_name("v").unwrap();

    // Tag the backup's buffers so the output tells where each frame came from.
    pipeline
        .by_name("b")
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, |_, info| {
            if let Some(buf) = info.buffer_mut() {
                let b = buf.make_mut();
                b.set_offset(BACKUP_TAG + b.offset());
            }
            gst::PadProbeReturn::Ok
        });
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    {
        let seen = seen.clone();
        let p = pipeline.downgrade();
        switch
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let (Some(p), Some(buf)) = (p.upgrade(), info.buffer()) else {
                    return gst::PadProbeReturn::Ok;
                };
                seen.lock().unwrap().push(Seen {
                    arrival: running_time(&p),
                    pts: buf.pts().unwrap(),
                    backup: buf.offset() >= BACKUP_TAG && buf.offset() != u64::MAX,
                });
                gst::PadProbeReturn::Ok
            });
    }

    pipeline.set_state(gst::State::Playing).unwrap();
    let (res, _, _) = pipeline.state(5 * ClockTime::SECOND);
    res.unwrap();

    wait_until(&pipeline, 1500 * MS);
    valve.set_property("drop", true);
    let stall = running_time(&pipeline);
    wait_until(&pipeline, stall + 1500 * MS);
    valve.set_property("drop", false);
    let restore = running_time(&pipeline);
    wait_until(&pipeline, restore + 2000 * MS);
    pipeline.set_state(gst::State::Null).unwrap();

    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 200, "{} frames", seen.len());

    // Timestamps: one frame per 20 ms, no gap, no jump, no duplicate.
    for w in seen.windows(2) {
        assert_eq!(w[1].pts, w[0].pts + 20 * MS, "PTS gap after {:?}", w[0]);
    }
    // Frames out vs elapsed time, and the arrival cadence.
    let span = seen.last().unwrap().arrival - seen[0].arrival;
    let expected = span.nseconds() / (20 * MS).nseconds() + 1;
    let got = seen.len() as u64;
    assert!(
        got.abs_diff(expected) <= 5,
        "{got} frames for {expected} periods"
    );
    let max_gap = seen
        .windows(2)
        .map(|w| w[1].arrival.saturating_sub(w[0].arrival))
        .max()
        .unwrap();
    assert!(
        max_gap < 150 * MS,
        "largest gap between output frames {max_gap}"
    );

    // Failover: the backup appears ~timeout after the stall began.
    let failover = seen
        .iter()
        .find(|s| s.backup && s.arrival > stall)
        .unwrap()
        .arrival
        - stall;
    assert!(
        failover >= 460 * MS && failover <= 800 * MS,
        "failover after {failover}"
    );
    assert!(!seen.iter().any(|s| s.backup && s.arrival < stall));
    // Return: the primary comes back after return-after (1 s) of health.
    let back = seen
        .iter()
        .find(|s| !s.backup && s.arrival > restore)
        .unwrap()
        .arrival
        - restore;
    assert!(
        back >= 1000 * MS && back <= 1500 * MS,
        "returned after {back}"
    );

    assert_eq!(switch.property::<u64>("switches"), 3);
    assert_eq!(switch.property::<u64>("frames-black"), 0);
}

/// While the input on air is healthy its own streaming thread pushes the
/// output (no extra wakeup per frame); when every input stops at once, the
/// src task takes over and the output keeps one frame per period.
#[test]
fn input_on_air_pushes_and_output_survives_all_inputs_stopping() {
    gst::init().unwrap();
    gstnonstop::plugin_register_static().unwrap();

    let caps = "video/x-raw,format=I420,width=160,height=120,framerate=50/1";
    let pipeline = gst::parse::launch(&format!(
        "nonstopswitch name=s timeout=500000000 ! fakesink name=out sync=true \
         videotestsrc is-live=true ! {caps} ! valve name=v0 ! s.sink_0 \
         videotestsrc is-live=true pattern=ball ! {caps} ! valve name=v1 ! s.sink_1"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let switch = pipeline.by_name("s").unwrap();

    // The primary's streaming thread, seen where it leaves its valve.
    let primary_tid = Arc::new(Mutex::new(None::<libc::pid_t>));
    {
        let tid = primary_tid.clone();
        pipeline
            .by_name("v0")
            .unwrap()
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                *tid.lock().unwrap() = Some(unsafe { libc::gettid() });
                gst::PadProbeReturn::Ok
            });
    }
    // (arrival, PTS, pushed from the primary's thread)
    let seen = Arc::new(Mutex::new(Vec::<(ClockTime, ClockTime, bool)>::new()));
    {
        let seen = seen.clone();
        let tid = primary_tid.clone();
        let p = pipeline.downgrade();
        switch
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let (Some(p), Some(buf)) = (p.upgrade(), info.buffer()) else {
                    return gst::PadProbeReturn::Ok;
                };
                let ours = *tid.lock().unwrap() == Some(unsafe { libc::gettid() });
                seen.lock()
                    .unwrap()
                    .push((running_time(&p), buf.pts().unwrap(), ours));
                gst::PadProbeReturn::Ok
            });
    }

    pipeline.set_state(gst::State::Playing).unwrap();
    let (res, _, _) = pipeline.state(5 * ClockTime::SECOND);
    res.unwrap();
    wait_until(&pipeline, 1500 * MS);
    let stop = running_time(&pipeline);
    for v in ["v0", "v1"] {
        pipeline.by_name(v).unwrap().set_property("drop", true);
    }
    wait_until(&pipeline, stop + 1500 * MS);
    pipeline.set_state(gst::State::Null).unwrap();

    let seen = seen.lock().unwrap().clone();
    for w in seen.windows(2) {
        assert_eq!(w[1].1, w[0].1 + 20 * MS, "PTS gap after {:?}", w[0]);
    }
    // Healthy: after the start-up second, the primary's thread pushed
    // nearly every frame itself (the src task may step in when that thread
    // is preempted on a loaded machine).
    let healthy: Vec<_> = seen
        .iter()
        .filter(|s| s.0 > 500 * MS && s.0 < stop)
        .collect();
    let by_primary = healthy.iter().filter(|s| s.2).count();
    assert!(
        by_primary * 10 >= healthy.len() * 8,
        "{by_primary} of {} frames pushed by the input on air",
        healthy.len()
    );
    // Everything stopped: the output goes on, one frame per period.
    // (A frame that passed the valve just before it closed may still go out
    // on the primary's thread.)
    let after: Vec<_> = seen.iter().filter(|s| s.0 > stop + 100 * MS).collect();
    assert!(after.iter().all(|s| !s.2));
    let span = after.last().unwrap().0 - after[0].0;
    let expected = span.nseconds() / (20 * MS).nseconds() + 1;
    assert!(
        (after.len() as u64).abs_diff(expected) <= 5,
        "{} frames in {span} after every input stopped",
        after.len()
    );
    let max_gap = seen
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].0))
        .max()
        .unwrap();
    assert!(
        max_gap < 150 * MS,
        "largest gap between output frames {max_gap}"
    );
    assert!(switch.property::<u64>("frames-repeated") > 0);
}

/// `sync-inputs`: a buffer of an input off air comes back from the switch
/// once the output has sent its next slot (within a slot and a grace);
/// with the property off, at once. The input is a pad of the test's own,
/// so the time each push takes is what the switch held it.
#[test]
fn an_input_off_air_is_held_until_the_next_slot() {
    gst::init().unwrap();
    gstnonstop::plugin_register_static().unwrap();

    let held = |sync: bool| -> Vec<ClockTime> {
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", 160i32)
            .field("height", 120i32)
            .field("framerate", gst::Fraction::new(50, 1))
            .build();
        let pipeline = gst::parse::launch(&format!(
            "nonstopswitch name=s sync-inputs={sync} ! fakesink sync=true \
             videotestsrc is-live=true ! {caps} ! s.sink_0"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let switch = pipeline.by_name("s").unwrap();
        let backup = switch.request_pad_simple("sink_%u").unwrap();
        let src = gst::Pad::builder(gst::PadDirection::Src).build();
        src.link(&backup).unwrap();
        src.set_active(true).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        pipeline.state(5 * ClockTime::SECOND).0.unwrap();
        assert!(src.push_event(gst::event::StreamStart::new("backup")));
        assert!(src.push_event(gst::event::Caps::new(&caps)));
        let segment = gst::FormattedSegment::<ClockTime>::new();
        assert!(src.push_event(gst::event::Segment::new(&segment)));
        // Half a slot off the output's grid: the next slot is ~10 ms away.
        wait_until(&pipeline, 510 * MS);
        let frame = gst::Buffer::with_size(160 * 120 * 3 / 2).unwrap();
        let mut took = Vec::new();
        // 50 frames, pushed as a live source would: one every 20 ms.
        for n in 0..50u64 {
            let start = running_time(&pipeline);
            let mut buf = frame.clone();
            {
                let b = buf.make_mut();
                b.set_pts(start);
                b.set_duration(20 * MS);
            }
            assert_eq!(src.push(buf), Ok(gst::FlowSuccess::Ok), "push {n}");
            took.push(running_time(&pipeline) - start);
            wait_until(&pipeline, 510 * MS + (n + 1) * 20 * MS);
        }
        pipeline.set_state(gst::State::Null).unwrap();
        took.sort();
        took
    };

    // Held: each push waits for the output's next 20 ms slot, so they
    // spread over (0, 20 ms]; never beyond a slot and a grace (plus what a
    // loaded machine adds).
    let on = held(true);
    let median = on[on.len() / 2];
    assert!(median >= 2 * MS, "held pushes: median {median}, all {on:?}");
    assert!(*on.last().unwrap() < 60 * MS, "held too long: {on:?}");
    // Not held: the push only queues the frame.
    let off = held(false);
    assert!(
        off[off.len() / 2] < MS,
        "pushes without sync-inputs: {off:?}"
    );
}
