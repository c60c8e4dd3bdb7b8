//! `/connections`: the target databases a user can query. The password is stored encrypted and never appears in a
//! response. The API node never connects to a target database: tests and schemas are run by a worker.

use axum::extract::State;
use querygpt_common::Driver;
use querygpt_common::config::SecretString;
use querygpt_common::messages::{ConnectionTestReport, WorkerOutcome, WorkerTask};
use querygpt_common::schema::DbSchema;
use querygpt_store::{Connection, NewConnection};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::{PathId, ValidJson, ValidQuery};
use crate::openapi::{CommonErrors, Envelope, ErrorEnvelope};
use crate::{validate, workers};

const MAX_NAME_CHARS: usize = 200;
const MAX_HOST_CHARS: usize = 255;
const MAX_USERNAME_CHARS: usize = 255;
const MAX_PASSWORD_CHARS: usize = 4096;
/// Database names are short; SQLite paths can be long.
const MAX_DATABASE_CHARS: usize = 4096;

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update, delete))
        .routes(routes!(test))
        .routes(routes!(schema))
}

#[derive(Deserialize, ToSchema)]
struct CreateConnection {
    name: String,
    /// `postgresql`, `mysql` (also MariaDB), `sqlite` or `redis`.
    driver: String,
    /// Required for PostgreSQL, MySQL and Redis.
    #[serde(default)]
    host: Option<String>,
    /// Default: the driver's standard port.
    #[serde(default)]
    port: Option<u16>,
    /// Required for PostgreSQL and MySQL; for Redis the ACL user (none: the `default` user).
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// The database name; for SQLite the file path, inside the directory the operator allows; for Redis the db
    /// number, `0` to `15` (empty: `0`).
    database: String,
    #[serde(default)]
    is_default: Option<bool>,
}

/// A partial update: an omitted field keeps its value (the password too); `null` clears `host`, `port`,
/// `username` and `password`.
#[derive(Deserialize, ToSchema)]
struct UpdateConnection {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    host: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<u16>)]
    port: Option<Option<u16>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    password: Option<Option<String>>,
    #[serde(default)]
    database: Option<String>,
    /// `true` makes this the default connection. A default stops being one only when another becomes the default.
    #[serde(default)]
    is_default: Option<bool>,
}

/// A connection as listed; deliberately without `username` and `password`.
#[derive(Serialize, ToSchema)]
struct ConnectionItem {
    id: Uuid,
    name: String,
    #[schema(value_type = String, example = "postgresql")]
    driver: Driver,
    host: Option<String>,
    port: Option<u16>,
    database: String,
    is_default: bool,
    /// The result of the last `POST /connections/{id}/test`; `null` until tested (or after an edit).
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
            is_connected: connection.is_connected,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ConnectionList {
    connections: Vec<ConnectionItem>,
}

/// The outcome of a connection test. The request succeeds whenever the test ran; `connected` says how it went.
#[derive(Serialize, ToSchema)]
struct ConnectionTest {
    connected: bool,
    /// Product and version, e.g. `PostgreSQL 15.19`.
    version: Option<String>,
    tables_count: Option<usize>,
    latency_ms: u64,
    /// What the login can do beyond reading (superuser, write or file privileges): use a read-only login.
    warnings: Vec<String>,
    /// `连接成功` or why the connection failed.
    message: String,
}

impl From<ConnectionTestReport> for ConnectionTest {
    fn from(report: ConnectionTestReport) -> Self {
        let message = match (&report.error, report.connected) {
            (Some(error), _) => error.clone(),
            (None, true) => "连接成功".to_owned(),
            (None, false) => "连接失败".to_owned(),
        };
        ConnectionTest {
            connected: report.connected,
            version: report.version,
            tables_count: report.tables_count,
            latency_ms: report.latency_ms,
            warnings: report.warnings,
            message,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SchemaParams {
    /// Read the database's catalog again instead of the cached schema.
    #[serde(default)]
    refresh: Option<bool>,
}

/// The user's connections, oldest first.
#[utoipa::path(get, path = "/connections", tag = "connections", security(("bearer" = [])),
    responses((status = 200, body = Envelope<ConnectionList>), CommonErrors))]
async fn list(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<ConnectionList>, ApiError> {
    let connections = state.store.list_connections(auth.user_id).await?;
    Ok(ApiResponse::ok(ConnectionList { connections: connections.into_iter().map(ConnectionItem::from).collect() }))
}

/// Adds a connection. The first one, or one with `is_default`, becomes the default.
#[utoipa::path(post, path = "/connections", tag = "connections", security(("bearer" = [])),
    request_body = CreateConnection,
    responses((status = 201, body = Envelope<ConnectionItem>), CommonErrors))]
async fn create(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidJson(request): ValidJson<CreateConnection>,
) -> Result<ApiResponse<ConnectionItem>, ApiError> {
    let new = new_connection(request)?;
    check_destination(&state, &new).await?;
    let connection = state.store.create_connection(auth.user_id, new).await?;
    Ok(ApiResponse::created(ConnectionItem::from(connection)))
}

/// Changes a connection (partial update); the result is checked like a new connection. Editing where it points
/// or how it logs in makes `is_connected` unknown again.
#[utoipa::path(put, path = "/connections/{id}", tag = "connections", security(("bearer" = [])),
    request_body = UpdateConnection, params(("id" = Uuid, Path, description = "The connection's id")),
    responses((status = 200, body = Envelope<ConnectionItem>), CommonErrors))]
