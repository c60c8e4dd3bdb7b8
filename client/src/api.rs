//! Calls of the public QueryGPT v2 HTTP API, and the types of its bodies as the API document (and the server)
//! describe them: `{success, data, message}` on success, `{success: false, error: {code, message, details}}`
//! otherwise.

use crate::error::{ClientError, Result};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// The path of the API under a server's root.
const API_PREFIX: &str = "/api/v1";
/// How long an ordinary request may take (not a question's stream).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The API base of a server URL as a user types it: `http://host:8000` becomes `http://host:8000/api/v1`;
/// a URL that already ends in `/api/v1` is kept.
pub fn api_base(server: &str) -> Result<String> {
    let bad = |reason: &str| ClientError::BadUrl { url: server.to_owned(), reason: reason.to_owned() };
    let url = Url::parse(server.trim()).map_err(|e| bad(&format!("{e} (expected e.g. http://127.0.0.1:8000)")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    let mut base = url.as_str().trim_end_matches('/').to_owned();
    if !base.ends_with(API_PREFIX) {
        base.push_str(API_PREFIX);
    }
    Ok(base)
}

/// A token pair from `/auth/login` or `/auth/refresh`.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    /// The next refresh token: the one presented is spent.
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    #[serde(default)]
    pub expires_in: u64,
}

/// A model of `GET /models`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub provider: String,
    /// The provider's model name (`gpt-4o`).
    #[serde(default)]
    pub model_id: String,
    #[serde(default)]
    pub is_default: bool,
    /// `null` until tested.
    #[serde(default)]
    pub is_available: Option<bool>,
}

/// A database connection of `GET /connections`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub database: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_connected: Option<bool>,
}

/// A conversation of `GET /conversations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub is_favorite: bool,
    #[serde(default)]
    pub message_count: u64,
    #[serde(default)]
    pub updated_at: String,
}

/// One page of `GET /conversations`.
#[derive(Debug, Clone)]
pub struct ConversationPage {
    /// The listed items as the API sent them.
    pub raw: Vec<Value>,
    pub conversations: Vec<Conversation>,
    pub total: u64,
    pub has_more: bool,
}

/// What `GET /conversations` is asked for.
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    pub limit: Option<u32>,
    pub favorites: bool,
    pub search: Option<String>,
}

