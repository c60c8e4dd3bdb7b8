//! The HTTP API node of QueryGPT-rs: the QueryGPT v2 API under `/api/v1`.
//!
//! Every response uses the v2 envelope (`{success, data, message}` or `{success: false, error: {code, message,
//! details}}`, see [`error`]), except `/health` which has the Text2SQL document's flat shape. The node is
//! stateless apart from live chat streams: tokens are verified with the shared secret, data lives in the
//! [`Store`], and questions go to workers over the [`Bus`].

mod admission;
mod api_keys;
pub mod auth;
pub mod chat;
mod connections;
mod console;
mod conversations;
pub mod error;
pub mod extract;
mod health;
mod models;
mod openapi;
mod prompts;
mod rate_limit;
pub mod telemetry;
mod text2sql;
mod timestamp;
mod user_config;
mod validate;
mod workers;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::get;
use querygpt_bus::Bus;
use querygpt_cache::SharedCache;
use querygpt_common::config::Settings;
use querygpt_store::{NewConnection, Store};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub use auth::{AuthUser, PasswordHasher, TokenKeys};
pub use error::{ApiError, ApiResponse};
pub use extract::{PathId, ValidJson, ValidQuery};

/// Largest request body accepted. Requests of this API are small JSON documents.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything a request handler can reach. Shared as `Arc<AppState>`.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub settings: Arc<Settings>,
    pub tokens: TokenKeys,
    pub passwords: PasswordHasher,
    /// Given to every new user as its default connection (the embedded demo database), if set.
    pub demo_connection: Option<NewConnection>,
    /// Name of this API node in event subjects.
    pub node_id: String,
    pub chat: chat::ChatHub,
    /// Short-lived state every API node shares (Redis in the distributed mode): Text2SQL conversations, rate
    /// limits, session revocations.
    pub shared: Arc<dyn SharedCache>,
}

/// The infrastructure an API node is connected to.
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub shared: Arc<dyn SharedCache>,
}

impl AppState {
    /// The password hasher is built from `settings.auth.password_hash_concurrency`.
    pub fn new(
        backends: Backends,
        settings: Arc<Settings>,
        tokens: TokenKeys,
        demo_connection: Option<NewConnection>,
        node_id: String,
        chat: chat::ChatHub,
    ) -> Arc<Self> {
        let Backends { store, bus, shared } = backends;
        let passwords = PasswordHasher::new(settings.auth.password_hash_concurrency);
        Arc::new(AppState { store, bus, settings, tokens, passwords, demo_connection, node_id, chat, shared })
    }
}

impl AppState {
    /// The login sessions, in the shared state.
    pub fn sessions(&self) -> auth::Sessions<'_> {
        auth::Sessions::new(&*self.shared, self.tokens.refresh_ttl_secs())
    }

    /// Counts one hit of `limited` against its configured limit.
    pub(crate) async fn rate_limit(&self, limited: rate_limit::Limited<'_>) -> Result<(), rate_limit::Refusal> {
        rate_limit::check(&*self.shared, &self.settings.limits, limited).await
    }
}

/// The body of a successful `DELETE`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Deleted {
    id: Uuid,
    deleted: bool,
}

impl Deleted {
    /// The reply to deleting row `id`, with `message`.
    pub(crate) fn reply(id: Uuid, message: &'static str) -> ApiResponse<Deleted> {
        ApiResponse::ok(Deleted { id, deleted: true }).with_message(message)
    }
}

/// Every route under `/api/v1` with its OpenAPI description (paths relative to `/api/v1`).
fn api_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::routes())
        .merge(auth::routes())
        .merge(api_keys::routes())
        .merge(chat::routes())
        .merge(conversations::routes())
        .merge(models::routes())
        .merge(connections::routes())
        .merge(user_config::routes())
        .merge(prompts::routes())
        .merge(text2sql::routes())
}

/// The OpenAPI 3.1 document of the API, as served at `GET /api/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = api_routes().split_for_parts();
    document.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    document
}

/// The whole HTTP application: every route under `/api/v1` (and its OpenAPI document), a JSON 404 for anything
/// else, a body size limit and request tracing. No CORS layer: browsers on other origins are refused until CORS is
/// configured explicitly.
pub fn router(state: Arc<AppState>) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let document = openapi::Document::new(&openapi_document());
    let api = api
        .route("/openapi.json", get(move || async move { document }))
        // Operational, not part of the API documents: Prometheus scrapes it.
        .route("/metrics", get(telemetry::metrics))
        // After the routes: applies to every route registered above.
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .merge(console::routes(state.settings.http.console))
        .fallback(not_found)
        // Inside the measurement: a request's recorded duration includes its wait for a turn.
        .layer(axum::middleware::from_fn_with_state(
            admission::Admission::new(state.settings.http.max_concurrent_requests),
            admission::admit,
        ))
        // A `Router` layer wraps each route, so the route template is known to the measurement.
        .layer(axum::middleware::from_fn(telemetry::record_http))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let traceparent = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
            querygpt_telemetry::http_span(request.method(), request.uri().path(), traceparent)
        }))
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()).into())
}

/// The document has no 405 code: a method a path does not support is reported as "no such endpoint".
async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    not_found(method, uri).await
}

/// Serves [`router`] on `listener` until `shutdown` completes, then finishes the requests in flight.
///
/// A client must send a request's headers within `header_read_timeout` (which also closes keep-alive connections
/// that stay idle that long), so slow or silent clients cannot hold sockets. Accept errors (such as running out of
/// file descriptors) are logged and retried after a pause instead of ending the server.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    header_read_timeout: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;

    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "API listening");
    }
    let app = router(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection; retrying shortly");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // SSE events are small writes: without TCP_NODELAY, Nagle's algorithm holds each one back until the
        // client's delayed ACK (about 40 ms on Linux).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
