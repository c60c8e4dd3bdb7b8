//! Defence in depth, layer 2: every statement of the attack corpora (`querygpt_sqlsafe::corpus`) is sent straight to a
//! real database through [`Targets::execute`], which does not run the layer-1 validator, and must leave the target
//! exactly as it was.
//!
//! Each test deploys the way the README tells operators to: a fresh database and a fresh least-privilege login that
//! may only read it (never a superuser: the corpus holds `COPY ... TO PROGRAM`, `pg_terminate_backend`, `KILL`,
//! `INTO OUTFILE`...). The target is fingerprinted before the corpus, after every attack (so that a change names the
//! statement that made it) and once the pools are closed: per table its row count and an order-independent hash of
//! its rows, plus the catalog (relations, columns, functions, sequences' values, schemas, roles and grants, locks,
//! server settings), the files the attacks name (`/tmp/...`) and, for SQLite, every file of the directory.

mod common;

use common::{Server, spec_for};
use querygpt_common::config::SecretString;
use querygpt_sqlsafe::corpus::{self, Entry};
use querygpt_sqlsafe::{Dialect, LintTarget};
use querygpt_targets::{QueryOutput, TargetError, TargetSettings, TargetSpec, Targets};
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ColumnIndex, ConnectOptions, Connection, Decode, Executor, Row, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Short, so that `pg_sleep(60)` or `SLEEP(10)` end quickly.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Fingerprint of a target: `"<what>: <row>"` -> how many times that row was seen.
type Snapshot = BTreeMap<String, usize>;

fn settings(sqlite_root: Option<PathBuf>) -> TargetSettings {
    TargetSettings {
        statement_timeout: STATEMENT_TIMEOUT,
        connect_timeout: Duration::from_secs(5),
        sqlite_root,
        ..common::settings()
    }
}

/// A spec reaching `database` on the server `C`, logging in as `user`.
fn spec_as<C: Server>(database: &str, user: &str, password: &str) -> TargetSpec {
    TargetSpec {
        username: Some(user.to_owned()),
        password: Some(SecretString::new(password)),
        ..spec_for(C::DRIVER, &C::url(), database)
    }
}

/// Database and login names of one test: `qg_l2_<uuid>` (the `qg_` prefix marks throw-away test objects).
fn unique_name() -> String {
    format!("qg_l2_{}", uuid::Uuid::new_v4().simple())
}

fn attacks(dialect: Dialect) -> Vec<Entry> {
    let path = corpus::attacks_file(LintTarget::Sql(dialect));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let entries = corpus::parse(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    assert!(entries.len() > 20, "{}: only {} entries", path.display(), entries.len());
    entries
}

/// Runs `body` in its own task so that `cleanup` runs even when it panics; the panic is then resumed.
async fn guarded<T: Send + 'static>(
    body: impl Future<Output = T> + Send + 'static,
    cleanup: impl Future<Output = ()>,
) -> T {
    let outcome = tokio::spawn(body).await;
    cleanup.await;
    match outcome {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task failed: {e}"),
    }
}

/// The admin connection of the server `C`, to its default database or to `database`, after `setup` (time limits:
/// a lock left behind by an attack shows as a failed fingerprint, not as a hung test). Never used for the corpus.
async fn admin<C: Server>(database: Option<&str>, setup: &'static str) -> C
where
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    let url = match database {
        Some(db) => common::with_database(&C::url(), db),
        None => C::url(),
    };
    let mut conn = C::connect(&url).await.expect("connect as admin");
    sqlx::raw_sql(setup).execute(&mut conn).await.unwrap();
    conn
}

