//! SRT listener inputs, held by nonstopd itself rather than by `srtsrc`.
//!
//! `srtsrc mode=listener` ties the listening socket to the input pipeline.
//! When a caller dies without a goodbye (kill -9, a cable), libsrt keeps the
//! dead connection for its 5 s peer-idle timeout; rebuilding the pipeline
//! then fails ("Another socket is already listening on the same port") and
//! a caller that comes back meanwhile is not accepted. So nonstopd opens
//! the listening socket once per input, keeps it across pipeline rebuilds
//! and reloads, and feeds what the caller sends into the input pipeline's
//! `appsrc`. One caller at a time: a new caller replaces a current one
//! that has gone silent (a restarted sender), and is refused while the
//! current one still sends (a second sender is a mistake, not a
//! failover).
//!
//! Lock order: `LISTENERS`, then a listener's `state`.
//!
//! One job per file; dependencies run one way, each file using only those
//! after it: `listener` (an input's hold on a listener) → `worker` (the
//! listener's thread) → `shared` (what the thread and the input share) →
//! `socket` (libsrt calls) → `options` (from the URI), `ffi` (libsrt's C
//! API).

mod ffi;
mod listener;
mod options;
mod shared;
mod socket;
mod worker;

pub use listener::{close_all, Listener};
pub use options::Options;
pub use shared::CallerEvent;
