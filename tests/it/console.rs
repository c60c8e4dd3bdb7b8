//! The web console (`api/console/`, served at `/`): its files and security headers, `http.console = false`, and
//! a person's journey through it in a real browser (`tests/console/journey.mjs`: Debian's chromium driven by
//! playwright-core). The browser test installs chromium and the npm package when they are missing and it can
//! (root: `apt-get`, `npm ci`); only when it cannot does it skip, loudly.

use crate::support::TestApp;
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
const CHROMIUM: &str = "/usr/bin/chromium";
/// What no console file may contain: HTML parsing of strings, web storage for tokens, string evaluation.
const FORBIDDEN: [&str; 7] =
    ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "localStorage", "sessionStorage", "eval("];

fn origin(app: &TestApp) -> String {
    app.base.trim_end_matches("/api/v1").to_owned()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, as paths relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read the console directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).expect("inside").to_path_buf());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_its_security_headers() {
    let app = TestApp::embedded().await;
    let origin = origin(&app);

    let index = app.http.get(format!("{origin}/")).send().await.expect("GET /");
    assert_eq!(index.status(), StatusCode::OK);
    let headers = index.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-cache");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let html = index.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/console/js/app.js"></script>"#), "{html}");
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style: {html}");

    // A browser that has the file revalidates it for nothing.
    let again = app.http.get(format!("{origin}/")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["content-security-policy"], CSP);

    // Every file of api/console is embedded and served as it is, with its type; none renders strings as HTML or
    // keeps anything in web storage.
    let dir = repo().join("api/console");
    let all = files(&dir);
    assert!(all.len() >= 10, "{all:?}");
    for relative in all {
        let name = relative.to_str().unwrap();
        let on_disk = std::fs::read(dir.join(&relative)).unwrap();
        let url = if name == "index.html" { format!("{origin}/") } else { format!("{origin}/console/{name}") };
        let response = app.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name} is not served (add it to ASSETS in api/src/console.rs)");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = match relative.extension().and_then(|e| e.to_str()) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("html") => "text/html; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected console file type {other:?}: {name}"),
        };
        assert_eq!(content_type, expected, "{name}");
        assert_eq!(response.headers()["content-security-policy"], CSP, "{name}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), on_disk.as_slice(), "{name} differs from the file");
        let text = String::from_utf8(on_disk).unwrap();
        for forbidden in FORBIDDEN {
            assert!(!text.contains(forbidden), "{name} contains `{forbidden}`");
        }
    }

    // Unknown console paths and other methods are the API's JSON 404; the API itself is untouched.
    for (method, path) in [("GET", "/console/js/nope.js"), ("GET", "/console/index.html"), ("POST", "/")] {
        let response = app.http.request(method.parse().unwrap(), format!("{origin}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{method} {path}: {body}");
    }
    let health = app.http.get(format!("{}/health", app.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_console_false_turns_it_off() {
    let app = TestApp::embedded_with(|settings| settings.http.console = false).await;
    let origin = origin(&app);
    for path in ["/", "/console/js/app.js"] {
        let response = app.http.get(format!("{origin}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(response.headers().get("content-security-policy").is_none(), "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{path}: {body}");
    }
    app.stop().await;
}

fn am_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn works(program: &str, args: &[&str], dir: Option<&Path>) -> bool {
    let mut command = std::process::Command::new(program);
    command.args(args).stdin(Stdio::null());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command.status().is_ok_and(|status| status.success())
}

/// Makes sure chromium, node and playwright-core are there, installing what is missing when it can; `Err` says
/// why the browser test cannot run.
fn browser_tools(tests: &Path) -> Result<(), String> {
    let apt = |packages: &[&str]| {
        if !am_root() {
            return false;
        }
        let _ = works("apt-get", &["update", "-qq"], None);
        let mut args = vec!["install", "-y", "-qq"];
        args.extend_from_slice(packages);
        works("apt-get", &args, None)
    };
    if !Path::new(CHROMIUM).exists() && !apt(&["chromium"]) {
        return Err(format!("{CHROMIUM} is missing and cannot be installed (apt-get install chromium needs root)"));
    }
    if !works("node", &["--version"], None) && !apt(&["nodejs", "npm"]) {
        return Err("node is missing and cannot be installed (apt-get install nodejs npm needs root)".into());
    }
    if !tests.join("node_modules/playwright-core/package.json").exists()
        && !works("npm", &["ci", "--no-audit", "--no-fund"], Some(tests))
    {
        return Err(format!("`npm ci` in {} failed: playwright-core is missing", tests.display()));
    }
    Ok(())
}

/// A SQLite target with an `items` table whose first name is an HTML payload.
async fn target_database(dir: &Path) -> String {
    use sqlx::Connection;
    let path = dir.join("console-target.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
    for statement in [
        "CREATE TABLE items (name TEXT NOT NULL, qty INTEGER NOT NULL)",
        "INSERT INTO items VALUES ('<img src=x onerror=alert(1)>', 3), ('widget', 5), ('gadget', 2)",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    path.display().to_string()
}

fn sql_reply(sql: &str, explanation: &str) -> Reply {
    let answer = serde_json::json!({ "sql": sql, "explanation": explanation });
    Reply::text(format!("Here you go:\n```json\n{answer}\n```"))
}

/// What the fake LLM answers to each question the journey asks (rules match the prompt, oldest rule first: a
/// follow-up's prompt contains the earlier question too).
fn script_the_llm(app: &TestApp) {
    let llm = &app.llm;
    llm.on_prompt_containing(
        "Only the widget please",
        sql_reply("SELECT name, qty FROM items WHERE name = 'widget'", "Only the widget."),
    );
    // A wrong column first: the database refuses it and the model corrects itself on the second attempt.
    llm.on_prompt_containing("How many items per name?", Reply::text("```sql\nSELECT nmae, qty FROM items\n```"));
    llm.on_prompt_containing(
        "How many items per name?",
        sql_reply(
            "SELECT name, qty FROM items ORDER BY qty DESC",
            r#"Items by quantity. <script>alert("explained")</script>"#,
        ),
    );
    llm.on_prompt_containing("A slow question", Reply::delayed(Duration::from_secs(30), Reply::text("SELECT 1")));
    llm.on_prompt_containing("Resume after", sql_reply("SELECT name, qty FROM items ORDER BY qty DESC", "All items."));
    llm.on_prompt_containing("Total quantity", sql_reply("SELECT SUM(qty) AS total FROM items", "The total."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_uses_the_console_in_a_browser() {
    let tests = repo().join("tests/console");
    if let Err(why) = browser_tools(&tests) {
        let line = "!".repeat(100);
        eprintln!("\n{line}\n!!! SKIPPED: the web console's browser test did not run: {why}\n{line}\n");
        return;
    }
    // Access tokens of 6 s: the console renews them several times during the journey.
    let app = TestApp::embedded_with(|settings| settings.auth.access_ttl_secs = 6).await;
    let target = target_database(app.data_dir.path()).await;
    script_the_llm(&app);
    let artifacts = std::env::var_os("QUERYGPT_CONSOLE_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/console-artifacts"));
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");

    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .arg(tests.join("journey.mjs"))
        .current_dir(&tests)
        .env("CONSOLE_BASE_URL", origin(&app))
        .env("CONSOLE_ARTIFACTS", &artifacts)
        .env("CONSOLE_SQLITE_PATH", &target)
        .env("CONSOLE_LLM_URL", app.llm.openai_base_url())
        .env("CHROMIUM_PATH", CHROMIUM)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser journey did not finish within 300 s")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("--- journey.mjs ({:.1} s) ---\n{stdout}{stderr}", started.elapsed().as_secs_f64());
    assert!(
        output.status.success(),
        "the browser journey failed ({}); screenshots in {}",
        output.status,
        artifacts.display()
    );
    for shot in ["console-1280.png", "console-390.png"] {
        assert!(artifacts.join(shot).exists(), "{shot} was not saved");
    }
    app.stop().await;
}