/// Drops the test's database and login (both named `name`) on the server `C`; what fails is only reported.
async fn cleanup<C: Server>(name: &str)
where
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    let Ok(mut admin) = C::connect(&C::url()).await else {
        eprintln!("cleanup: cannot connect to drop {name}");
        return;
    };
    // `DROP USER` is PostgreSQL's other name for `DROP ROLE`; MySQL takes the `'%'` host when none is given.
    for sql in [C::drop_database(name), format!("DROP USER IF EXISTS {name}")] {
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql.clone())).execute(&mut admin).await {
            eprintln!("cleanup: {sql}: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Running the corpus

/// What each attack got back.
#[derive(Debug, Default)]
struct Tally {
    attacks: usize,
    returned_rows: usize,
    read_only: usize,
    database: usize,
    timeout: usize,
    /// Results refused by this layer's own size limit (`zeroblob(1000000000)`).
    too_large: usize,
    /// Errors that mean the statement never reached the database (connection, spec): they would prove nothing.
    other: Vec<String>,
}

impl Tally {
    fn refused(&self) -> usize {
        self.read_only + self.database + self.timeout + self.too_large
    }

    fn record(&mut self, result: &Result<QueryOutput, TargetError>) -> String {
        self.attacks += 1;
        match result {
            Ok(out) => {
                self.returned_rows += 1;
                format!("returned {} row(s){}", out.rows.len(), if out.truncated { " (truncated)" } else { "" })
            }
            Err(TargetError::ReadOnlyViolation(m)) => {
                self.read_only += 1;
                format!("refused by the read-only session: {}", short(m, 90))
            }
            Err(TargetError::QueryFailed(m)) => {
                self.database += 1;
                format!("refused by the database: {}", short(m, 90))
            }
            Err(TargetError::Timeout(_)) => {
                self.timeout += 1;
                "stopped at the time limit".to_owned()
            }
            Err(TargetError::TooLarge(m)) => {
                self.too_large += 1;
                format!("refused by the result size limit: {}", short(m, 90))
            }
            Err(other) => {
                self.other.push(other.to_string());
                format!("DID NOT RUN: {other}")
            }
        }
    }
}

/// An attack after which the fingerprint differed.
#[derive(Debug)]
struct Change {
    line: usize,
    statement: String,
    diff: Vec<String>,
}

struct Report {
    dialect: Dialect,
    tally: Tally,
    changes: Vec<Change>,
    baseline: Snapshot,
    after: Snapshot,
    after_close: Snapshot,
    elapsed: Duration,
}

impl Report {
    fn check(self) {
        let t = &self.tally;
        let dialect = self.dialect;
        eprintln!(
            "layer 2 / {dialect}: {} attacks run in {:.1}s: {} refused ({} by the read-only session, {} by the \
             database, {} stopped at the time limit, {} over the result size limit), {} returned rows harmlessly, {} \
             did not run; fingerprint of {} entries, {} change(s)",
            t.attacks,
            self.elapsed.as_secs_f64(),
            t.refused(),
            t.read_only,
            t.database,
            t.timeout,
            t.too_large,
            t.returned_rows,
            t.other.len(),
            self.baseline.len(),
            self.changes.len(),
        );
        let mut problems = Vec::new();
        for change in &self.changes {
            problems.push(format!(
                "line {} changed the target:\n    {}\n  {}",
                change.line,
                change.statement.replace('\n', "\n    "),
                change.diff.join("\n  ")
            ));
        }
        if self.after != self.baseline {
            problems.push(format!("after the corpus:\n  {}", diff(&self.baseline, &self.after).join("\n  ")));
        }
        if self.after_close != self.baseline {
            problems
                .push(format!("after closing the pools:\n  {}", diff(&self.baseline, &self.after_close).join("\n  ")));
        }
        if !t.other.is_empty() {
            problems.push(format!("attacks that never reached the database: {:?}", t.other));
        }
        assert!(problems.is_empty(), "layer 2 / {dialect}:\n{}", problems.join("\n"));
        assert!(t.refused() > t.attacks / 2, "layer 2 / {dialect}: suspiciously few refusals: {t:?}");
    }
}

/// Reads a fingerprint of the target, with the admin's connection or a file of its own; never through `Targets`.
trait Probe {
    async fn snapshot(&mut self) -> Snapshot;
}

async fn run_corpus(dialect: Dialect, targets: &Targets, spec: &TargetSpec, probe: &mut impl Probe) -> Report {
    let entries = attacks(dialect);
    let key = format!("layer2-{dialect}");
    let started = Instant::now();
    let baseline = probe.snapshot().await;
    let mut current = baseline.clone();
    let mut tally = Tally::default();
    let mut changes = Vec::new();
    for entry in &entries {
        let result = targets.execute(&key, spec, &entry.statement).await;
        let outcome = tally.record(&result);
        eprintln!("{dialect} line {:>3}: {outcome}  <- {}", entry.line, short(&entry.statement, 70));
        let now = probe.snapshot().await;
        if now != current {
            eprintln!("{dialect} line {:>3}: THE TARGET CHANGED", entry.line);
            changes.push(Change { line: entry.line, statement: entry.statement.clone(), diff: diff(&current, &now) });
            current = now;
        }
    }
    let after = current;
    // Session state (locks, settings) ends with the connections.
    targets.close().await;
    let after_close = probe.snapshot().await;
    Report { dialect, tally, changes, baseline, after, after_close, elapsed: started.elapsed() }
}

fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| match (before.get(k), after.get(k)) {
            (None, _) => format!("+ {k}"),
            (_, None) => format!("- {k}"),
            (Some(a), Some(b)) => format!("~ {k} (seen {a} times, now {b})"),
        })
        .collect()
}

fn short(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &flat[..at]),
        None => flat,
    }
}

fn add(snapshot: &mut Snapshot, what: &str, rows: Result<Vec<Vec<String>>, String>) {
    match rows {
        Ok(rows) => {
            for row in rows {
                *snapshot.entry(format!("{what}: {}", row.join(" | "))).or_default() += 1;
            }
        }
        Err(e) => *snapshot.entry(format!("{what}: ERROR {e}")).or_default() += 1,
    }
}

