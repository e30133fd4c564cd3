//! nonstopd, the channel supervisor: builds every channel of a config
//! (isolated input pipelines → channel pipeline with the switch pair and
//! encoders → isolated output pipelines) and keeps it on air.
//!
//! One module per job, dependencies one way (top to bottom; checked by
//! `scripts/layers`, run in CI):
//!
//! - `daemon`: the process — logging (`glog` puts GLib's own log in
//!   ours, `logline` formats), signals, rlimits, systemd (`watchdog` sends
//!   its keepalive from its own thread);
//! - `registry`: the running channels, started, published, replaced on
//!   reload, stopped;
//! - `dbus` (the control API; the manager reaches the registry by
//!   message), `web` (status page, `/api/status`) over `metrics`;
//! - `channel`: one channel's state machine (core pipeline, inputs,
//!   outputs with destination failover, state, snapshot, commands,
//!   drills);
//! - `encode` (encoders and their backends), `ingest` (input pipelines,
//!   `srtin` for SRT listeners), `output` (output pipelines), `alerts`;
//! - `config` (a folder: schema, parsing, validation, defaults) and `uri`
//!   read what the user wrote; `element`, `backoff`.

pub mod alerts;
pub mod backoff;
pub mod channel;
pub mod config;
pub mod daemon;
pub mod dbus;
pub mod element;
pub mod encode;
pub mod fleet;
pub mod glog;
pub mod ingest;
pub mod linkstats;
mod logline;
pub mod logs;
pub mod metrics;
pub mod output;
pub mod registry;
pub mod srtin;
pub mod uri;
pub mod watchdog;
pub mod web;

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds since the process started, on the monotonic clock: cheap
/// enough to take for every buffer, comparable across threads.
pub fn monotonic_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
