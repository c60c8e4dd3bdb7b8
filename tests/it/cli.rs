//! The terminal client through the real binary (`querygpt login`, `ask`, `models`, ...) against a running server,
//! each command a process of its own with a temp configuration directory, as a user would run them.

use crate::support::{Session, TestApp};
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const REGION_TOTALS: &str = r#"{"sql": "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region", "explanation": "Sales per region"}"#;
const PASSWORD: &str = "correct horse battery";

/// A user of the client: a configuration directory of their own.
struct Client {
    dir: tempfile::TempDir,
}

impl Client {
    fn new() -> Client {
        Client { dir: tempfile::tempdir().expect("temp config dir") }
    }

    fn credentials_path(&self) -> std::path::PathBuf {
        self.dir.path().join("querygpt").join("credentials.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_querygpt"));
        command
            .args(args)
            .env("QUERYGPT_CLIENT_CONFIG_DIR", self.dir.path().join("querygpt"))
            .env_remove("QUERYGPT_SERVER")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs a command to its end (at most 60 s).
    async fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None).await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().expect("spawn querygpt");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(text.as_bytes()).await.expect("write stdin");
            drop(pipe);
        }
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("querygpt {args:?} did not end within 60 s"))
            .expect("querygpt ran")
    }

    /// `querygpt login` as `session`'s user, the password on stdin.
    async fn login(&self, app: &TestApp, session: &Session) -> Output {
        let args = ["login", "--server", server(app), "--username", &session.email, "--password-stdin"];
        self.run_with_stdin(&args, Some(&format!("{PASSWORD}\n"))).await
    }

    fn refresh_token(&self) -> String {
        let text = std::fs::read_to_string(self.credentials_path()).expect("credentials file");
        let stored: Value = serde_json::from_str(&text).expect("credentials are JSON");
        stored["refresh_token"].as_str().expect("a refresh token").to_owned()
    }
}