/// Every column of `rows` as text (`NULL` for null), for drivers that decode any column as a string.
fn texts<R: Row>(rows: &[R]) -> Result<Vec<Vec<String>>, String>
where
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.try_get::<Option<String>, _>(i).map(|v| v.unwrap_or_else(|| "NULL".into())))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn hash_of(value: &impl Hash) -> String {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Absolute paths the attacks name in string literals (`'/tmp/pwned'`, `'file:/tmp/x.db?mode=rwc'`).
fn named_paths(entries: &[Entry]) -> Vec<PathBuf> {
    let mut paths = BTreeSet::new();
    for entry in entries {
        for literal in entry.statement.split('\'').skip(1).step_by(2) {
            let path = literal.strip_prefix("file:").unwrap_or(literal);
            let path = path.split('?').next().unwrap_or(path);
            if path.starts_with('/') {
                paths.insert(PathBuf::from(path));
            }
        }
    }
    paths.into_iter().collect()
}

fn add_paths(snapshot: &mut Snapshot, paths: &[PathBuf]) {
    for path in paths {
        let state = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "absent".to_owned(),
            Err(e) => format!("unreadable ({})", e.kind()),
            Ok(m) if m.is_dir() => "directory".to_owned(),
            Ok(m) => format!("file of {} bytes modified {:?}", m.len(), m.modified().ok()),
        };
        *snapshot.entry(format!("path {}: {state}", path.display())).or_default() += 1;
    }
}

/// The rows of the shop, the same in every target (only the products differ: SQLite's have images), in SQL that the
/// three databases read alike. Each fixture creates the tables and the products first.
const SHOP_ROWS: &str = r#"
INSERT INTO departments VALUES (1, 'Sales', 100000), (2, 'Engineering', 250000), (3, 'Support', NULL);
INSERT INTO employees VALUES (1, 'Ada', 2, NULL, 9000, '2020-01-15'), (2, 'Grace', 2, 1, 8500, '2021-03-01'),
    (3, 'Linus', 1, 1, 6000, '2022-07-11'), (4, 'Ken', 3, 3, NULL, NULL);
INSERT INTO customers (name, email, city) VALUES ('Alice', 'alice@example.com', 'Paris'),
    ('Bob', 'bob@example.com', 'Berlin'), ('Chen', NULL, 'Shanghai'), ('Dana', 'dana@example.com', NULL);
INSERT INTO orders (customer_id, status, total, ordered_at) VALUES (1, 'paid', 43.70, '2024-03-01 10:00:00'),
    (2, 'shipped', 12.50, '2024-03-02 11:30:00'), (1, 'pending', 30.00, '2024-03-05 09:15:00'),
    (3, 'cancelled', NULL, NULL);
INSERT INTO order_items VALUES (1, 1, 1, 12.50), (1, 3, 1, 1.20), (1, 2, 1, 30.00), (2, 1, 1, 12.50), (3, 2, 1, 30.00);
INSERT INTO payments (order_id, amount, method, paid_at) VALUES (1, 43.70, 'card', '2024-03-01 10:05:00'),
    (2, 12.50, 'paypal', '2024-03-02 11:31:00');
INSERT INTO events (customer_id, kind, payload, at) VALUES (1, 'login', '{"ip": "10.0.0.1"}', '2024-03-01 09:59:00'),
    (2, 'search', '{"q": "lamp"}', '2024-03-02 11:00:00'), (NULL, 'error', NULL, NULL);
"#;

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

const PG_FIXTURE: &str = r#"
-- The times of the shop's rows are UTC.
SET TIME ZONE 'UTC';
CREATE TABLE departments (id int PRIMARY KEY, name text NOT NULL, budget numeric(12,2));
CREATE TABLE employees (id int PRIMARY KEY, name text NOT NULL, department_id int REFERENCES departments (id),
    manager_id int REFERENCES employees (id), salary numeric(10,2), hired_on date);
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, city text,
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00');
CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, category text, price numeric(10,2) NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers (id), status text NOT NULL,
    total numeric(10,2), ordered_at timestamptz);
CREATE TABLE order_items (order_id int REFERENCES orders (id), product_id int REFERENCES products (id),
    quantity int NOT NULL, unit_price numeric(10,2), PRIMARY KEY (order_id, product_id));
CREATE TABLE payments (id serial PRIMARY KEY, order_id int REFERENCES orders (id), amount numeric(10,2), method text,
    paid_at timestamptz);
CREATE TABLE events (id bigserial PRIMARY KEY, customer_id int, kind text NOT NULL, payload jsonb, at timestamptz);
CREATE SEQUENCE invoice_numbers START 1000;
SELECT nextval('invoice_numbers');
CREATE VIEW customer_totals AS
    SELECT c.id, c.name, coalesce(sum(o.total), 0) AS total FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
    GROUP BY c.id, c.name;
CREATE FUNCTION order_count(customer int) RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM orders WHERE customer_id = customer $$;
INSERT INTO products (name, category, price) VALUES ('Book', 'Books', 12.50), ('Lamp', 'Home', 30.00),
    ('Pen', 'Office', 1.20);
