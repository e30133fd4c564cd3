//! Audio switches without a click: the first chunk after a switch fades in
//! over the chunk the input switched away from would have given next (from
//! silence if it has none), a linear crossfade over one chunk
//! (`media::crossfade`). Video switches are plain cuts.

use super::super::media::{self, Kind, Taken};
use super::{NonstopSwitch, State};

impl NonstopSwitch {
    /// A switch away from input `from` (None: from nothing on air): on
    /// audio, the next chunk fades in from it.
    pub(super) fn start_fade(st: &mut State, from: Option<u32>) {
        if st.format.as_ref().is_some_and(|f| !f.is_video()) {
            st.fade_from = Some(from);
        }
    }

    /// If a switch is to be faded, fades `buffer`, the slot's chunk from
    /// the input on air, in from the input switched away from.
    pub(super) fn fade_in(st: &mut State, buffer: &mut gst::Buffer) {
        let kind = st.format.as_ref().map(|f| &f.kind);
        if let (Some(from), Some(Kind::Audio { info, .. })) = (st.fade_from.take(), kind) {
            if st.active.is_some() {
                let old = from
                    .and_then(|f| st.inputs.iter_mut().find(|i| i.index == f))
                    .and_then(|i| i.queue.as_mut())
                    .and_then(|q| match q.take() {
                        Taken::Full(b) | Taken::Partial(b) => Some(b),
                        Taken::Empty => None,
                    });
                let old = old.as_ref().and_then(|b| b.map_readable().ok());
                if let Ok(mut map) = buffer.make_mut().map_writable() {
                    media::crossfade(info, old.as_deref(), map.as_mut_slice());
                }
            }
        }
    }
}
