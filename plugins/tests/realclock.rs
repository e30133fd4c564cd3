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
