//! SCTE-35 cues in the TS outputs. Every MPEG-TS muxer of an output
//! (UDP, SRT, TS recordings, HLS segments) carries an SCTE-35 PID; a cue
//! becomes a `splice_info_section` built by libgstmpegts with its splice
//! time in the output's running time, which mpegtsmux writes as that
//! output's own PTS (so `pts_adjustment` stays 0). The encoders put an IDR
//! on the splice frame (`channel::cues`), so the time names a keyframe.

use gst::glib::translate::{from_glib_full, IntoGlib};
use gst::prelude::*;
use gst_mpegts_sys as ffi;

use super::Feed;

/// The PID of the SCTE-35 stream in every TS output (its PMT says CUEI).
pub const PID: u16 = 0x1f6;

/// What a cue does to the programme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueKind {
    /// Leave the network feed (an ad break begins).
    SpliceOut,
    /// Return to it.
    SpliceIn,
    /// Call off an announced splice (its id).
    Cancel,
}

impl CueKind {
    pub fn name(self) -> &'static str {
        match self {
            CueKind::SpliceOut => "splice-out",
            CueKind::SpliceIn => "splice-in",
            CueKind::Cancel => "cancel",
        }
    }

    pub fn parse(s: &str) -> Option<CueKind> {
        match s {
            "splice-out" => Some(CueKind::SpliceOut),
            "splice-in" => Some(CueKind::SpliceIn),
            _ => None,
        }
    }
}

/// One cue as the muxers get it: the splice at `at`, the channel's
/// running time (the PTS of the splice frame on the switch's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cue {
    pub id: u32,
    pub kind: CueKind,
    pub at: u64,
    /// A splice-out's break duration.
    pub duration: Option<std::time::Duration>,
    /// The break returns by itself at its end (no splice-in needed).
    pub auto_return: bool,
}

/// Gives `mux` (an mpegtsmux) its SCTE-35 PID.
pub fn enable(mux: &gst::Element) {
    if mux.find_property("scte-35-pid").is_some() {
        mux.set_property("scte-35-pid", u32::from(PID));
    }
}

/// hlssink2's own muxer (inside its splitmuxsink), given the PID too.
pub fn enable_hls(hlssink: &gst::Element) {
    let Some(bin) = hlssink.downcast_ref::<gst::Bin>() else {
        return;
    };
    for e in bin.iterate_elements().into_iter().flatten() {
        if e.factory().is_some_and(|f| f.name() == "splitmuxsink") {
            if let Some(mux) = e.property::<Option<gst::Element>>("muxer") {
                enable(&mux);
            }
        }
    }
}

/// The splice_info_section of `cue` for a muxer whose running time is
/// the channel's minus `base`.
fn section(cue: &Cue, base: u64) -> Option<gst_mpegts::Section> {
    gst_mpegts::init();
    let at = cue.at.checked_sub(base)?;
    // SAFETY: the constructors return a new table (is_running_time set);
    // from_scte_sit takes it (transfer full) and returns a new section.
    unsafe {
        let sit = match cue.kind {
            CueKind::SpliceOut => {
                let d = cue.duration.map_or(0, |d| d.as_nanos() as u64);
                let sit = ffi::gst_mpegts_scte_splice_out_new(cue.id, at, d);
                if d > 0 {
                    if let Some(ev) = first_event(sit) {
                        (*ev).break_duration_auto_return = cue.auto_return.into_glib();
                    }
                }
                sit
            }
            CueKind::SpliceIn => ffi::gst_mpegts_scte_splice_in_new(cue.id, at),
            CueKind::Cancel => ffi::gst_mpegts_scte_cancel_new(cue.id),
        };
        if sit.is_null() {
            return None;
        }
        let section = ffi::gst_mpegts_section_from_scte_sit(sit, PID);
        (!section.is_null()).then(|| from_glib_full(section))
    }
}

/// The table's first splice event.
///
/// # Safety
/// `sit` is a valid table.
unsafe fn first_event(
    sit: *mut ffi::GstMpegtsSCTESIT,
) -> Option<*mut ffi::GstMpegtsSCTESpliceEvent> {
    let splices = (*sit).splices;
    if splices.is_null() || (*splices).len == 0 {
        return None;
    }
    Some(*(*splices).pdata as *mut ffi::GstMpegtsSCTESpliceEvent)
}

/// One splice of an input's splice_insert, as the section has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Splice {
    pub id: u32,
    pub kind: CueKind,
    /// Immediate: no time in the section.
    pub immediate: bool,
    pub duration: Option<std::time::Duration>,
    pub auto_return: bool,
}