"#;

async fn pg_rows(conn: &mut PgConnection, sql: &str) -> Result<Vec<Vec<String>>, String> {
    texts(&sqlx::query(AssertSqlSafe(sql.to_owned())).fetch_all(conn).await.map_err(|e| e.to_string())?)
}

struct PgProbe {
    conn: PgConnection,
    role: String,
    paths: Vec<PathBuf>,
}

impl Probe for PgProbe {
    async fn snapshot(&mut self) -> Snapshot {
        let role = &self.role;
        // Objects named `qg_...` other than this test's belong to other tests running at the same time.
        let catalog = [
            (
                "relation",
                "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text, coalesce(c.relacl::text, ''), \
                        pg_get_userbyid(c.relowner)::text \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
                    .to_owned(),
            ),
            (
                "columns",
                "SELECT format('%I.%I', n.nspname, c.relname), \
                        string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) \
                                   || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY a.attnum) \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE a.attnum > 0 AND NOT a.attisdropped \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' \
                 GROUP BY 1"
                    .to_owned(),
            ),
            (
                "function",
                "SELECT p.oid::regprocedure::text, p.prokind::text, coalesce(p.proacl::text, ''), md5(p.prosrc) \
                 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                    .to_owned(),
            ),
            (
                "trigger/rule/policy",
                "SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname::text FROM pg_trigger \
                 WHERE NOT tgisinternal \
                 UNION ALL SELECT 'rule ' || ev_class::regclass::text || ' ' || rulename::text || ' ' \
                                  || md5(pg_get_ruledef(oid)) FROM pg_rewrite WHERE oid >= 16384 \
                 UNION ALL SELECT 'policy ' || polrelid::regclass::text || ' ' || polname::text FROM pg_policy \
                 UNION ALL SELECT 'event trigger ' || evtname::text FROM pg_event_trigger"
                    .to_owned(),
            ),
            (
                "schema",
                "SELECT nspname::text, coalesce(nspacl::text, ''), pg_get_userbyid(nspowner)::text FROM pg_namespace"
                    .to_owned(),
            ),
            ("extension", "SELECT extname::text, extversion FROM pg_extension".to_owned()),
            (
                "database",
                "SELECT datname::text, coalesce(datacl::text, ''), datallowconn::text, pg_get_userbyid(datdba)::text \
                 FROM pg_database WHERE datname NOT LIKE 'qg\\_%' OR datname = current_database()"
                    .to_owned(),
            ),
            (
                "role",
                format!(
                    "SELECT rolname::text, rolsuper::text, rolinherit::text, rolcreaterole::text, rolcreatedb::text, \
                            rolcanlogin::text, rolreplication::text, rolbypassrls::text, rolconnlimit::text, \
                            md5(coalesce(rolpassword, '')), coalesce(rolvaliduntil::text, '') \
                     FROM pg_authid WHERE rolname NOT LIKE 'qg\\_%' OR rolname = '{role}'"
                ),
            ),
            (
                "membership",
                format!(
                    "SELECT r.rolname::text, m.rolname::text, a.admin_option::text FROM pg_auth_members a \
                     JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
                     WHERE (r.rolname NOT LIKE 'qg\\_%' OR r.rolname = '{role}') \
                       AND (m.rolname NOT LIKE 'qg\\_%' OR m.rolname = '{role}')"
                ),
            ),
            (
                "role setting",
                format!(
                    "SELECT coalesce(d.datname::text, '*'), coalesce(r.rolname::text, '*'), s.setconfig::text \
                     FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase \
                     LEFT JOIN pg_roles r ON r.oid = s.setrole \
                     WHERE (d.datname IS NULL OR d.datname NOT LIKE 'qg\\_%' OR d.datname = current_database()) \
                       AND (r.rolname IS NULL OR r.rolname NOT LIKE 'qg\\_%' OR r.rolname = '{role}')"
                ),
            ),
            (
                "postgresql.auto.conf",
                "SELECT name, coalesce(setting, ''), applied::text FROM pg_file_settings \
                 WHERE sourcefile LIKE '%postgresql.auto.conf'"
                    .to_owned(),
            ),
            ("large object", "SELECT oid::text FROM pg_largeobject_metadata".to_owned()),
            (
                // Held by other sessions in this database (the pooled ones, idle between attacks).
                "lock",
                "SELECT locktype, mode, granted::text, coalesce(relation::regclass::text, ''), \
                        coalesce(classid::text, ''), coalesce(objid::text, ''), coalesce(objsubid::text, '') \
                 FROM pg_locks WHERE pid <> pg_backend_pid() \
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    .to_owned(),
            ),
            (
                "prepared transaction",
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()".to_owned(),
            ),
        ];
        let mut snapshot = Snapshot::new();
        for (what, sql) in &catalog {
            add(&mut snapshot, what, pg_rows(&mut self.conn, sql).await);
        }
        let relations = pg_rows(
            &mut self.conn,
            "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'm', 'S') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'",
        )
        .await
        .unwrap_or_default();
        for row in relations {
            let (name, kind) = (&row[0], &row[1]);
            let sql = if kind == "S" {
                format!("SELECT last_value::text, is_called::text FROM {name}")
            } else {
                format!(
                    "SELECT count(*)::text, coalesce(md5(string_agg(md5(t::text), ',' ORDER BY md5(t::text))), '') \
                     FROM {name} t"
                )
            };
            let what = if kind == "S" { format!("sequence {name}") } else { format!("rows {name}") };
            add(&mut snapshot, &what, pg_rows(&mut self.conn, &sql).await);
        }
        add_paths(&mut snapshot, &self.paths);
        snapshot
    }
}