/// A client of one server's API, with or without an access token.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of the API at `base` (see [`api_base`]).
    pub fn new(base: String) -> Result<Api> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("querygpt-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Local(format!("cannot set up HTTP: {e}")))?;
        Ok(Api { http, base, token: None })
    }

    /// The same client, authenticated with `access_token`.
    pub fn with_token(mut self, access_token: String) -> Api {
        self.token = Some(access_token);
        self
    }

    /// The API base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair> {
        let body = json!({"email": email, "password": password});
        self.call(Method::POST, "/auth/login", &[], Some(body)).await.map_err(|e| match e {
            // Here a 401 means the e-mail or password, not the session.
            ClientError::NotLoggedIn => ClientError::Usage("invalid e-mail or password".into()),
            other => other,
        })
    }

    /// `POST /auth/refresh`: a new pair for `refresh_token`, which is spent by this call.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        self.call(Method::POST, "/auth/refresh", &[], Some(json!({"refresh_token": refresh_token}))).await
    }

    /// `POST /auth/logout`: ends the session of the access token.
    pub async fn logout(&self) -> Result<()> {
        self.call::<Value>(Method::POST, "/auth/logout", &[], None).await.map(drop)
    }

    /// `GET /models`: the models as sent, and parsed.
    pub async fn models(&self) -> Result<(Vec<Value>, Vec<Model>)> {
        self.list("/models", "models", &[]).await
    }

    /// `GET /connections`: the connections as sent, and parsed.
    pub async fn connections(&self) -> Result<(Vec<Value>, Vec<Connection>)> {
        self.list("/connections", "connections", &[]).await
    }

    /// `GET /conversations`.
    pub async fn conversations(&self, query: &ConversationQuery) -> Result<ConversationPage> {
        let mut params = Vec::new();
        if let Some(limit) = query.limit {
            params.push(("limit", limit.to_string()));
        }
        if query.favorites {
            params.push(("favorites", "true".to_owned()));
        }
        if let Some(q) = &query.search {
            params.push(("q", q.clone()));
        }
        let data: Value = self.call(Method::GET, "/conversations", &params, None).await?;
        let raw = array_field(&data, "conversations", &self.url("/conversations"))?;
        let conversations = parse_items(&raw, &self.url("/conversations"))?;
        let total = data["total"].as_u64().unwrap_or(raw.len() as u64);
        Ok(ConversationPage { raw, conversations, total, has_more: data["has_more"].as_bool().unwrap_or(false) })
    }

    /// `POST /chat/stop` for a conversation: its running question stops, on whichever node it runs.
    pub async fn stop(&self, conversation_id: &str) -> Result<()> {
        let body = json!({"conversation_id": conversation_id});
        self.call::<Value>(Method::POST, "/chat/stop", &[], Some(body)).await.map(drop)
    }

    /// Opens `GET /chat/stream` with `params`, or resumes a stream after `last_event_id`. The response is a
    /// 200 event stream; anything else becomes the error it reports.
    pub async fn open_stream(
        &self,
        params: &[(&str, String)],
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response> {
        let url = self.url_with("/chat/stream", params)?;
        let mut request = self.request(Method::GET, &url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.map_err(|e| ClientError::transport(&self.base, &e))?;
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if response.status() == StatusCode::OK && is_stream {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.map_err(|e| ClientError::transport(&self.base, &e))?;
        Err(envelope_error(status, &text, &url))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The URL of `path` with the query `params` (none: no `?`).
    fn url_with(&self, path: &str, params: &[(&str, String)]) -> Result<String> {
        let url = self.url(path);
        if params.is_empty() {
            return Ok(url);
        }
        Url::parse_with_params(&url, params)
            .map(String::from)
            .map_err(|e| ClientError::BadUrl { url, reason: e.to_string() })
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        field: &str,
        params: &[(&str, String)],
    ) -> Result<(Vec<Value>, Vec<T>)> {
        let data: Value = self.call(Method::GET, path, params, None).await?;
        let raw = array_field(&data, field, &self.url(path))?;
        let parsed = parse_items(&raw, &self.url(path))?;
        Ok((raw, parsed))
    }

    /// One request; the `data` of a success envelope, or the error the envelope reports.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<T> {
        let url = self.url_with(path, params)?;
        let mut request = self.request(method, &url).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| ClientError::transport(&self.base, &e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ClientError::transport(&self.base, &e))?;
        if !status.is_success() {
            return Err(envelope_error(status, &text, &url));
        }
        let envelope: Value = serde_json::from_str(&text).map_err(|_| not_the_api(&url, status, &text))?;
        if envelope["success"] != Value::Bool(true) {
            return Err(envelope_error(status, &text, &url));
        }
        serde_json::from_value(envelope["data"].clone()).map_err(|e| ClientError::Protocol {
            url,
            what: format!("the `data` of the answer is not as expected: {e}"),
        })
    }
}

/// The error a non-success answer reports: its envelope's code and message, [`ClientError::NotLoggedIn`] for a
/// 401, or what it is when it is not an envelope at all.
pub(crate) fn envelope_error(status: StatusCode, text: &str, url: &str) -> ClientError {
    if status == StatusCode::UNAUTHORIZED {
        return ClientError::NotLoggedIn;
    }
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return not_the_api(url, status, text);
    };
    let error = &body["error"];
    let (Some(code), Some(message)) = (error["code"].as_str(), error["message"].as_str()) else {
        return not_the_api(url, status, text);
    };
    let mut message = message.to_owned();
    if let Some(field) = error["details"]["field"].as_str()
        && !message.contains(field)
    {
        message = format!("{field}: {message}");
    }
    ClientError::Api { status: status.as_u16(), code: code.to_owned(), message }
}

fn not_the_api(url: &str, status: StatusCode, text: &str) -> ClientError {
    let snippet: String = text.chars().filter(|c| !c.is_control()).take(80).collect();
    let what = if status.is_success() {
        format!("HTTP {status} without the API's JSON envelope ({snippet:?}): is this a QueryGPT server?")
    } else if status == StatusCode::NOT_FOUND {
        format!("HTTP 404 {snippet:?}: is this a QueryGPT server, with the API under {API_PREFIX}?")
    } else {
        format!("HTTP {status} {snippet:?}")
    };
    ClientError::Protocol { url: url.to_owned(), what }
}

fn array_field(data: &Value, field: &str, url: &str) -> Result<Vec<Value>> {
    data[field]
        .as_array()
        .cloned()
        .ok_or_else(|| ClientError::Protocol { url: url.to_owned(), what: format!("the answer has no `{field}` list") })
}

fn parse_items<T: DeserializeOwned>(raw: &[Value], url: &str) -> Result<Vec<T>> {
    raw.iter()
        .map(|item| serde_json::from_value(item.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| ClientError::Protocol { url: url.to_owned(), what: format!("an item is not as expected: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_become_api_bases() {
        assert_eq!(api_base("http://127.0.0.1:8000").unwrap(), "http://127.0.0.1:8000/api/v1");
        assert_eq!(api_base("https://q.example.com/").unwrap(), "https://q.example.com/api/v1");
        assert_eq!(api_base("http://h:1/api/v1/").unwrap(), "http://h:1/api/v1");
        assert_eq!(api_base("http://h/prefix").unwrap(), "http://h/prefix/api/v1");
        for bad in ["127.0.0.1:8000", "ftp://h", "not a url", "http://h/?x=1", ""] {
            assert!(matches!(api_base(bad), Err(ClientError::BadUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn error_envelopes_become_their_code_and_message() {
        let body = r#"{"success":false,"error":{"code":"NOT_FOUND","message":"model not found","details":null}}"#;
        let err = envelope_error(StatusCode::NOT_FOUND, body, "http://h/api/v1/x");
        assert_eq!(err.to_string(), "model not found (NOT_FOUND)");
        let body = r#"{"success":false,"error":{"code":"VALIDATION_ERROR","message":"is not a valid id","details":{"field":"conversation_id"}}}"#;
        let err = envelope_error(StatusCode::UNPROCESSABLE_ENTITY, body, "u");
        assert_eq!(err.to_string(), "conversation_id: is not a valid id (VALIDATION_ERROR)");
        assert!(matches!(envelope_error(StatusCode::UNAUTHORIZED, "{}", "u"), ClientError::NotLoggedIn));
        let err = envelope_error(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>", "u");
        assert!(err.to_string().contains("502"), "{err}");
    }
}
