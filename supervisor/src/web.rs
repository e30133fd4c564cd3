//! The HTTP side: `/metrics` (Prometheus) and `/api/status` (JSON), on
//! `--metrics ADDR`. Served from the channels' published snapshots (and
//! the fleet agent's view, with `[fleet]`): a request never waits for a
//! channel, nor for etcd.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::fleet::FleetView;
use crate::metrics::Views;

/// (channel, name) → the frame's PTS and its JPEG.
type JpegCache =
    std::collections::HashMap<(String, String), (Option<gst::ClockTime>, axum::body::Bytes)>;

struct Shared {
    registry: Registry,
    views: Views,
    fleet: Option<crate::fleet::View>,
    started_us: u64,
    /// Encoded thumbnails by (channel, name): the frame's PTS and the JPEG,
    /// so a frame is encoded once however many viewers ask.
    jpegs: std::sync::Mutex<JpegCache>,
}

/// The status page: plain HTML/CSS/JS, served from the binary.
const PAGE: &str = include_str!("web/index.html");

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

/// A frame as a JPEG 320 pixels wide (height kept in proportion).
fn jpeg(sample: &gst::Sample) -> anyhow::Result<Vec<u8>> {
    use gst::prelude::*;
    let caps = sample.caps().ok_or_else(|| anyhow::anyhow!("no caps"))?;
    let s = caps
        .structure(0)
        .ok_or_else(|| anyhow::anyhow!("no caps"))?;
    let (w, h) = (s.get::<i32>("width")?, s.get::<i32>("height")?);
    let height = ((320 * h / w.max(1)) / 2 * 2).max(2);
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src ! videoconvert ! videoscale ! video/x-raw,width=320,height={height} \
         ! jpegenc quality=75 ! appsink name=sink"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| anyhow::anyhow!("no appsrc"))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| anyhow::anyhow!("no appsink"))?;
    src.set_caps(Some(&caps.to_owned()));
    src.set_format(gst::Format::Time);
    pipeline.set_state(gst::State::Playing)?;
    let mut buffer = sample
        .buffer_owned()
        .ok_or_else(|| anyhow::anyhow!("no buffer"))?;
    {
        let b = buffer.make_mut();
        b.set_pts(gst::ClockTime::ZERO);
        b.set_dts(gst::ClockTime::NONE);
    }
    let _ = src.push_buffer(buffer);
    let _ = src.end_of_stream();
    let out = sink
        .try_pull_sample(gst::ClockTime::from_seconds(2))
        .and_then(|s| s.buffer_owned())
        .ok_or_else(|| anyhow::anyhow!("no JPEG"));
    let _ = pipeline.set_state(gst::State::Null);
    let out = out?;
    let map = out.map_readable()?;
    Ok(map.as_slice().to_vec())
}

async fn thumb(
    State(s): State<Arc<Shared>>,
    axum::extract::Path((channel, file)): axum::extract::Path<(String, String)>,
) -> axum::response::Response {
    let name = file.strip_suffix(".jpg").unwrap_or(&file).to_owned();
    let sample = s
        .views
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|v| v.id == channel)
        .and_then(|v| v.thumbs.lock().ok().and_then(|t| t.get(&name).cloned()));
    let Some(sample) = sample else {
        return (axum::http::StatusCode::NOT_FOUND, "no frame yet").into_response();
    };
    let pts = sample.buffer().and_then(|b| b.pts());
    let key = (channel, name);
    let cached = s.jpegs.lock().ok().and_then(|m| {
        m.get(&key)
            .filter(|(p, _)| *p == pts)
            .map(|(_, j)| j.clone())
    });
    let body = match cached {
        Some(j) => j,
        None => match tokio::task::spawn_blocking(move || jpeg(&sample)).await {
            Ok(Ok(j)) => {
                let j = axum::body::Bytes::from(j);
                if let Ok(mut m) = s.jpegs.lock() {
                    m.insert(key, (pts, j.clone()));
                }
                j
            }
            _ => {
                return (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot encode",
                )
                    .into_response()
            }
        },
    };
    (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::metrics::Format::negotiate(accept);
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "Accept"),
        ],
        crate::metrics::render_as(&s.registry, format),
    )
}

