//! Fresh databases on the real servers for each test.

use uuid::Uuid;

pub fn pg_url() -> String {
    std::env::var("QUERYGPT_TEST_PG_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

pub fn mysql_url() -> String {
    std::env::var("QUERYGPT_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

pub fn redis_url() -> String {
    std::env::var("QUERYGPT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn nats_url() -> String {
    std::env::var("QUERYGPT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Replaces the database name (last path segment) of a URL.
fn with_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("database URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// Test databases older than this are dropped by the next test that creates one. Their names carry their creation
/// time, because a test that fails or is killed cannot be trusted to clean up after itself.
const STALE_AFTER_SECS: u64 = 3 * 3600;

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// `qgit_<created at>_<random>`.
fn database_name() -> String {
    format!("qgit_{}_{}", unix_now(), Uuid::new_v4().simple())
}

/// The names among `names` that an earlier run left behind long enough ago.
fn stale(names: Vec<String>) -> Vec<String> {
    let created = |name: &str| name.strip_prefix("qgit_")?.split('_').next()?.parse::<u64>().ok();
    names.into_iter().filter(|name| created(name).is_some_and(|t| t + STALE_AFTER_SECS < unix_now())).collect()
}

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let name = database_name();
    let mut admin = sqlx::PgConnection::connect(&pg_url()).await.expect("connect to PostgreSQL");
    let existing = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'qgit%'")
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
    for old in stale(existing) {
        let drop = format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)");
        let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await;
    }
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut admin).await.expect("create database");
    with_database(&pg_url(), &name)
}

/// Creates an empty MariaDB/MySQL database and returns its URL.
pub async fn fresh_mysql_database() -> String {
    use sqlx::Connection;
    let name = database_name();
    let mut admin = sqlx::MySqlConnection::connect(&mysql_url()).await.expect("connect to MariaDB");
    let existing =
        sqlx::query_scalar("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'qgit%'")
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
    for old in stale(existing) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {old}"))).execute(&mut admin).await;
    }
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut admin).await.expect("create database");
    with_database(&mysql_url(), &name)
}

/// A small sales table used as a target: 3 regions, 12 orders.
pub const SALES_SETUP: &[&str] = &[
    "CREATE TABLE sales (id INT PRIMARY KEY, region VARCHAR(20) NOT NULL, amount DECIMAL(10,2) NOT NULL, sold_on DATE NOT NULL)",
    "INSERT INTO sales VALUES (1,'north',100.50,'2024-01-05'),(2,'south',200.00,'2024-01-17'),(3,'west',50.25,'2024-02-02'),(4,'north',75.00,'2024-02-11'),(5,'south',20.00,'2024-03-03'),(6,'west',300.00,'2024-03-09'),(7,'north',10.00,'2024-03-21'),(8,'south',90.00,'2024-04-01'),(9,'west',60.00,'2024-04-15'),(10,'north',45.00,'2024-05-05'),(11,'south',30.00,'2024-05-20'),(12,'west',80.00,'2024-06-30')",
];

/// A fresh PostgreSQL target with the sales table; returns its URL.
pub async fn postgres_target() -> String {
    use sqlx::Connection;
    let url = fresh_postgres_database().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect target");
    for statement in SALES_SETUP {
        sqlx::query(*statement).execute(&mut conn).await.expect("setup target");
    }
    url
}

/// A fresh MariaDB target with the sales table; returns its URL.
pub async fn mysql_target() -> String {
    use sqlx::Connection;
    let url = fresh_mysql_database().await;
    let mut conn = sqlx::MySqlConnection::connect(&url).await.expect("connect target");
    for statement in SALES_SETUP {
        sqlx::query(*statement).execute(&mut conn).await.expect("setup target");
    }
    url
}

/// A SQLite target file with the sales table.
pub async fn sqlite_target(dir: &std::path::Path) -> String {
    use sqlx::Connection;
    let path = dir.join(format!("target-{}.db", Uuid::new_v4().simple()));
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("create SQLite target");
    for statement in SALES_SETUP {
        sqlx::query(*statement).execute(&mut conn).await.expect("setup target");
    }
    conn.close().await.expect("close");
    path.display().to_string()
}

/// The parts of a URL a connection needs: host, port, user, password, database.
pub fn connection_body(name: &str, driver: &str, url: &str) -> serde_json::Value {
    let parsed = url::Url::parse(url).expect("URL");
    serde_json::json!({
        "name": name,
        "driver": driver,
        "host": parsed.host_str(),
        "port": parsed.port(),
        "username": parsed.username(),
        "password": parsed.password().unwrap_or(""),
        "database": parsed.path().trim_start_matches('/'),
    })
}

/// A `redis-server` of one test's own, on a free port, that the test can kill and start again on the same port
/// (a Redis outage the shared Redis must not suffer). Nothing is persisted: a restart starts empty.
pub struct OwnRedis {
    pub port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    pub async fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `kill -9`: every connection breaks at once.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL redis-server");
            child.wait().await.expect("redis-server reaped");
        }
    }

    /// Starts the server (again) and waits until it answers `PING`.
    pub async fn restart(&mut self) {
        let port = self.port.to_string();
        let server = std::env::var("QUERYGPT_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = tokio::process::Command::new(server)
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (scripts/services.sh installs it)");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("redis URL");
        for _ in 0..200 {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {port} did not start");
    }
}

/// A `nats-server` with JetStream of one test's own, on a free port with its own store directory, that the test
/// can stop (SIGTERM, as an operator would) and start again on the same port and store.
pub struct OwnNats {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl OwnNats {
    pub async fn start() -> OwnNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut nats = OwnNats { port, store: tempfile::tempdir().expect("store dir"), child: None };
        nats.restart().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGTERM, then waits for the server to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().expect("running").to_string();
            let status = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
            assert!(status.success(), "kill -TERM {pid}");
            match tokio::time::timeout(std::time::Duration::from_secs(20), child.wait()).await {
                Ok(exited) => drop(exited.expect("nats-server reaped")),
                Err(_) => panic!("nats-server did not stop within 20 s"),
            }
        }
    }

    /// Starts the server (again, on the same store) and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let (port, dir) = (self.port.to_string(), self.store.path().display().to_string());
        let server = std::env::var("QUERYGPT_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = tokio::process::Command::new(server)
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd", &dir])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server is installed (scripts/services.sh installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            // The server greets every connection with its INFO line.
            if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                use tokio::io::AsyncReadExt;
                let mut greeting = [0u8; 4];
                if stream.read_exact(&mut greeting).await.is_ok() && &greeting == b"INFO" {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("nats-server on port {port} did not start");
    }
}

/// A PostgreSQL server of one test's own (initdb into a temp dir, run as the `postgres` user, trust auth for
/// `root`), that the test can stop and start again: a store outage the shared server must not suffer.
pub struct OwnPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
}

impl OwnPostgres {
    pub async fn start() -> OwnPostgres {
        let bin = match std::env::var_os("QUERYGPT_TEST_PG_BIN") {
            Some(bin) => std::path::PathBuf::from(bin),
            None => std::fs::read_dir("/usr/lib/postgresql")
                .expect("PostgreSQL is installed (scripts/services.sh installs it)")
                .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
                .find(|bin| bin.join("initdb").exists())
                .expect("an initdb"),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut pg = OwnPostgres { port, dir, bin };
        pg.run(&["chown", "-R", "postgres", &pg.dir.path().display().to_string()], false).await;
        let data = pg.data();
        let initdb = pg.bin.join("initdb").display().to_string();
        pg.run(&[&initdb, "-D", &data, "-A", "trust", "-U", "root", "--no-sync"], true).await;
        pg.restart().await;
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs `args`, as the `postgres` user when `as_postgres`; panics unless it succeeds.
    async fn run(&self, args: &[&str], as_postgres: bool) {
        let mut command = if as_postgres {
            let mut command = tokio::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).args(args);
            command
        } else {
            let mut command = tokio::process::Command::new(args[0]);
            command.args(&args[1..]);
            command
        };
        let output = command.output().await.expect("run a PostgreSQL tool");
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    pub fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(&[&pg_ctl, "-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"], true).await;
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are cut, as in a restart).
    pub async fn stop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        self.run(&[&pg_ctl, "-D", &self.data(), "-m", "fast", "-w", "stop"], true).await;
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_ctl)
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}
