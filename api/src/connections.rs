//! `GET /connections`, `POST /connections`: the target databases a user can query. The password is stored
//! encrypted and never appears in a response. The API node never connects to a target database (workers do), so
//! `is_connected` is `null` until a connection test reports it.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use querygpt_common::Driver;
use querygpt_common::config::SecretString;
use querygpt_store::{Connection, NewConnection};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::ValidJson;
use crate::validate;

const MAX_NAME_CHARS: usize = 200;
const MAX_HOST_CHARS: usize = 255;
const MAX_USERNAME_CHARS: usize = 255;
const MAX_PASSWORD_CHARS: usize = 4096;
/// Database names are short; SQLite paths can be long.
const MAX_DATABASE_CHARS: usize = 4096;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/connections", get(list).post(create))
}

#[derive(Deserialize)]
struct CreateConnection {
    name: String,
    driver: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    database: String,
    #[serde(default)]
    is_default: Option<bool>,
}

/// A connection as listed; deliberately without `username` and `password`.
#[derive(Serialize)]
struct ConnectionItem {
    id: Uuid,
    name: String,
    driver: Driver,
    host: Option<String>,
    port: Option<u16>,
    database: String,
    is_default: bool,
    /// Unknown (`null`): nothing has tried to connect. Reported by `/connections/{id}/test` (a later endpoint).
    is_connected: Option<bool>,
}

impl From<Connection> for ConnectionItem {
    fn from(connection: Connection) -> Self {
        ConnectionItem {
            id: connection.id,
            name: connection.name,
            driver: connection.driver,
            host: connection.host,
            port: connection.port,
            database: connection.database,
            is_default: connection.is_default,
            is_connected: None,
        }
    }
}

#[derive(Serialize)]
struct ConnectionList {
    connections: Vec<ConnectionItem>,
}

async fn list(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<ConnectionList>, ApiError> {
    let connections = state.store.list_connections(auth.user_id).await?;
    Ok(ApiResponse::ok(ConnectionList { connections: connections.into_iter().map(ConnectionItem::from).collect() }))
}

async fn create(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidJson(request): ValidJson<CreateConnection>,
) -> Result<ApiResponse<ConnectionItem>, ApiError> {
    let new = new_connection(request)?;
    if let (Some(host), Some(port)) = (&new.host, new.port) {
        validate::allowed_destination(&state.settings.network, "host", host, port).await?;
    }
    let connection = state.store.create_connection(auth.user_id, new).await?;
    Ok(ApiResponse::created(ConnectionItem::from(connection)))
}

fn new_connection(request: CreateConnection) -> Result<NewConnection, ApiError> {
    let name = validate::required_text("name", &request.name, MAX_NAME_CHARS)?;
    let driver = driver(&request.driver)?;
    let database = validate::required_text("database", &request.database, MAX_DATABASE_CHARS)?;
    let is_default = request.is_default.unwrap_or(false);
    let Some(default_port) = driver.default_port() else {
        // SQLite: `database` is the file path; there is no server to log in to.
        return Ok(NewConnection {
            name,
            driver,
            host: None,
            port: None,
            username: None,
            password: None,
            database,
            is_default,
        });
    };
    let host = validate::optional_text("host", request.host.as_deref(), MAX_HOST_CHARS)?
        .ok_or_else(|| ApiError::invalid_field("host", "required", format!("`host` is required for {driver}")))?;
    if request.port == Some(0) {
        return Err(ApiError::invalid_field("port", "invalid", "`port` must be between 1 and 65535"));
    }
    let username =
        validate::optional_text("username", request.username.as_deref(), MAX_USERNAME_CHARS)?.ok_or_else(|| {
            ApiError::invalid_field("username", "required", format!("`username` is required for {driver}"))
        })?;
    // Passwords are opaque: kept as given, only an empty one means "none".
    let password = match request.password.filter(|p| !p.is_empty()) {
        Some(p) if p.chars().count() > MAX_PASSWORD_CHARS => {
            return Err(ApiError::invalid_field("password", "too_long", "`password` is too long"));
        }
        other => other.map(SecretString::new),
    };
    Ok(NewConnection {
        name,
        driver,
        host: Some(host),
        port: Some(request.port.unwrap_or(default_port)),
        username: Some(username),
        password,
        database,
        is_default,
    })
}

fn driver(value: &str) -> Result<Driver, ApiError> {
    let unsupported =
        || ApiError::invalid_field("driver", "unsupported", "`driver` must be mysql, postgresql or sqlite");
    match validate::required_text("driver", value, MAX_NAME_CHARS)?.parse::<Driver>() {
        Ok(driver @ (Driver::Mysql | Driver::Postgresql | Driver::Sqlite)) => Ok(driver),
        // Redis targets belong to the Text2SQL API, not to this endpoint yet.
        Ok(Driver::Redis) | Err(_) => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(driver: &str) -> CreateConnection {
        CreateConnection {
            name: "db".into(),
            driver: driver.into(),
            host: Some("localhost".into()),
            port: None,
            username: Some("root".into()),
            password: Some("pw".into()),
            database: "sales".into(),
            is_default: None,
        }
    }

    #[test]
    fn ports_default_by_driver_and_aliases_are_accepted() {
        for (alias, driver, port) in [
            ("postgres", Driver::Postgresql, 5432),
            ("MariaDB", Driver::Mysql, 3306),
            ("postgresql", Driver::Postgresql, 5432),
        ] {
            let new = new_connection(request(alias)).unwrap();
            assert_eq!((new.driver, new.port), (driver, Some(port)));
        }
    }

    #[test]
    fn sqlite_needs_only_a_path() {
        let new = new_connection(CreateConnection { host: None, username: None, port: Some(1), ..request("sqlite") })
            .unwrap();
        assert_eq!((new.host, new.port, new.username, new.database.as_str()), (None, None, None, "sales"));
        assert!(new.password.is_none());
    }

    #[test]
    fn servers_need_host_and_username() {
        let err = new_connection(CreateConnection { host: Some(" ".into()), ..request("mysql") }).unwrap_err();
        assert!(matches!(err, ApiError::Validation { ref details, .. } if details["field"] == "host"));
        let err = new_connection(CreateConnection { username: None, ..request("mysql") }).unwrap_err();
        assert!(matches!(err, ApiError::Validation { ref details, .. } if details["field"] == "username"));
        let err = new_connection(CreateConnection { port: Some(0), ..request("mysql") }).unwrap_err();
        assert!(matches!(err, ApiError::Validation { ref details, .. } if details["field"] == "port"));
        for bad in ["redis", "oracle", ""] {
            let err = new_connection(request(bad)).unwrap_err();
            assert!(matches!(err, ApiError::Validation { ref details, .. } if details["field"] == "driver"), "{bad}");
        }
    }
}