/// The splices of an input's section: its splice_insert's events, none
/// for a splice_null (a heartbeat); or what else it is (time_signal, …) as
/// an error.
pub fn read_splices(section: &gst_mpegts::Section) -> Result<Vec<Splice>, String> {
    // SAFETY: the section is alive for the call; the table and its events
    // belong to it and are only read.
    unsafe {
        let sit = ffi::gst_mpegts_section_get_scte_sit(section.as_ptr() as *mut _);
        if sit.is_null() {
            return Err("a section that does not parse as SCTE-35".into());
        }
        let sit = &*sit;
        if sit.splice_command_type == ffi::GST_MTS_SCTE_SPLICE_COMMAND_NULL {
            return Ok(Vec::new());
        }
        if sit.splice_command_type != ffi::GST_MTS_SCTE_SPLICE_COMMAND_INSERT {
            return Err(match sit.splice_command_type {
                ffi::GST_MTS_SCTE_SPLICE_COMMAND_TIME => "time_signal".to_owned(),
                ffi::GST_MTS_SCTE_SPLICE_COMMAND_SCHEDULE => "splice_schedule".to_owned(),
                t => format!("splice command {t}"),
            });
        }
        let mut out = Vec::new();
        if sit.splices.is_null() {
            return Ok(out);
        }
        for k in 0..(*sit.splices).len as usize {
            let ev = &*(*(*sit.splices).pdata.add(k) as *const ffi::GstMpegtsSCTESpliceEvent);
            let kind = if ev.splice_event_cancel_indicator != 0 {
                CueKind::Cancel
            } else if ev.out_of_network_indicator != 0 {
                CueKind::SpliceOut
            } else {
                CueKind::SpliceIn
            };
            // A parsed table counts in 90 kHz ticks.
            let duration = (ev.duration_flag != 0 && ev.break_duration > 0)
                .then(|| std::time::Duration::from_nanos(ev.break_duration * 100_000 / 9));
            out.push(Splice {
                id: ev.splice_event_id,
                kind,
                immediate: ev.splice_immediate_flag != 0 || ev.program_splice_time_specified == 0,
                duration,
                auto_return: ev.break_duration_auto_return != 0,
            });
        }
        Ok(out)
    }
}

/// Sends `cue` into an output whose pipeline has an mpegtsmux (its own,
/// or HLS's), in order with its frames: the muxer writes the section where
/// it meets it in the stream, so it leads its splice by the pre-roll. (Sent
/// to the muxer directly, it waits in a single slot for the muxer's next
/// packet, which splitmuxsink may hold back for a whole GOP, and a second
/// cue would replace it.) The output's timeline is the channel's minus
/// `base`. Returns whether it went in.
pub fn send(pipeline: &gst::Pipeline, feed: &Feed, cue: &Cue, base: u64) -> bool {
    let has_ts = pipeline.iterate_recurse().into_iter().flatten().any(|e| {
        e.factory()
            .is_some_and(|f| f.name() == "mpegtsmux" || f.name() == "hlssink2")
    });
    if !has_ts {
        return false;
    }
    let Some(s) = section(cue, base) else {
        return false;
    };
    feed.send_video_event(&gst_mpegts::event_new_mpegts_section(&s)) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_splice_out_section_names_its_time_duration_and_event() {
        gst::init().unwrap();
        let cue = Cue {
            id: 77,
            kind: CueKind::SpliceOut,
            at: 10_000_000_000,
            duration: Some(std::time::Duration::from_secs(30)),
            auto_return: true,
        };
        let s = section(&cue, 4_000_000_000).unwrap();
        // SAFETY: a parsed view of our own section.
        unsafe {
            let sit = ffi::gst_mpegts_section_get_scte_sit(s.as_ptr() as *mut _);
            assert!(!sit.is_null());
            assert_ne!((*sit).is_running_time, 0);
            let ev = first_event(sit as *mut _).unwrap();
            assert_eq!((*ev).splice_event_id, 77);
            assert_ne!((*ev).out_of_network_indicator, 0);
            assert_eq!((*ev).program_splice_time, 6_000_000_000, "minus the base");
            assert_eq!((*ev).break_duration, 30_000_000_000);
            assert_ne!((*ev).break_duration_auto_return, 0);
        }
        assert!(
            section(&cue, 11_000_000_000).is_none(),
            "before the output began"
        );
        assert_eq!(CueKind::parse("splice-in"), Some(CueKind::SpliceIn));
        assert_eq!(CueKind::parse("splice"), None);
    }
}