/// Session settings of the admin (superuser) connection.
const PG_ADMIN: &str = "SET statement_timeout = '10s'; SET lock_timeout = '5s'";

async fn pg_body(name: String, password: String) -> Report {
    let role = name.clone();
    {
        let mut admin = admin::<PgConnection>(None, PG_ADMIN).await;
        // One statement each: CREATE DATABASE cannot run in the implicit transaction of a multi-statement query.
        let setup = [
            format!("CREATE DATABASE {name}"),
            format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT \
                 NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 8"
            ),
        ];
        for sql in setup {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut admin).await.expect("create database and role");
        }
    }
    let mut admin = admin::<PgConnection>(Some(&name), PG_ADMIN).await;
    let grants = format!(
        "REVOKE ALL ON DATABASE {name} FROM PUBLIC; GRANT CONNECT ON DATABASE {name} TO {role}; \
         REVOKE ALL ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO {role}; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; \
         GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};"
    );
    sqlx::raw_sql(AssertSqlSafe(format!("{PG_FIXTURE}{SHOP_ROWS}{grants}")))
        .execute(&mut admin)
        .await
        .expect("fixture");

    let targets = Targets::new(settings(None));
    let spec = spec_as::<PgConnection>(&name, &role, &password);
    // The corpus runs as the least-privilege role, which can read the fixture.
    let who = targets
        .execute(
            "layer2-postgresql",
            &spec,
            "SELECT current_user::text AS who, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su, \
                    (SELECT count(*) FROM customers) AS customers",
        )
        .await
        .expect("the role reads the fixture");
    let row = &who.rows[0];
    assert_eq!(row["who"], serde_json::json!(role));
    assert_eq!(row["su"], serde_json::json!(false));
    assert_eq!(row["customers"], serde_json::json!(4));
    // The connection test has nothing to warn about for the login the README recommends.
    let info = targets.test("layer2-postgresql", &spec).await.expect("connection test");
    assert_eq!(info.warnings, Vec::<String>::new());

    let mut probe = PgProbe { conn: admin, role, paths: named_paths(&attacks(Dialect::Postgresql)) };
    run_corpus(Dialect::Postgresql, &targets, &spec, &mut probe).await
}

#[tokio::test]
async fn postgresql_attacks_leave_the_target_unchanged() {
    let name = unique_name();
    let password = uuid::Uuid::new_v4().simple().to_string();
    let report = guarded(pg_body(name.clone(), password), cleanup::<PgConnection>(&name)).await;
    report.check();
}

// ---------------------------------------------------------------------------------------------------------------
// MySQL / MariaDB

const MYSQL_FIXTURE: &str = r#"
CREATE TABLE departments (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, budget DECIMAL(12,2));
CREATE TABLE employees (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, department_id INT, manager_id INT,
    salary DECIMAL(10,2), hired_on DATE, FOREIGN KEY (department_id) REFERENCES departments (id));
CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(100) UNIQUE,
    city VARCHAR(50), created_at DATETIME NOT NULL DEFAULT '2024-01-01 00:00:00');
CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, category VARCHAR(50),
    price DECIMAL(10,2) NOT NULL);
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT, status VARCHAR(20) NOT NULL,
    total DECIMAL(10,2), ordered_at DATETIME, FOREIGN KEY (customer_id) REFERENCES customers (id));
CREATE TABLE order_items (order_id INT, product_id INT, quantity INT NOT NULL, unit_price DECIMAL(10,2),
    PRIMARY KEY (order_id, product_id), FOREIGN KEY (order_id) REFERENCES orders (id),
    FOREIGN KEY (product_id) REFERENCES products (id));
CREATE TABLE payments (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, amount DECIMAL(10,2), method VARCHAR(20),
    paid_at DATETIME, FOREIGN KEY (order_id) REFERENCES orders (id));
CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT, kind VARCHAR(20) NOT NULL, payload JSON,
    at DATETIME);
CREATE SEQUENCE invoice_numbers START WITH 1000;
SELECT NEXTVAL(invoice_numbers);
CREATE VIEW customer_totals AS
    SELECT c.id, c.name, COALESCE(SUM(o.total), 0) AS total FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
    GROUP BY c.id, c.name;