/// The server URL as a user types it: without the `/api/v1` of the API base.
fn server(app: &TestApp) -> &str {
    app.base.strip_suffix("/api/v1").expect("the base ends in /api/v1")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A successful command; its stdout.
#[track_caller]
fn succeeded(output: &Output) -> String {
    assert!(output.status.success(), "failed ({:?}): {}{}", output.status, stdout(output), stderr(output));
    stdout(output)
}

/// A failed command with a one-line message and no panic; its stderr.
#[track_caller]
fn failed_with_one_line(output: &Output) -> String {
    assert!(!output.status.success(), "should have failed: {}", stdout(output));
    let err = stderr(output);
    assert_eq!(err.trim_end().lines().count(), 1, "one line on stderr: {err:?}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    err
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))).collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_keeps_a_private_session_that_rotates_and_logout_ends_it() {
    let app = TestApp::embedded().await;
    let session = app.register().await;
    let client = Client::new();

    let wrong = client
        .run_with_stdin(
            &["login", "--server", server(&app), "--username", &session.email, "--password-stdin"],
            Some("not the password\n"),
        )
        .await;
    assert!(failed_with_one_line(&wrong).contains("invalid e-mail or password"));
    assert!(!client.credentials_path().exists());

    let out = succeeded(&client.login(&app, &session).await);
    assert!(out.contains("Logged in"), "{out}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&client.credentials_path()), 0o600, "the credentials file is private");
        assert_eq!(mode(client.credentials_path().parent().unwrap()), 0o700);
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(client.credentials_path()).unwrap()).unwrap();
    assert_eq!(stored["server"], app.base.as_str());
    let first = client.refresh_token();

    // Each command spends the stored refresh token and keeps the new one: two in a row both work.
    succeeded(&client.run(&["models"]).await);
    let second = client.refresh_token();
    assert_ne!(first, second, "the rotated refresh token is stored");
    succeeded(&client.run(&["connections"]).await);
    assert_ne!(second, client.refresh_token());
    #[cfg(unix)]
    assert_eq!(mode(&client.credentials_path()), 0o600, "a rotated file is private too");

    // Someone replays a spent token: the server revokes the session, and the client says to log in again.
    let (status, _) =
        app.request(reqwest::Method::POST, "/auth/refresh", None, Some(json!({"refresh_token": first}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let err = failed_with_one_line(&client.run(&["models"]).await);
    assert!(err.contains("not logged in or session expired: run querygpt login"), "{err}");

    // Log in again, then out: the file is gone and its token is dead.
    succeeded(&client.login(&app, &session).await);
    succeeded(&client.run(&["models"]).await);
    let last = client.refresh_token();
    let out = succeeded(&client.run(&["logout"]).await);
    assert!(out.contains("Logged out"), "{out}");
    assert!(!client.credentials_path().exists(), "logout deletes the credentials");
    let (status, _) =
        app.request(reqwest::Method::POST, "/auth/refresh", None, Some(json!({"refresh_token": last}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logout ended the session on the server");
    let err = failed_with_one_line(&client.run(&["models"]).await);
    assert!(err.contains("not logged in"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_shows_the_answer_or_its_events_and_the_lists_show_what_the_api_lists() {
    let app = TestApp::embedded().await;
    let session = app.register().await;
    let model_id = app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    let client = Client::new();
    succeeded(&client.login(&app, &session).await);
    app.llm.set_default(Reply::text(format!("Here you go:\n```json\n{REGION_TOTALS}\n```")));

    // By name: the connection named `t` (not the default demo database).
    let output = client.run(&["ask", "各地区销售额", "--connection", "t"]).await;
    let out = succeeded(&output);
    assert!(out.contains("SELECT region, SUM(amount) AS total FROM sales"), "{out}");
    assert!(out.contains("north") && out.contains("230.5"), "a cell of the result table: {out}");
    assert!(out.contains("3 rows"), "{out}");
    assert!(out.contains("Sales per region"), "the explanation: {out}");
    assert!(!stderr(&output).contains("INFO"), "no server logs: {}", stderr(&output));

    // By id, with the model by name: one JSON line per event, and nothing else on stdout.
    let args = ["ask", "各地区销售额", "--connection", &connection_id, "--model", "Fake GPT", "--json"];
    let events = json_lines(&succeeded(&client.run(&args).await));
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["progress", "progress", "progress", "result", "visualization", "done"], "{events:?}");
    let stages: Vec<&Value> = events[..3].iter().map(|e| &e["data"]["stage"]).collect();
    assert_eq!(stages, [&json!("analyzing"), &json!("generating_sql"), &json!("executing")]);
    assert!(events.iter().all(|e| e["id"].as_str().is_some_and(|id| id.contains(':'))), "{events:?}");
    let result = &events[3]["data"];
    assert_eq!(result["rows_count"], 3);
    assert_eq!(result["data"][0]["region"], "north");
    let conversation_id = events[5]["data"]["conversation_id"].as_str().unwrap().to_owned();

    // A follow-up in the same conversation.
    let args = ["ask", "and again", "--conversation", &conversation_id, "--json"];
    let events = json_lines(&succeeded(&client.run(&args).await));
    assert_eq!(events.last().unwrap()["data"]["conversation_id"], conversation_id.as_str());

    // Names that match nothing, and API errors, are one clear line.
    let err = failed_with_one_line(&client.run(&["ask", "x", "--connection", "nope"]).await);
    assert!(err.contains("no connection is named \"nope\""), "{err}");
    let err = failed_with_one_line(&client.run(&["ask", "x", "--conversation", "not-an-id"]).await);
    assert!(err.contains("VALIDATION_ERROR") && err.contains("conversation_id"), "{err}");

    // The lists.
    let out = succeeded(&client.run(&["models"]).await);
    assert!(out.contains("Fake GPT") && out.contains("gpt-4o") && out.contains(&model_id), "{out}");
    let models: Value = serde_json::from_str(&succeeded(&client.run(&["models", "--json"]).await)).unwrap();
    assert_eq!(models[0]["id"], model_id.as_str());
    assert!(!models.to_string().contains("sk-test-secret-123"));
    let out = succeeded(&client.run(&["connections"]).await);
    assert!(out.contains("Demo sales (SQLite)") && out.contains(&connection_id), "{out}");
    let connections: Value = serde_json::from_str(&succeeded(&client.run(&["connections", "--json"]).await)).unwrap();
    let names: Vec<&str> = connections.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{connections}");
    assert!(names.contains(&"t"), "{connections}");
    let out = succeeded(&client.run(&["conversations"]).await);
    assert!(out.contains("各地区销售额") && out.contains(&conversation_id), "{out}");
    let listed: Value = serde_json::from_str(&succeeded(&client.run(&["conversations", "--json"]).await)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "two questions asked without --conversation: {listed}");
    assert!(listed.as_array().unwrap().iter().any(|c| c["id"] == conversation_id.as_str() && c["message_count"] == 4));
    app.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_question_on_the_server() {
    let app = TestApp::embedded().await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    let client = Client::new();
    succeeded(&client.login(&app, &session).await);
    app.llm.set_default(Reply::delayed(Duration::from_secs(30), Reply::text("SELECT 1")));

    let mut child = client
        .command(&["ask", "slow question", "--connection", &connection_id, "--json"])
        .spawn()
        .expect("spawn querygpt ask");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("a first event within 30 s")
        .unwrap()
        .expect("a first line");
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["data"]["stage"], "analyzing", "{first}");
    let conversation_id = first["data"]["conversation_id"].as_str().unwrap().to_owned();
    app.until_the_llm_is_asked().await;

    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: a plain signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let mut rest = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push(line);
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the client exits within 10 s of Ctrl-C")
        .unwrap();
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut err).await.unwrap();
    assert_eq!(status.code(), Some(130), "interrupted: {err}");
    assert!(err.contains("stopped"), "{err}");

    // The stop reached the server: the stream's last event says so, the model's request was dropped long before
    // its 30 s reply, and nothing was stored.
    let events = json_lines(&rest.join("\n"));
    let last = events.last().expect("the stream's last event");
    assert_eq!(last["event"], "error", "{events:?}");
    assert_eq!(last["data"]["code"], "CANCELLED", "{events:?}");
    app.until_the_llm_request_is_abandoned().await;
    let (status, _) = app.get(&format!("/conversations/{conversation_id}"), &session.access_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a stopped question is not stored");
    app.stop().await;
}

#[tokio::test]
async fn unreachable_or_malformed_servers_and_missing_logins_are_one_clear_line() {
    let client = Client::new();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let args = ["login", "--server", &url, "--username", "a@example.com", "--password-stdin"];
    let err = failed_with_one_line(&client.run_with_stdin(&args, Some("password\n")).await);
    assert!(err.contains(&format!("cannot reach the server at {url}/api/v1")), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");

    let args = ["login", "--server", "127.0.0.1:8000", "--username", "a@example.com", "--password-stdin"];
    let err = failed_with_one_line(&client.run_with_stdin(&args, Some("password\n")).await);
    assert!(err.contains("invalid server URL"), "{err}");

    for command in ["models", "connections", "conversations", "logout"] {
        let err = failed_with_one_line(&client.run(&[command]).await);
        assert!(err.contains("not logged in"), "{command}: {err}");
    }
    let err = failed_with_one_line(&client.run(&["ask", "anything"]).await);
    assert!(err.contains("not logged in or session expired: run querygpt login"), "{err}");
    assert!(!client.credentials_path().exists());
}

/// A TCP proxy to `upstream` that breaks the first question's stream right after its first event (the requests
/// before it on the same connection pass); returns its address and the heads of the `/chat/stream` requests seen.
async fn stream_breaking_proxy(upstream: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().unwrap();
    let streams = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = streams.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { continue };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            // Set once this connection carries the stream to break, before its request goes upstream.
            let armed = Arc::new(AtomicBool::new(false));
            let (armed_up, seen) = (armed.clone(), seen.clone());
            tokio::spawn(async move {
                let mut buffer = vec![0; 16 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
                    let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    if text.starts_with("GET /api/v1/chat/stream") {
                        let mut seen = seen.lock().unwrap();
                        armed_up.store(seen.is_empty(), Ordering::SeqCst);
                        seen.push(text);
                    }
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buffer = vec![0; 16 * 1024];
                let mut response = Vec::new();
                while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
                    let mut chunk = &buffer[..n];
                    if armed.load(Ordering::SeqCst) {
                        let before = response.len();
                        response.extend_from_slice(chunk);
                        // The end of the first SSE frame after the response head (chunk framing is `\r\n`).
                        let cut = find(&response, b"\r\n\r\n")
                            .and_then(|head| find(&response[head + 4..], b"\n\n").map(|end| head + 4 + end + 2));
                        if let Some(cut) = cut {
                            chunk = &chunk[..cut - before];
                            let _ = client_write.write_all(chunk).await;
                            return; // Both halves close: the stream breaks mid-answer.
                        }
                    }
                    if client_write.write_all(chunk).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, streams)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_is_resumed_with_last_event_id() {
    let app = TestApp::embedded().await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (connection_id, _) = app.sqlite_connection(&session).await;
    // Slow enough that the question is still running when the client comes back.
    app.llm.set_default(Reply::delayed(Duration::from_secs(2), Reply::text(format!("```json\n{REGION_TOTALS}\n```"))));
    let upstream: std::net::SocketAddr = server(&app).trim_start_matches("http://").parse().unwrap();
    let (proxy, streams) = stream_breaking_proxy(upstream).await;
    let client = Client::new();
    let args = ["login", "--server", &format!("http://{proxy}"), "--username", &session.email, "--password-stdin"];
    succeeded(&client.run_with_stdin(&args, Some(&format!("{PASSWORD}\n"))).await);

    let output = client.run(&["ask", "各地区销售额", "--connection", &connection_id, "--json"]).await;
    let events = json_lines(&succeeded(&output));
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["progress", "progress", "progress", "result", "visualization", "done"], "{events:?}");
    let streams = streams.lock().unwrap().clone();
    assert_eq!(streams.len(), 2, "the question, then one resume: {streams:?}");
    let first_id = events[0]["id"].as_str().unwrap();
    assert!(
        streams[1].to_lowercase().contains(&format!("last-event-id: {first_id}")),
        "resumed after the first event: {}",
        streams[1]
    );
    app.stop().await;
}
