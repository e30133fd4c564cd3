//! The HTTP side: `/metrics` (Prometheus) and `/api/status` (JSON), on
//! `--metrics ADDR`. Served from the channels' published snapshots: a
//! request never waits for a channel.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::metrics::Views;

struct Shared {
    registry: Registry,
    views: Views,
    started_us: u64,
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&s.registry),
    )
}

/// Every channel's state, as `/api/status` returns it.
pub fn status_json(views: &Views, started_us: u64) -> Value {
    let channels: Vec<Value> = views
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|v| {
            let s = v.snapshot.borrow().clone();
            json!({
                "id": v.id,
                "state": s.state,
                "mode": s.mode,
                "active_input": s.active_input,
                "switches": s.switches,
                "inputs": s.inputs.iter().enumerate().map(|(n, i)| json!({
                    "id": i.id, "uri": i.uri, "state": i.state, "alarms": i.alarms,
                    "last_seen_us": i.last_seen, "restarts": i.restarts,
                    "bitrate_bps": s.counters.input_bitrate_bps.get(n).copied().unwrap_or(0),
                    "fps": s.counters.input_fps_milli.get(n).copied().unwrap_or(0) as f64 / 1000.0,
                })).collect::<Vec<_>>(),
                "outputs": s.outputs.iter().enumerate().map(|(n, o)| json!({
                    "id": o.id, "uri": o.uri, "state": o.state, "restarts": o.restarts,
                    "bytes": s.counters.output_bytes_total.get(n).copied().unwrap_or(o.bytes),
                })).collect::<Vec<_>>(),
                "encoders": s.encoders.iter().map(|e| json!({
                    "id": e.id, "backend": e.backend, "state": e.state,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_us": started_us,
        "now_us": crate::control::now_us(),
        "channels": channels,
    })
}

async fn status(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        status_json(&s.views, s.started_us).to_string(),
    )
}

/// Serves until the process ends. A port that cannot be bound costs the
/// metrics, never the channels.
pub async fn serve(addr: SocketAddr, views: Views) {
    let shared = Arc::new(Shared {
        registry: crate::metrics::registry(views.clone()),
        views,
        started_us: crate::control::now_us(),
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .with_state(shared);
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            info!(%addr, "metrics and status served over HTTP");
            if let Err(e) = axum::serve(listener, app).await {
                warn!(%addr, "HTTP server stopped: {e}");
            }
        }
        Err(e) => warn!(%addr, "no metrics (the channels run without them): cannot listen: {e}"),
    }
}