async fn update(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
    ValidJson(request): ValidJson<UpdateConnection>,
) -> Result<ApiResponse<ConnectionItem>, ApiError> {
    let current = state.store.connection(auth.user_id, id).await?.ok_or_else(|| ApiError::not_found("connection"))?;
    if request.is_default == Some(false) && current.is_default {
        return Err(ApiError::invalid_field(
            "is_default",
            "default_required",
            "this is the default connection: make another connection the default instead",
        ));
    }
    let merged = CreateConnection {
        name: request.name.unwrap_or(current.name),
        driver: request.driver.unwrap_or_else(|| current.driver.to_string()),
        host: request.host.unwrap_or(current.host),
        port: request.port.unwrap_or(current.port),
        username: request.username.unwrap_or(current.username),
        password: match request.password {
            Some(password) => password,
            None => current.password.map(|p| p.expose().to_owned()),
        },
        database: request.database.unwrap_or(current.database),
        is_default: Some(request.is_default == Some(true)),
    };
    let new = new_connection(merged)?;
    check_destination(&state, &new).await?;
    let connection = state.store.update_connection(auth.user_id, id, new).await?;
    Ok(ApiResponse::ok(ConnectionItem::from(connection)).with_message("连接已更新"))
}

/// Deletes a connection. Its conversations stay (without a connection); if it was the default, the newest
/// remaining connection becomes the default.
#[utoipa::path(delete, path = "/connections/{id}", tag = "connections", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The connection's id")),
    responses((status = 200, body = Envelope<crate::Deleted>), CommonErrors))]
async fn delete(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<crate::Deleted>, ApiError> {
    state.store.delete_connection(auth.user_id, id).await?;
    Ok(crate::Deleted::reply(id, "连接已删除"))
}

/// Asks a worker to connect, and records the outcome (`is_connected`).
#[utoipa::path(post, path = "/connections/{id}/test", tag = "connections", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The connection's id")),
    responses((status = 200, body = Envelope<ConnectionTest>), CommonErrors))]
async fn test(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<ConnectionTest>, ApiError> {
    state.store.connection(auth.user_id, id).await?.ok_or_else(|| ApiError::not_found("connection"))?;
    let report = match workers::ask(&state, auth.user_id, WorkerTask::TestConnection { connection_id: id }).await? {
        WorkerOutcome::ConnectionTested(report) => report,
        other => return Err(workers::unexpected(&other)),
    };
    state.store.set_connection_connected(auth.user_id, id, report.connected).await?;
    let test = ConnectionTest::from(report);
    let message = test.message.clone();
    Ok(ApiResponse::ok(test).with_message(message))
}

/// Tables and views with their columns, foreign keys and estimated row counts, read by a worker. Schemas are
/// cached (shared by all workers, `worker.schema_cache_ttl_secs`); `refresh=true` reads the catalog again.
#[utoipa::path(get, path = "/connections/{id}/schema", tag = "connections", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The connection's id"), SchemaParams),
    responses((status = 200, body = Envelope<DbSchema>),
        (status = 424, description = "The database could not be read (`DATABASE_ERROR`)", body = ErrorEnvelope),
        CommonErrors))]