CREATE FUNCTION order_count(customer INT) RETURNS BIGINT READS SQL DATA
    RETURN (SELECT COUNT(*) FROM orders WHERE customer_id = customer);
INSERT INTO products (name, category, price) VALUES ('Book', 'Books', 12.50), ('Lamp', 'Home', 30.00),
    ('Pen', 'Office', 1.20);
"#;

/// Every selected column must be a string (cast in SQL): the binary protocol sends numbers as binary.
async fn my_rows(conn: &mut MySqlConnection, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let rows = sqlx::query(AssertSqlSafe(sql.to_owned())).fetch_all(conn).await.map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| match row.try_get_unchecked::<Option<Vec<u8>>, _>(i) {
                    Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                    Ok(None) => "NULL".to_owned(),
                    Err(e) => format!("undecodable: {e}"),
                })
                .collect()
        })
        .collect())
}

/// `GET_LOCK('name', ...)` names in the corpus: user locks are server-wide and outlive a transaction.
fn lock_names(entries: &[Entry]) -> Vec<String> {
    let mut names = BTreeSet::new();
    for entry in entries {
        let upper = entry.statement.to_ascii_uppercase();
        if upper.contains("GET_LOCK(")
            && let Some(name) = entry.statement.split('\'').nth(1)
        {
            names.insert(name.to_owned());
        }
    }
    names.into_iter().collect()
}

struct MyProbe {
    conn: MySqlConnection,
    database: String,
    user: String,
    paths: Vec<PathBuf>,
    locks: Vec<String>,
}

impl Probe for MyProbe {
    async fn snapshot(&mut self) -> Snapshot {
        let (db, user) = (&self.database, &self.user);
        let mut catalog = vec![
            (
                "table",
                format!(
                    "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(ENGINE, ''), CAST(COALESCE(AUTO_INCREMENT, 0) AS CHAR), \
                            COALESCE(CREATE_OPTIONS, '') \
                     FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}'"
                ),
            ),
            (
                "columns",
                format!(
                    "SELECT TABLE_NAME, GROUP_CONCAT(CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE, ' ', IS_NULLABLE) \
                                                     ORDER BY ORDINAL_POSITION SEPARATOR ', ') \
                     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' GROUP BY TABLE_NAME"
                ),
            ),
            (
                "view",
                format!(
                    "SELECT TABLE_NAME, MD5(VIEW_DEFINITION) FROM information_schema.VIEWS \
                     WHERE TABLE_SCHEMA = '{db}'"
                ),
            ),
            (
                "routine",
                format!(
                    "SELECT ROUTINE_TYPE, ROUTINE_NAME, MD5(COALESCE(ROUTINE_DEFINITION, '')) \
                     FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}'"
                ),
            ),
            (
                "trigger",
                format!(
                    "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS \
                     WHERE TRIGGER_SCHEMA = '{db}'"
                ),
            ),
            ("event", format!("SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{db}'")),
            (
                "schema",
                format!(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA \
                     WHERE SCHEMA_NAME NOT LIKE 'qg\\_%' OR SCHEMA_NAME = '{db}'"
                ),
            ),
            (
                // Privileges, password and lock state of every account (MariaDB keeps them as JSON in `Priv`).
                "account",
                format!(
                    "SELECT CONCAT(User, '@', Host), MD5(Priv) FROM mysql.global_priv \
                     WHERE User NOT LIKE 'qg\\_%' OR User = '{user}'"
                ),
            ),
            (
                "database grant",
                format!(
                    "SELECT CONCAT(User, '@', Host, ' on ', Db), \
                            MD5(CONCAT_WS(',', Select_priv, Insert_priv, Update_priv, Delete_priv, Create_priv, \
                                Drop_priv, Grant_priv, References_priv, Index_priv, Alter_priv, \
                                Create_tmp_table_priv, Lock_tables_priv, Create_view_priv, Show_view_priv, \
                                Create_routine_priv, Alter_routine_priv, Execute_priv, Event_priv, Trigger_priv)) \
                     FROM mysql.db WHERE Db = '{db}' OR User = '{user}'"
                ),
            ),
            (
                "table grant",
                format!(
                    "SELECT CONCAT(User, '@', Host, ' on ', Db, '.', Table_name), Table_priv, Column_priv \
                     FROM mysql.tables_priv WHERE Db = '{db}' OR User = '{user}'"
                ),
            ),
            ("grants of the login", format!("SHOW GRANTS FOR '{user}'@'%'")),
            (
                "global",
                "SELECT CAST(@@GLOBAL.max_statement_time AS CHAR), @@GLOBAL.sql_mode, \
                        CAST(@@GLOBAL.read_only AS CHAR), CAST(@@GLOBAL.general_log AS CHAR), \
                        @@GLOBAL.event_scheduler, CAST(@@GLOBAL.local_infile AS CHAR), \
                        CAST(@@GLOBAL.max_connections AS CHAR), CAST(@@GLOBAL.lock_wait_timeout AS CHAR)"
                    .to_owned(),
            ),
        ];
        for name in &self.locks {
            catalog.push(("user lock", format!("SELECT '{name}', CAST(IS_USED_LOCK('{name}') IS NOT NULL AS CHAR)")));
        }
        let mut snapshot = Snapshot::new();
        for (what, sql) in &catalog {
            add(&mut snapshot, what, my_rows(&mut self.conn, sql).await);
        }
        let tables = my_rows(
            &mut self.conn,
            &format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_TYPE <> 'VIEW'"
            ),
        )
        .await
        .unwrap_or_default();
        for row in tables {
            let table = &row[0];
            let columns = my_rows(
                &mut self.conn,
                &format!(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
                ),
            )
            .await
            .unwrap_or_default();
            let quoted: Vec<String> = columns.iter().map(|c| format!("QUOTE(`{}`)", c[0])).collect();
            let sql = format!(
                "SELECT CAST(COUNT(*) AS CHAR), COALESCE(MD5(GROUP_CONCAT(h ORDER BY h SEPARATOR ',')), '') \
                 FROM (SELECT MD5(CONCAT_WS(',', {})) AS h FROM `{db}`.`{table}`) AS x",
                quoted.join(", ")
            );
            add(&mut snapshot, &format!("rows {table}"), my_rows(&mut self.conn, &sql).await);
        }
        add_paths(&mut snapshot, &self.paths);
        snapshot
    }
}

