//! Any request path to the HTTP server of `--metrics` (`web::router`:
//! `/metrics`, `/api/status`, `/`, `/thumb/{channel}/{file}`), with one
//! channel that has no frame yet. Never a panic, never a 5xx; the status
//! is JSON.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use libfuzzer_sys::fuzz_target;
use nonstop_supervisor::channel::Snapshot;
use nonstop_supervisor::metrics::{View, Views};
use tower::ServiceExt;

struct Server {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    // The channel's snapshot sender, kept open.
    _tx: tokio::sync::watch::Sender<Snapshot>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = tokio::sync::watch::channel(Snapshot {
            state: nonstop_supervisor::channel::ChannelState::OnAir,
            ..Default::default()
        });
        let views: Views = Arc::new(Mutex::new(vec![View {
            id: "news".into(),
            snapshot: rx,
            thumbs: Default::default(),
        }]));
        Server {
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime"),
            app: nonstop_supervisor::web::router(views, None),
            _tx: tx,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&method, path)) = data.split_first() else {
        return;
    };
    let Ok(uri) = http::Uri::try_from(path) else {
        return;
    };
    let method = if method & 1 == 0 {
        http::Method::GET
    } else {
        http::Method::HEAD
    };
    let Ok(req) = http::Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(Body::empty())
    else {
        return;
    };
    let s = server();
    let (status, body) = s.rt.block_on(async {
        let res = s.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("a body");
        (status, body)
    });
    assert!(!status.is_server_error(), "{method} {uri}: {status}");
    if uri.path() == "/api/status" && method == http::Method::GET {
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["channels"][0]["id"], "news");
    }
    if uri.path().starts_with("/thumb/") {
        // No frame yet, or a path the route does not take.
        assert!(
            matches!(status.as_u16(), 400 | 404 | 405),
            "{method} {uri}: {status}"
        );
    }
});
