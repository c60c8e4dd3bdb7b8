//! The fake server's wire output, checked with a plain HTTP client.

use querygpt_testkit::{DEFAULT_REPLY_TEXT, FakeLlm, Reply};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn openai_body(question: &str, stream: bool) -> Value {
    json!({
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "You write SQL."}, {"role": "user", "content": question}],
        "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

fn anthropic_body(question: &str, stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "system": "You write SQL.",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": question}],
        "stream": stream
    })
}

async fn post_openai(llm: &FakeLlm, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", llm.openai_base_url()))
        .bearer_auth("sk-test")
        .json(body)
        .send()
        .await
        .expect("send")
}

async fn post_anthropic(llm: &FakeLlm, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/messages", llm.anthropic_base_url()))
        .header("x-api-key", "ak-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .expect("send")
}

/// `(event name, parsed data)` of every SSE frame; `[DONE]` becomes a string value.
fn sse_frames(text: &str) -> Vec<(Option<String>, Value)> {
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let mut event = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let value = if data == "[DONE]" { Value::String(data) } else { serde_json::from_str(&data).expect("json") };
            (event, value)
        })
        .collect()
}

/// The completion text of an OpenAI reply body: the message content, or the concatenated deltas of a stream.
fn openai_reply_text(body: &str, stream: bool) -> String {
    if stream {
        sse_frames(body)
            .iter()
            .filter_map(|(_, v)| v.pointer("/choices/0/delta/content").and_then(Value::as_str))
            .collect()
    } else {
        let body: Value = serde_json::from_str(body).expect("json");
        body["choices"][0]["message"]["content"].as_str().expect("content").to_owned()
    }
}