/// Session settings of the admin (root) connection; the probe's `GROUP_CONCAT`s need the long limit.
const MY_ADMIN: &str = "SET SESSION max_statement_time = 10, SESSION lock_wait_timeout = 5, \
                        SESSION innodb_lock_wait_timeout = 5, SESSION group_concat_max_len = 67108864";

async fn my_body(name: String, password: String) -> Report {
    let user = name.clone();
    {
        let mut admin = admin::<MySqlConnection>(None, MY_ADMIN).await;
        let setup = format!(
            "CREATE DATABASE `{name}`; \
             CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; \
             GRANT SELECT ON `{name}`.* TO '{user}'@'%';"
        );
        sqlx::raw_sql(AssertSqlSafe(setup)).execute(&mut admin).await.expect("create database and login");
    }
    let mut admin = admin::<MySqlConnection>(Some(&name), MY_ADMIN).await;
    sqlx::raw_sql(AssertSqlSafe(format!("{MYSQL_FIXTURE}{SHOP_ROWS}"))).execute(&mut admin).await.expect("fixture");

    let targets = Targets::new(settings(None));
    let spec = spec_as::<MySqlConnection>(&name, &user, &password);
    let who = targets
        .execute(
            "layer2-mysql",
            &spec,
            "SELECT CURRENT_USER() AS who, (SELECT COUNT(*) FROM customers) AS customers, \
                    (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES) AS global_privileges",
        )
        .await
        .expect("the login reads the fixture");
    let row = &who.rows[0];
    assert_eq!(row["who"], serde_json::json!(format!("{user}@%")));
    assert_eq!(row["customers"], serde_json::json!(4));
    // Only USAGE at the global level: no FILE, PROCESS, SUPER, SHUTDOWN...
    assert_eq!(row["global_privileges"], serde_json::json!(1));
    let info = targets.test("layer2-mysql", &spec).await.expect("connection test");
    assert_eq!(info.warnings, Vec::<String>::new());

    let entries = attacks(Dialect::Mysql);
    let mut probe =
        MyProbe { conn: admin, database: name, user, paths: named_paths(&entries), locks: lock_names(&entries) };
    run_corpus(Dialect::Mysql, &targets, &spec, &mut probe).await
}

#[tokio::test]
async fn mysql_attacks_leave_the_target_unchanged() {
    let name = unique_name();
    let password = uuid::Uuid::new_v4().simple().to_string();
    let report = guarded(my_body(name.clone(), password), cleanup::<MySqlConnection>(&name)).await;
    report.check();
}

// ---------------------------------------------------------------------------------------------------------------
// SQLite

const SQLITE_FIXTURE: &str = r#"
CREATE TABLE departments (id INTEGER PRIMARY KEY, name TEXT NOT NULL, budget REAL);
CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT NOT NULL, department_id INTEGER REFERENCES departments (id),
    manager_id INTEGER REFERENCES employees (id), salary REAL, hired_on TEXT);
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, city TEXT,
    created_at TEXT NOT NULL DEFAULT '2024-01-01 00:00:00');
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT, price REAL NOT NULL, image BLOB);
CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id INTEGER REFERENCES customers (id),
    status TEXT NOT NULL, total REAL, ordered_at TEXT);
CREATE TABLE order_items (order_id INTEGER REFERENCES orders (id), product_id INTEGER REFERENCES products (id),
    quantity INTEGER NOT NULL, unit_price REAL, PRIMARY KEY (order_id, product_id));
CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders (id), amount REAL, method TEXT,
    paid_at TEXT);
CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id INTEGER, kind TEXT NOT NULL, payload TEXT, at TEXT);
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE VIEW customer_totals AS
    SELECT c.id, c.name, COALESCE(SUM(o.total), 0) AS total FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
    GROUP BY c.id, c.name;
PRAGMA user_version = 7;
INSERT INTO products (name, category, price, image) VALUES ('Book', 'Books', 12.5, x'DEADBEEF'),
    ('Lamp', 'Home', 30.0, NULL), ('Pen', 'Office', 1.2, x'00');
"#;

async fn lite_rows(conn: &mut SqliteConnection, sql: &str) -> Result<Vec<Vec<String>>, String> {
    texts(&sqlx::query(AssertSqlSafe(sql.to_owned())).fetch_all(conn).await.map_err(|e| e.to_string())?)
}

struct LiteProbe {
    dir: PathBuf,
    file: PathBuf,
    paths: Vec<PathBuf>,
}

impl LiteProbe {
    async fn catalog(&self, snapshot: &mut Snapshot) -> Result<(), String> {
        let mut conn = SqliteConnectOptions::new()
            .filename(&self.file)
            .read_only(true)
            .create_if_missing(false)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let schema = "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema";
        add(snapshot, "schema", lite_rows(&mut conn, schema).await);
        let pragmas = "SELECT CAST((SELECT user_version FROM pragma_user_version) AS TEXT), \
                              CAST((SELECT schema_version FROM pragma_schema_version) AS TEXT), \
                              CAST((SELECT application_id FROM pragma_application_id) AS TEXT), \
                              (SELECT journal_mode FROM pragma_journal_mode)";
        add(snapshot, "pragmas", lite_rows(&mut conn, pragmas).await);
        let tables = lite_rows(&mut conn, "SELECT name FROM sqlite_schema WHERE type = 'table'").await?;
        for row in tables {
            let table = &row[0];
            let columns =
                lite_rows(&mut conn, &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")).await?;
            let quoted: Vec<String> = columns.iter().map(|c| format!("quote(\"{}\")", c[0])).collect();
            let mut rows: Vec<String> =
                lite_rows(&mut conn, &format!("SELECT {} FROM \"{table}\"", quoted.join(" || ',' || ")))
                    .await?
                    .into_iter()
                    .map(|mut r| r.remove(0))
                    .collect();
            rows.sort();
            *snapshot.entry(format!("rows {table}: {} | {}", rows.len(), hash_of(&rows))).or_default() += 1;
        }
        conn.close().await.map_err(|e| e.to_string())
    }
}

impl Probe for LiteProbe {
    async fn snapshot(&mut self) -> Snapshot {
        let mut snapshot = Snapshot::new();
        if let Err(e) = self.catalog(&mut snapshot).await {
            *snapshot.entry(format!("catalog: ERROR {e}")).or_default() += 1;
        }
        // After the probe's own connection is closed: every file of the directory, by name, size and content.
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).expect("list the directory") {
            let entry = entry.expect("directory entry");
            let content = std::fs::read(entry.path()).map(|b| hash_of(&b)).unwrap_or_else(|e| e.to_string());
            let size = entry.metadata().map(|m| m.len()).unwrap_or_default();
            files.push(format!("{} ({size} bytes, content {content})", entry.file_name().to_string_lossy()));
        }
        for file in files {
            *snapshot.entry(format!("directory file: {file}")).or_default() += 1;
        }
        add_paths(&mut snapshot, &self.paths);
        snapshot
    }
}

async fn sqlite_body() -> Report {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("shop.db");
    {
        let mut conn = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .connect()
            .await
            .expect("create the fixture file");
        sqlx::raw_sql(AssertSqlSafe(format!("{SQLITE_FIXTURE}{SHOP_ROWS}"))).execute(&mut conn).await.expect("fixture");
        conn.close().await.expect("close the fixture file");
    }
    // Deployed as the README says: files only inside `sqlite_root`, the target named relative to it.
    let targets = Targets::new(settings(Some(dir.path().to_path_buf())));
    let spec = common::sqlite_spec(Path::new("shop.db"));
    let count = targets
        .execute("layer2-sqlite", &spec, "SELECT count(*) AS customers FROM customers")
        .await
        .expect("the fixture is readable");
    assert_eq!(count.rows[0]["customers"], serde_json::json!(4));

    let mut probe = LiteProbe { dir: dir.path().to_path_buf(), file, paths: named_paths(&attacks(Dialect::Sqlite)) };
    run_corpus(Dialect::Sqlite, &targets, &spec, &mut probe).await
}

#[tokio::test]
async fn sqlite_attacks_leave_the_target_unchanged() {
    let report = guarded(sqlite_body(), async {}).await;
    report.check();
}