async fn schema(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
    ValidQuery(params): ValidQuery<SchemaParams>,
) -> Result<ApiResponse<DbSchema>, ApiError> {
    state.store.connection(auth.user_id, id).await?.ok_or_else(|| ApiError::not_found("connection"))?;
    let task = WorkerTask::Schema { connection_id: id, refresh: params.refresh.unwrap_or(false) };
    match workers::ask(&state, auth.user_id, task).await? {
        WorkerOutcome::Schema(schema) => Ok(ApiResponse::ok(schema)),
        other => Err(workers::unexpected(&other)),
    }
}

/// The SSRF guard for servers, the directory rule for SQLite files.
async fn check_destination(state: &AppState, connection: &NewConnection) -> Result<(), ApiError> {
    match (&connection.host, connection.port) {
        (Some(host), Some(port)) => validate::allowed_destination(&state.settings.network, "host", host, port).await,
        _ if connection.driver == Driver::Sqlite => {
            validate::sqlite_path(&state.settings.sqlite_dir(), &connection.database)
        }
        _ => Ok(()),
    }
}

fn new_connection(request: CreateConnection) -> Result<NewConnection, ApiError> {
    let name = validate::required_text("name", &request.name, MAX_NAME_CHARS)?;
    let driver = driver(&request.driver)?;
    let database = match driver {
        Driver::Redis => redis_database(&request.database)?,
        _ => validate::required_text("database", &request.database, MAX_DATABASE_CHARS)?,
    };
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
    // A Redis login may be the server's `default` user, which needs no name (only a password, if any).
    let username = match validate::optional_text("username", request.username.as_deref(), MAX_USERNAME_CHARS)? {
        None if driver != Driver::Redis => {
            return Err(ApiError::invalid_field(
                "username",
                "required",
                format!("`username` is required for {driver}"),
            ));
        }
        other => other,
    };
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
        username,
        password,
        database,
        is_default,
    })
}

fn driver(value: &str) -> Result<Driver, ApiError> {
    validate::required_text("driver", value, MAX_NAME_CHARS)?.parse::<Driver>().map_err(|_| {
        ApiError::invalid_field("driver", "unsupported", "`driver` must be mysql, postgresql, sqlite or redis")
    })
}

/// Highest Redis database number accepted; the targets layer checks the same range.
const MAX_REDIS_DB: u8 = 15;

/// A Redis connection's `database` is its db number, `0` to `15` (empty means `0`).
fn redis_database(value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok("0".to_owned());
    }
    match value.parse::<u8>() {
        Ok(n) if n <= MAX_REDIS_DB => Ok(n.to_string()),
        _ => Err(ApiError::invalid_field(
            "database",
            "invalid",
            format!("`database` of a Redis connection is its db number, 0 to {MAX_REDIS_DB}"),
        )),
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
    fn redis_takes_a_db_number_and_an_optional_user() {
        let new =
            new_connection(CreateConnection { username: None, database: "3".into(), ..request("redis") }).unwrap();
        assert_eq!((new.port, new.username, new.database.as_str()), (Some(6379), None, "3"));
        for bad in ["16", "-1", "sales"] {
            let err = new_connection(CreateConnection { database: bad.into(), ..request("redis") }).unwrap_err();
            assert!(matches!(err, ApiError::Validation { ref details, .. } if details["field"] == "database"), "{bad}");
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
        for bad in ["oracle", ""] {
            let err = new_connection(request(bad)).unwrap_err();
            assert!(matches!(err, ApiError::Validation { ref details, .. } if details["field"] == "driver"), "{bad}");
        }
    }
}
