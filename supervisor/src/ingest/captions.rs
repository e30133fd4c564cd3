//! Closed captions through an input's normalizer. They come off each
//! decoded frame before it: videorate would drop or repeat them with their
//! frame and deinterlace doubles them. The bridge paces them back onto the
//! normalized frames (`gstnonstop::captions::Pacer`), so a frame-rate
//! change neither loses nor repeats a caption byte.

use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gstnonstop::captions::{self, Pacer};

use crate::config::Captions;

/// An input's caption queue, shared by the probe and the bridge.
pub type Shared = Arc<Mutex<Pacer>>;

/// Takes the captions off every frame entering `first` (the normalizer's
/// first element): into the returned queue, or away with `drop`.
pub(super) fn take_off(first: &gst::Element, fps: (u32, u32), mode: Captions) -> Option<Shared> {
    let pad = first.static_pad("sink")?;
    let pacer = (mode != Captions::Drop).then(|| Arc::new(Mutex::new(Pacer::new(fps))));
    let queue = pacer.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buf)) = info.data.as_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        if !captions::has(buf) {
            return gst::PadProbeReturn::Ok;
        }
        let b = buf.make_mut();
        match &queue {
            Some(q) => {
                let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
                q.take_from(b, crate::monotonic_ns());
            }
            None => {
                captions::strip(b);
            }
        }
        gst::PadProbeReturn::Ok
    });
    pacer
}

/// The captions due on the next normalized frame, put on `buf`; a frame
/// that does not go on (a drill's stall) passes `None` and its share is
/// let go, so nothing piles up behind a fault.
pub(super) fn put_on(pacer: &Shared, buf: Option<&mut gst::BufferRef>) {
    let mut p = pacer.lock().unwrap_or_else(|e| e.into_inner());
    let now = crate::monotonic_ns();
    match buf {
        Some(b) => {
            p.attach(b, now);
        }
        None => {
            p.take(now);
        }
    }
}