/// A row of the read model (the control API's own, as D-Bus and nonstopctl
/// show it) as a JSON object the page can add to.
fn row_json(row: &impl serde::Serialize) -> serde_json::Map<String, Value> {
    match serde_json::to_value(row) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// The fleet as this box sees it, the `fleet` object of `/api/status`.
fn fleet_json(v: &FleetView) -> Value {
    json!({
        "node": v.node,
        "etcd": v.etcd,
        "lease_left_ms": v.lease_left.as_millis() as u64,
        // The rows of the manager's FleetMembers.
        "members": crate::metrics::member_rows(v).iter().map(|m| Value::Object(row_json(m))).collect::<Vec<_>>(),
        "channels": v.channels.iter().map(|(id, c)| json!({
            "id": id,
            "role": c.role.name(),
            "leader": c.leader,
            "token": c.token,
            "replicas": c.replicas,
        })).collect::<Vec<_>>(),
    })
}

/// A loudness reading for the page's meters (null: none now).
fn loudness_json(l: Option<crate::channel::Loudness>) -> Value {
    l.map_or(Value::Null, |l| {
        json!({
            "momentary": l.momentary,
            "short_term": l.short_term,
            "integrated": l.integrated,
            "range": l.range,
            "true_peak": l.true_peak,
        })
    })
}

/// Every channel's state, as `/api/status` returns it; with a fleet, the
/// fleet too.
pub fn status_json(views: &Views, started_us: u64, fleet: Option<&FleetView>) -> Value {
    let channels: Vec<Value> = views
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|v| {
            let s = v.snapshot.borrow().clone();
            json!({
                "id": v.id,
                "state": s.state.name(),
                "mode": s.mode,
                "active_input": s.active_input,
                "switches": s.switches,
                "program_thumbnail": format!("/thumb/{}/program.jpg", v.id),
                "program_loudness": loudness_json(s.counters.program_loudness),
                "events": s.recent.iter().map(|(t, text)| json!({"time_us": t, "text": text})).collect::<Vec<_>>(),
                "inputs": s.inputs.iter().enumerate().map(|(n, i)| {
                    let mut row = row_json(i);
                    // The page's names and extras on the read model's row.
                    if let Some(seen) = row.remove("last_seen") {
                        row.insert("last_seen_us".into(), seen);
                    }
                    row.insert("thumbnail".into(), json!(format!("/thumb/{}/{}.jpg", v.id, i.id)));
                    row.insert("bitrate_bps".into(), json!(s.counters.input_bitrate_bps.get(n).copied().unwrap_or(0)));
                    row.insert("fps".into(), json!(s.counters.input_fps_milli.get(n).copied().unwrap_or(0) as f64 / 1000.0));
                    row.insert("loudness".into(), loudness_json(s.counters.input_loudness.get(n).copied().flatten()));
                    Value::Object(row)
                }).collect::<Vec<_>>(),
                "outputs": s.outputs.iter().enumerate().map(|(n, o)| {
                    let mut row = row_json(o);
                    // All runs' bytes, not only this one's.
                    row.insert("bytes".into(), json!(s.counters.output_bytes_total.get(n).copied().unwrap_or(o.bytes)));
                    Value::Object(row)
                }).collect::<Vec<_>>(),
                "encoders": s.encoders.iter().map(|e| Value::Object(row_json(e))).collect::<Vec<_>>(),
                "links": s.links.iter().map(|l| Value::Object(row_json(l))).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut status = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_us": started_us,
        "now_us": nonstop_api::now_us(),
        "channels": channels,
    });
    if let (Some(f), Value::Object(m)) = (fleet, &mut status) {
        m.insert("fleet".into(), fleet_json(f));
    }
    status
}

async fn status(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let fleet = s
        .fleet
        .as_ref()
        .map(|f| f.lock().unwrap_or_else(|e| e.into_inner()).clone());
    (
        [(header::CONTENT_TYPE, "application/json")],
        status_json(&s.views, s.started_us, fleet.as_ref()).to_string(),
    )
}

/// The routes, on `views` and the fleet's view (public for fuzz/, which
/// sends it arbitrary request paths).
pub fn router(views: Views, fleet: Option<crate::fleet::View>) -> Router {
    let shared = Arc::new(Shared {
        registry: crate::metrics::registry(views.clone(), fleet.clone()),
        views,
        fleet,
        started_us: nonstop_api::now_us(),
        jpegs: Default::default(),
    });
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/", get(page))
        .route("/thumb/{channel}/{file}", get(thumb))
        .with_state(shared)
}

/// Serves until the process ends. A port that cannot be bound costs the
/// metrics, never the channels.
pub async fn serve(addr: SocketAddr, views: Views, fleet: Option<crate::fleet::View>) {
    let app = router(views, fleet);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{EncoderRow, InputRow, OutputRow, Snapshot};

    #[test]
    fn the_status_api_shows_the_read_model_with_the_pages_extras() {
        let mut s = Snapshot {
            mode: "auto".into(),
            active_input: "main".into(),
            switches: 2,
            recent: vec![(7, "switched a → main (manual)".into())],
            inputs: vec![InputRow {
                id: "main".into(),
                uri: "srt://0.0.0.0:9000".into(),
                state: "receiving".into(),
                alarms: vec!["video:black".into()],
                last_seen: 123,
                restarts: 1,
                return_holdoff_ms: 5000,
            }],
            outputs: vec![OutputRow {
                id: "cdn".into(),
                uri: "udp://127.0.0.1:5000".into(),
                state: "live".into(),
                bytes: 10,
                restarts: 0,
            }],
            encoders: vec![EncoderRow {
                id: "video.primary".into(),
                backend: "x264".into(),
                state: "on-air".into(),
            }],
            ..Snapshot::default()
        };
        s.counters.input_bitrate_bps = vec![4_000_000];
        s.counters.input_fps_milli = vec![25_000];
        s.counters.output_bytes_total = vec![99];
        s.counters.input_loudness = vec![Some(crate::channel::Loudness {
            momentary: -22.5,
            short_term: -23.0,
            integrated: -23.5,
            range: 4.0,
            true_peak: -6.0,
        })];
        let (_keep, snapshot) = tokio::sync::watch::channel(s);
        let views: Views = Arc::new(std::sync::Mutex::new(vec![crate::metrics::View {
            id: "news".into(),
            snapshot,
            thumbs: Default::default(),
        }]));
        let mut v = status_json(&views, 1, None);
        v["now_us"] = json!(0);
        // Byte for byte what the page and its users read.
        assert_eq!(
            v.to_string(),
            concat!(
                r#"{"channels":[{"active_input":"main","encoders":[{"backend":"x264","id":"video.primary","state":"on-air"}],"#,
                r#""events":[{"text":"switched a → main (manual)","time_us":7}],"id":"news","inputs":[{"alarms":["video:black"],"#,
                r#""bitrate_bps":4000000,"fps":25.0,"id":"main","last_seen_us":123,"#,
                r#""loudness":{"integrated":-23.5,"momentary":-22.5,"range":4.0,"short_term":-23.0,"true_peak":-6.0},"#,
                r#""restarts":1,"return_holdoff_ms":5000,"#,
                r#""state":"receiving","thumbnail":"/thumb/news/main.jpg","uri":"srt://0.0.0.0:9000"}],"links":[],"mode":"auto","#,
                r#""outputs":[{"bytes":99,"id":"cdn","restarts":0,"state":"live","uri":"udp://127.0.0.1:5000"}],"#,
                r#""program_loudness":null,"program_thumbnail":"/thumb/news/program.jpg","state":"starting","switches":2}],"now_us":0,"#,
                r#""started_us":1,"version":""#,
                env!("CARGO_PKG_VERSION"),
                r#""}"#
            )
        );
    }

    #[test]
    fn the_status_api_shows_the_fleet_with_one() {
        use crate::channel::Role;
        use crate::fleet::{ChannelView, MemberView};
        let views: Views = Default::default();
        let fleet = FleetView {
            node: "box-a".into(),
            etcd: true,
            lease_left: std::time::Duration::from_micros(1_234_567),
            members: vec![
                MemberView {
                    name: "box-a".into(),
                    capacity: 2,
                    drained: false,
                    alive: true,
                    leads: 1,
                },
                MemberView {
                    name: "box-b".into(),
                    capacity: 0,
                    drained: true,
                    alive: false,
                    leads: 0,
                },
            ],
            channels: [(
                "news".to_owned(),
                ChannelView {
                    role: Role::Active,
                    leader: "box-a".into(),
                    token: 42,
                    replicas: vec!["box-a".into(), "box-b".into()],
                    dropped: 3,
                    ..Default::default()
                },
            )]
            .into(),
            takeovers: Default::default(),
            // The lease id is not shown (and later fields keep their defaults).
            ..FleetView::default()
        };
        let mut v = status_json(&views, 1, Some(&fleet));
        v["now_us"] = json!(0);
        assert_eq!(
            v.to_string(),
            concat!(
                r#"{"channels":[],"fleet":{"channels":[{"id":"news","leader":"box-a","replicas":["box-a","box-b"],"role":"active","token":42}],"#,
                r#""etcd":true,"lease_left_ms":1234,"members":[{"alive":true,"capacity":2,"drained":false,"leads":1,"name":"box-a"},"#,
                r#"{"alive":false,"capacity":0,"drained":true,"leads":0,"name":"box-b"}],"node":"box-a"},"#,
                r#""now_us":0,"started_us":1,"version":""#,
                env!("CARGO_PKG_VERSION"),
                r#""}"#
            )
        );
        // Without a fleet, no fleet object.
        assert!(status_json(&views, 1, None).get("fleet").is_none());
    }
}
