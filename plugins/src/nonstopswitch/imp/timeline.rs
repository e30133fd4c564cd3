//! The slot clock: the output's timeline, slot `next` of a grid aligned on
//! the group's origin. It starts once some input has queued enough, moves
//! to a new grid at the next slot when the rate changes, and gives each
//! slot's buffer its timestamps: the slot's start, a duration up to the
//! next slot's, and DISCONT on the first buffer after a start. Which thread
//! sends a slot, and when, is `pacing`'s business.

use gst::subclass::prelude::*;
use gst::ClockTime;

use super::super::group::Grid;
use super::super::media::Format;
use super::{NonstopSwitch, Settings, State, CAT};

/// The output's slot grid and the index of the slot it sends next.
pub(super) struct Timeline {
    pub(super) grid: Grid,
    pub(super) next: u64,
}

impl NonstopSwitch {
    /// Starts the output timeline once some input has queued enough.
    pub(super) fn try_start(&self, st: &mut State, settings: &Settings, now: ClockTime) -> bool {
        let Some(format) = st.format.as_ref() else {
            return false;
        };
        let slot = format.slot_duration();
        let ready = st.inputs.iter().any(|i| {
            i.queue.as_ref().is_some_and(|q| {
                q.level() > ClockTime::ZERO && q.level() >= q.prefill(slot, settings.latency)
            })
        });
        if !ready {
            return false;
        }
        let (num, den) = format.grid_rate();
        let (grid, k, seq, active) =
            self.group()
                .start(self.member, now, num, den, settings.epoch_grid);
        gst::info!(CAT, imp = self, "output starts at {}", grid.slot(k));
        st.timeline = Some(Timeline { grid, next: k });
        st.pushed_at = ClockTime::ZERO;
        st.applied = seq;
        st.join = Some(active);
        true
    }

    /// Moves the timeline onto `format`'s grid (a new rate), from the next
    /// slot on.
    pub(super) fn reanchor(&self, st: &mut State, format: &Format) {
        if let Some(tl) = st.timeline.as_ref() {
            let next = tl.grid.slot(tl.next);
            let (num, den) = format.grid_rate();
            // The group's origin is set by now: the epoch flag is moot.
            let (grid, k, _, _) = self.group().start(self.member, next, num, den, false);
            st.timeline = Some(Timeline { grid, next: k });
        }
    }

    /// Restamps `buffer` in place as the output's slot `t`.
    pub(super) fn stamp(st: &mut State, buffer: &mut gst::Buffer, t: ClockTime) {
        let tl = st.timeline.as_ref().expect("timeline");
        let end = tl.grid.slot(tl.next + 1);
        let b = buffer.make_mut();
        b.set_pts(t);
        b.set_dts(ClockTime::NONE);
        b.set_duration(end - t);
        b.unset_flags(gst::BufferFlags::DISCONT | gst::BufferFlags::RESYNC | gst::BufferFlags::GAP);
        if std::mem::take(&mut st.discont) {
            b.set_flags(gst::BufferFlags::DISCONT);
        }
    }
}