#[tokio::test]
async fn openai_plain_reply_and_default_text() {
    let llm = FakeLlm::start().await;
    let response = post_openai(&llm, &openai_body("how many users?", false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_REPLY_TEXT);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn openai_stream_sends_chunks_usage_and_done() {
    let llm = FakeLlm::start().await;
    let text = "SELECT id, name FROM users WHERE age > 30";
    llm.reply(Reply::text(text));
    let response = post_openai(&llm, &openai_body("q", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let frames = sse_frames(&response.text().await.unwrap());
    assert_eq!(frames.last().unwrap().1, "[DONE]");
    let content: Vec<&str> =
        frames.iter().filter_map(|(_, v)| v.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
    assert!(content.iter().filter(|c| !c.is_empty()).count() > 1, "text must come in several chunks");
    assert_eq!(content.concat(), text);
    assert!(frames.iter().all(|(event, _)| event.is_none()));
    assert!(frames.iter().any(|(_, v)| v.pointer("/choices/0/finish_reason") == Some(&json!("stop"))));
    let usage = frames.iter().find_map(|(_, v)| v.get("usage").filter(|u| !u.is_null())).expect("usage chunk");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn openai_stream_without_usage_option_has_no_usage_chunk() {
    let llm = FakeLlm::start().await;
    let mut body = openai_body("q", true);
    body.as_object_mut().unwrap().remove("stream_options");
    let frames = sse_frames(&post_openai(&llm, &body).await.text().await.unwrap());
    assert!(frames.iter().all(|(_, v)| v.get("usage").is_none()));
}

#[tokio::test]
async fn path_without_v1_is_accepted_for_openai() {
    let llm = FakeLlm::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", llm.anthropic_base_url()))
        .json(&openai_body("q", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(llm.requests()[0].path, "/chat/completions");
}

#[tokio::test]
async fn anthropic_plain_reply() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::text("SELECT 2"));
    let response = post_anthropic(&llm, &anthropic_body("q", false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["content"][0], json!({"type": "text", "text": "SELECT 2"}));
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn anthropic_stream_follows_the_event_protocol() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::text_chunks(["SELECT ", "count(*) ", "FROM orders"]));
    let response = post_anthropic(&llm, &anthropic_body("q", true)).await;
    assert_eq!(response.status(), 200);
    let frames = sse_frames(&response.text().await.unwrap());
    for (event, data) in &frames {
        assert_eq!(event.as_deref(), data["type"].as_str(), "event name matches data type");
    }
    let names: Vec<&str> = frames.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(names.iter().filter(|n| **n == "content_block_delta").count(), 3);
    let text: String = frames
        .iter()
        .filter(|(_, v)| v["type"] == "content_block_delta")
        .map(|(_, v)| {
            assert_eq!(v["delta"]["type"], "text_delta");
            v["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "SELECT count(*) FROM orders");
    let delta = frames.iter().find(|(e, _)| e.as_deref() == Some("message_delta")).unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
}

#[tokio::test]
async fn interrupted_reply_has_no_finish_reason_but_an_end_marker() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::interrupted("SELECT * FROM customers"));

    let text = post_openai(&llm, &openai_body("q", true)).await.text().await.unwrap();
    assert_eq!(openai_reply_text(&text, true), "SELECT * FROM customers");
    let frames = sse_frames(&text);
    assert_eq!(frames.last().unwrap().1, "[DONE]");
    assert!(frames.iter().all(|(_, v)| v.pointer("/choices/0/finish_reason").is_none_or(Value::is_null)));
    assert!(frames.iter().all(|(_, v)| v.get("usage").is_none()), "no usage chunk after an interruption");

    let frames = sse_frames(&post_anthropic(&llm, &anthropic_body("q", true)).await.text().await.unwrap());
    let names: Vec<&str> = frames.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(!names.contains(&"message_delta"), "{names:?}");

    let plain: Value = post_openai(&llm, &openai_body("q", false)).await.json().await.unwrap();
    assert_eq!(plain["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(plain["choices"][0]["message"]["content"], "SELECT * FROM customers");
    let plain: Value = post_anthropic(&llm, &anthropic_body("q", false)).await.json().await.unwrap();
    assert_eq!(plain["stop_reason"], Value::Null);
}

#[tokio::test]
async fn length_limit_reply_says_so_in_each_protocol() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::length_limit("SELECT id, name, email, created_at FROM"));

    let frames = sse_frames(&post_openai(&llm, &openai_body("q", true)).await.text().await.unwrap());
    assert!(frames.iter().any(|(_, v)| v.pointer("/choices/0/finish_reason") == Some(&json!("length"))));
    assert_eq!(frames.last().unwrap().1, "[DONE]");
    let plain: Value = post_openai(&llm, &openai_body("q", false)).await.json().await.unwrap();
    assert_eq!(plain["choices"][0]["finish_reason"], "length");

    let frames = sse_frames(&post_anthropic(&llm, &anthropic_body("q", true)).await.text().await.unwrap());
    let delta = frames.iter().find(|(e, _)| e.as_deref() == Some("message_delta")).unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "max_tokens");
    let plain: Value = post_anthropic(&llm, &anthropic_body("q", false)).await.json().await.unwrap();
    assert_eq!(plain["stop_reason"], "max_tokens");
}

#[tokio::test]
async fn empty_stream_is_a_200_event_stream_without_a_byte() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::empty_stream());
    let response = post_openai(&llm, &openai_body("q", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.text().await.unwrap(), "");
}

#[tokio::test]
async fn context_length_exceeded_is_a_400_with_the_token_counts() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::context_length_exceeded(2048));
    let mut body = openai_body("q", false);
    body["max_tokens"] = json!(512);
    let response = post_openai(&llm, &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "context_length_exceeded");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("This model's maximum context length is 2048 tokens."), "{message}");
    assert!(message.contains("in the messages, 512 in the completion"), "{message}");

    let response = post_anthropic(&llm, &anthropic_body("q", true)).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("prompt is too long: ") && message.ends_with(" tokens > 2048 maximum"), "{message}");
}

#[tokio::test]
async fn errors_use_each_providers_body_and_retry_after() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::rate_limited(Duration::from_millis(1500)));
    llm.reply(Reply::rate_limited(Duration::from_secs(2)));
    llm.reply(Reply::error(500, "internal failure"));

    let openai = post_openai(&llm, &openai_body("q", true)).await;
    assert_eq!(openai.status(), 429);
    assert_eq!(openai.headers()["retry-after"], "2");
    assert_eq!(openai.headers()["retry-after-ms"], "1500");
    let body: Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("Rate limit"));

    let anthropic = post_anthropic(&llm, &anthropic_body("q", true)).await;
    assert_eq!(anthropic.status(), 429);
    assert_eq!(anthropic.headers()["retry-after"], "2");
    let body: Value = anthropic.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let server = post_anthropic(&llm, &anthropic_body("q", false)).await;
    assert_eq!(server.status(), 500);
    let body: Value = server.json().await.unwrap();
    assert_eq!(body["error"], json!({"type": "api_error", "message": "internal failure"}));
}

#[tokio::test]
async fn queue_then_default_then_rules_first() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::text("DEFAULT"));
    llm.reply(Reply::text("FIRST"));
    llm.on_prompt_containing("[marker-1]", Reply::text("RULE A"));
    llm.on_prompt_containing("[marker-1]", Reply::text("RULE B"));

    let content = |body: Value| body["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    let ask = |q: &'static str| {
        let llm = &llm;
        async move { content(post_openai(llm, &openai_body(q, false)).await.json().await.unwrap()) }
    };
    assert_eq!(ask("question [marker-1]").await, "RULE A");
    assert_eq!(ask("plain").await, "FIRST");
    assert_eq!(ask("plain").await, "DEFAULT");
    assert_eq!(ask("again [marker-1]").await, "RULE B");
    assert_eq!(ask("and again [marker-1]").await, "RULE B", "the last rule reply sticks");
    assert_eq!(llm.request_count(), 5);
}

