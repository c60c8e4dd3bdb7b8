//! A test application: router, state and a temporary SQLite store, plus request helpers.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use querygpt_api::{AppState, TokenKeys, chat, router};
use querygpt_bus::InProcessBus;
use querygpt_common::config::Settings;
use querygpt_common::subjects::Subjects;
use querygpt_store::{NewConnection, SecretBox};
use serde_json::Value;
use std::sync::Arc;
use tempfile::TempDir;
use tower::ServiceExt;
use uuid::Uuid;

pub const JWT_SECRET: &[u8] = b"integration-test-secret-of-32-bytes!";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub state: Arc<AppState>,
    router: Router,
    _dir: TempDir,
}

/// A response: status, raw body text (for "the secret is not in it" checks) and parsed JSON.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

/// A registered user and its tokens.
pub struct TestUser {
    pub id: Uuid,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_demo(None).await
    }

    pub async fn with_demo(demo_connection: Option<NewConnection>) -> Self {
        Self::build(demo_connection, |_| {}).await
    }

    /// A test application whose settings `configure` changes (e.g. tight rate limits).
    pub async fn with_settings(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::build(None, configure).await
    }

    async fn build(demo_connection: Option<NewConnection>, configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let secrets = SecretBox::from_base64("test", &key).unwrap();
        let store = querygpt_store::open(&url, secrets, true).await.unwrap();
        let bus = Arc::new(InProcessBus::new(Subjects::new(format!("test{}", Uuid::new_v4().simple()))));
        let mut settings = Settings { data_dir: dir.path().to_owned(), ..Settings::default() };
        configure(&mut settings);
        let settings = Arc::new(settings);
        let tokens = TokenKeys::new(JWT_SECRET, 3600, 7 * 24 * 3600).unwrap();
        // The only place the tests build the chat hub.
        let shared = Arc::new(querygpt_cache::InProcessCache::default());
        let state = AppState::new(
            querygpt_api::Backends { store, bus, shared },
            settings,
            tokens,
            demo_connection,
            "test-node".into(),
            chat::ChatHub::new(tokio_util::sync::CancellationToken::new()),
        );
        TestApp { router: router(state.clone()), state, _dir: dir }
    }

    pub async fn request(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Body>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                body
            }
            None => Body::empty(),
        };
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, json }
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, uri, token, None).await
    }

    pub async fn post(&self, uri: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request(Method::POST, uri, token, Some(Body::from(body.to_string()))).await
    }

    pub async fn put(&self, uri: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request(Method::PUT, uri, token, Some(Body::from(body.to_string()))).await
    }

    pub async fn delete(&self, uri: &str, token: Option<&str>) -> Reply {
        self.request(Method::DELETE, uri, token, None).await
    }

    /// Registers `email` with [`PASSWORD`]; panics unless it succeeds.
    pub async fn register(&self, email: &str) -> TestUser {
        let reply =
            self.post("/api/v1/auth/register", None, &serde_json::json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let data = &reply.json["data"];
        TestUser {
            id: data["user"]["id"].as_str().unwrap().parse().unwrap(),
            access: data["access_token"].as_str().unwrap().to_owned(),
            refresh: data["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

impl Reply {
    /// Asserts the v2 error envelope with `status` and `code`, and returns `error.details`.
    pub fn assert_error(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["success"], false, "{}", self.text);
        let error = self.json["error"].as_object().unwrap_or_else(|| panic!("no error object: {}", self.text));
        assert_eq!(error["code"], code, "{}", self.text);
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", self.text);
        assert!(error["details"].is_object(), "{}", self.text);
        let keys: Vec<&str> = self.json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["error", "success"], "no other top-level keys");
        &self.json["error"]["details"]
    }

    /// Asserts a success envelope with `status` and returns `data`.
    pub fn assert_ok(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["success"], true, "{}", self.text);
        assert!(self.json["message"].is_string(), "{}", self.text);
        &self.json["data"]
    }
}

/// Asserts that `value` is an RFC 3339 UTC timestamp with whole seconds, as in the document.
pub fn assert_timestamp(value: &Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok() && text.ends_with('Z') && text.len() == 20, "{text}");
}
