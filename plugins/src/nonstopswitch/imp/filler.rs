//! The filler: what goes out in a slot the input on air left empty. Video
//! repeats its last frame while that input may still come back, and for
//! `loss-repeat` once it is lost; then black. Audio goes silent (a chunk
//! the input only partly filled is completed with silence, see
//! `InputQueue::take`). The black frame or silence chunk is made once per
//! caps (`Format::filler`).

use gst::subclass::prelude::*;
use gst::ClockTime;

use super::super::group::Local;
use super::super::media::Format;
use super::{NonstopSwitch, Settings, State, CAT};

impl NonstopSwitch {
    /// The black frame (audio: chunk of silence) of `format`; None if it
    /// cannot be made, and then the last frame is repeated instead.
    pub(super) fn make_filler(&self, format: &Format) -> Option<gst::Buffer> {
        match format.filler() {
            Ok(f) => Some(f),
            Err(e) => {
                gst::warning!(CAT, imp = self, "{e}; repeating the last frame instead");
                None
            }
        }
    }

    /// The buffer for a slot that input `active`, on air, left empty at
    /// `now`: the last frame again, or the filler; counted as repeated or
    /// black. None while there is neither.
    pub(super) fn fill(
        st: &mut State,
        settings: &Settings,
        active: Option<u32>,
        now: ClockTime,
        is_video: bool,
    ) -> Option<gst::Buffer> {
        // Repeat while the input on air may still come back, and
        // for loss-repeat once it is lost; then black.
        let on_air = active.and_then(|a| st.inputs.iter().find(|i| i.index == a));
        let lost_at = match on_air.map(|i| i.local) {
            None => st.lost_since,
            Some(Local::Receiving { last_seen, .. }) => {
                Some(last_seen + settings.timeout).filter(|&l| l <= now)
            }
            Some(Local::Unhealthy { since }) => Some(since),
            // Pinned to an input that ended or never started.
            Some(Local::Eos | Local::Waiting) => Some(ClockTime::ZERO),
        };
        let within_repeat = lost_at.is_none_or(|l| now < l + settings.loss_repeat);
        match (&st.last_frame, is_video && within_repeat) {
            (Some(last), true) => {
                st.frames_repeated += 1;
                if crate::captions::has(last) {
                    // A repeat shows the picture again, never its
                    // captions: 608 letters would be doubled. Kept without
                    // them for the next repeats (a copy shares the pixels).
                    let mut bare = last.copy();
                    crate::captions::strip(bare.make_mut());
                    st.last_frame = Some(bare);
                }
                st.last_frame.clone()
            }
            _ => {
                st.frames_black += 1;
                st.filler.clone().or_else(|| st.last_frame.clone())
            }
        }
    }
}