#[tokio::test]
async fn rules_match_the_anthropic_system_prompt_too() {
    let llm = FakeLlm::start().await;
    llm.on_prompt_containing("You write SQL", Reply::text("FROM SYSTEM"));
    let body: Value = post_anthropic(&llm, &anthropic_body("q", false)).await.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "FROM SYSTEM");
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let llm = FakeLlm::start().await;
    post_openai(&llm, &openai_body("recorded?", true)).await.text().await.unwrap();
    post_anthropic(&llm, &anthropic_body("also recorded", false)).await.text().await.unwrap();
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].header("Authorization"), Some("Bearer sk-test"));
    assert!(requests[0].is_stream());
    assert!(requests[0].prompt_text().contains("recorded?"));
    assert_eq!(requests[1].path, "/v1/messages");
    assert_eq!(requests[1].header("x-api-key"), Some("ak-test"));
    assert_eq!(requests[1].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(requests[1].body["max_tokens"], 256);

    llm.set_recording(false);
    post_openai(&llm, &openai_body("not recorded", false)).await.text().await.unwrap();
    assert_eq!(llm.requests().len(), 2);
    assert_eq!(llm.request_count(), 3);
    llm.clear_requests();
    assert_eq!(llm.request_count(), 0);
}

#[tokio::test]
async fn required_api_key_and_anthropic_headers_are_enforced() {
    let llm = FakeLlm::start().await;
    llm.require_api_key("right-key");
    llm.reply(Reply::text("kept for the valid request"));

    let wrong = post_openai(&llm, &openai_body("q", false)).await;
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");

    let wrong = post_anthropic(&llm, &anthropic_body("q", false)).await;
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");

    let no_version = reqwest::Client::new()
        .post(format!("{}/v1/messages", llm.anthropic_base_url()))
        .header("x-api-key", "right-key")
        .json(&anthropic_body("q", false))
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), 400);

    let ok = reqwest::Client::new()
        .post(format!("{}/chat/completions", llm.openai_base_url()))
        .bearer_auth("right-key")
        .json(&openai_body("q", false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "kept for the valid request");
}

#[tokio::test]
async fn invalid_bodies_get_a_400() {
    let llm = FakeLlm::start().await;
    let client = reqwest::Client::new();
    let not_json = client
        .post(format!("{}/chat/completions", llm.openai_base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let mut no_max_tokens = anthropic_body("q", false);
    no_max_tokens.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(post_anthropic(&llm, &no_max_tokens).await.status(), 400);
}

#[tokio::test]
async fn delayed_reply_waits() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::delayed(Duration::from_millis(300), Reply::text("late")));
    let started = Instant::now();
    let body: Value = post_openai(&llm, &openai_body("q", false)).await.json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(body["choices"][0]["message"]["content"], "late");
}

#[tokio::test]
async fn chunk_delay_paces_the_stream() {
    let llm = FakeLlm::start().await;
    // A delay well above what a loaded 2-core machine adds to one local round trip.
    llm.reply(Reply::text_chunks(["a", "b", "c"]).with_chunk_delay(Duration::from_millis(300)));
    let started = Instant::now();
    let mut response = post_openai(&llm, &openai_body("q", true)).await;
    let first = response.chunk().await.unwrap().expect("first event");
    assert!(started.elapsed() < Duration::from_millis(300), "the first event is not delayed");
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    // role chunk, three contents, finish, usage, [DONE]: six delays after the first event.
    assert!(started.elapsed() >= Duration::from_millis(1800), "{:?}", started.elapsed());
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn hang_never_answers_until_dropped() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::hang());
    let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let err = client
        .post(format!("{}/chat/completions", llm.openai_base_url()))
        .json(&openai_body("q", true))
        .send()
        .await
        .expect_err("must time out");
    assert!(err.is_timeout());
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test]
async fn raw_reply_is_sent_verbatim() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::raw(502, "text/html", "<html>bad gateway</html>"));
    let response = post_openai(&llm, &openai_body("q", true)).await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "text/html");
    assert_eq!(response.text().await.unwrap(), "<html>bad gateway</html>");
}

#[tokio::test]
async fn unknown_path_is_404() {
    let llm = FakeLlm::start().await;
    let response = reqwest::Client::new().post(format!("{}/v1/embeddings", llm.anthropic_base_url())).send().await;
    assert_eq!(response.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_many_concurrent_requests_quickly() {
    let llm = FakeLlm::start().await;
    llm.set_recording(false);
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", llm.openai_base_url());
    let total = 2000;
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for i in 0..total / 64 + 1 {
                    let stream = i % 2 == 0;
                    let body = openai_body(&format!("question {i}"), stream);
                    let text = client.post(&url).json(&body).send().await.unwrap().text().await.unwrap();
                    // A streamed reply splits the text over several deltas: reassemble it before comparing.
                    assert_eq!(openai_reply_text(&text, stream), DEFAULT_REPLY_TEXT);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(llm.request_count() >= total);
    // Debug builds on two cores still manage thousands per second; the bound only catches pathologies.
    assert!(elapsed < Duration::from_secs(20), "{} requests took {elapsed:?}", llm.request_count());
}
