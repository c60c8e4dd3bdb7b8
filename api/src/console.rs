//! The web console: a few hand-written static files (HTML, CSS, JavaScript modules in `api/console/`) compiled into
//! the binary and served at `/` and `/console/...`. It is a client of the public API under `/api/v1` like any other,
//! and is not part of the OpenAPI document.
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style, no other origin),
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`. Files are sent with `Cache-Control:
//! no-cache` and an `ETag` (a hash of their content), so a browser revalidates them cheaply and never runs a stale
//! module after an upgrade. `http.console = false` leaves these routes out: `/` is then the JSON 404.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::OnceLock;

/// The policy of every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// One embedded file: its path under `/console/` (`index.html` is served at `/`), type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $content_type:expr),* $(,)?) => {
        &[$(Asset { path: $path, content_type: $content_type, body: include_bytes!(concat!("../console/", $path)) }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "console.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "js/app.js" => JS,
    "js/api.js" => JS,
    "js/sse.js" => JS,
    "js/i18n.js" => JS,
    "js/dom.js" => JS,
    "js/chat.js" => JS,
    "js/answer.js" => JS,
    "js/table.js" => JS,
    "js/chart.js" => JS,
    "js/sql.js" => JS,
    "js/conversations.js" => JS,
    "js/resources.js" => JS,
    "js/settings.js" => JS,
};

/// The console's routes, or none when `enabled` is false.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(enabled: bool) -> Router<S> {
    if !enabled {
        return Router::new();
    }
    Router::new()
        .route("/", get(index))
        .route("/console/{*path}", get(file))
        .method_not_allowed_fallback(crate::method_not_allowed)
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap, method: Method, uri: Uri) -> Response {
    match ASSETS.iter().position(|asset| asset.path == path && asset.path != "index.html") {
        Some(index) => serve(index, &headers),
        None => crate::not_found(method, uri).await.into_response(),
    }
}

/// The `ETag` of every asset, in [`ASSETS`] order: FNV-1a of the bytes (a cache validator, not a security check).
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let hash = asset.body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                    (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
                });
                HeaderValue::from_str(&format!("\"{hash:016x}\"")).expect("hex is a valid header value")
            })
            .collect()
    })
}

fn serve(index: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == "*" || tag.trim() == etag));
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
