//! Register, login, refresh, me, and every way a token can be refused.

use axum::http::StatusCode;
use jsonwebtoken::get_current_timestamp;
use querygpt_api::auth::{Claims, TokenKeys, TokenKind};
use serde_json::json;
use uuid::Uuid;

use crate::support::{PASSWORD, TestApp, assert_timestamp};

#[tokio::test]
async fn register_login_refresh_me() {
    let app = TestApp::new().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"email": "zhang@example.com", "password": PASSWORD, "display_name": "张三", "extra": 1}),
        )
        .await;
    let data = reply.assert_ok(StatusCode::CREATED);
    let mut keys: Vec<&str> = data.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in", "refresh_token", "token_type", "user"]);
    assert_eq!(data["token_type"], "bearer");
    assert_eq!(data["expires_in"], 3600);
    let user = &data["user"];
    assert_eq!(user["email"], "zhang@example.com");
    assert_eq!(user["display_name"], "张三");
    assert_timestamp(&user["created_at"]);
    assert_eq!(user.as_object().unwrap().len(), 4, "user has id, email, display_name, created_at: {user}");
    assert!(!reply.text.contains(PASSWORD));
    assert!(!reply.text.contains("argon2"), "the hash is never returned");
    let user_id = user["id"].as_str().unwrap().to_owned();

    // Login (the e-mail is matched case-insensitively, around spaces).
    let reply =
        app.post("/api/v1/auth/login", None, &json!({"email": " ZHANG@example.com ", "password": PASSWORD})).await;
    let login = reply.assert_ok(StatusCode::OK).clone();
    let mut keys: Vec<&str> = login.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in", "refresh_token", "token_type"]);

    // Me.
    let access = login["access_token"].as_str().unwrap();
    let reply = app.get("/api/v1/auth/me", Some(access)).await;
    let me = reply.assert_ok(StatusCode::OK);
    let created_at = me["created_at"].clone();
    assert_timestamp(&created_at);
    assert_eq!(
        me,
        &json!({
            "id": user_id,
            "email": "zhang@example.com",
            "display_name": "张三",
            "avatar_url": null,
            "role": "user",
            "created_at": created_at,
        })
    );

    // Refresh gives a new pair that works.
    let refresh = login["refresh_token"].as_str().unwrap();
    let reply = app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": refresh})).await;
    let renewed = reply.assert_ok(StatusCode::OK);
    assert_eq!(renewed["token_type"], "bearer");
    assert_ne!(renewed["refresh_token"], login["refresh_token"], "refresh tokens are unique (jti)");
    let reply = app.get("/api/v1/auth/me", renewed["access_token"].as_str()).await;
    assert_eq!(reply.assert_ok(StatusCode::OK)["id"], user_id);
}

#[tokio::test]
async fn display_name_defaults_to_the_local_part() {
    let app = TestApp::new().await;
    for display_name in [None, Some(json!("   ")), Some(json!(null))] {
        let email = format!("li.si+{}@example.com", Uuid::new_v4().simple());
        let mut body = json!({"email": email, "password": PASSWORD});
        if let Some(name) = display_name {
            body["display_name"] = name;
        }
        let reply = app.post("/api/v1/auth/register", None, &body).await;
        let expected = email.split('@').next().unwrap();
        assert_eq!(reply.assert_ok(StatusCode::CREATED)["user"]["display_name"], expected);
    }
}

#[tokio::test]
async fn duplicate_email_is_a_validation_error_on_the_email_field() {
    let app = TestApp::new().await;
    app.register("dup@example.com").await;
    for email in ["dup@example.com", "DUP@Example.com"] {
        let reply =
            app.post("/api/v1/auth/register", None, &json!({"email": email, "password": "another password"})).await;
        let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(details, &json!({"field": "email", "reason": "taken"}));
    }
}

#[tokio::test]
async fn bad_registrations_name_the_field() {
    let app = TestApp::new().await;
    let cases = [
        (json!({"email": "not-an-email", "password": PASSWORD}), json!({"field": "email", "reason": "invalid_format"})),
        (json!({"email": "", "password": PASSWORD}), json!({"field": "email", "reason": "required"})),
        (json!({"password": PASSWORD}), json!({"field": "email", "reason": "required"})),
        (json!({"email": 42, "password": PASSWORD}), json!({"field": "email", "reason": "invalid"})),
        (
            json!({"email": "a@b.co", "password": "short"}),
            json!({"field": "password", "reason": "too_short", "min_length": 8}),
        ),
        (
            json!({"email": "a@b.co", "password": "1234567"}),
            json!({"field": "password", "reason": "too_short", "min_length": 8}),
        ),
        (json!({"email": "a@b.co", "password": ""}), json!({"field": "password", "reason": "required"})),
        (json!({"email": "a@b.co"}), json!({"field": "password", "reason": "required"})),
        (
            json!({"email": "a@b.co", "password": PASSWORD, "display_name": "x".repeat(101)}),
            json!({"field": "display_name", "reason": "too_long", "max_length": 100}),
        ),
    ];
    for (body, details) in cases {
        let reply = app.post("/api/v1/auth/register", None, &body).await;
        assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"), &details, "{body}");
    }
    // Eight characters is enough; nothing above was stored.
    let reply = app.post("/api/v1/auth/register", None, &json!({"email": "a@b.co", "password": "12345678"})).await;
    reply.assert_ok(StatusCode::CREATED);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_the_same_401() {
    let app = TestApp::new().await;
    app.register("wang@example.com").await;
    let wrong =
        app.post("/api/v1/auth/login", None, &json!({"email": "wang@example.com", "password": "wrong password"})).await;
    let unknown =
        app.post("/api/v1/auth/login", None, &json!({"email": "nobody@example.com", "password": PASSWORD})).await;
    for reply in [&wrong, &unknown] {
        let details = reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert_eq!(details, &json!({"reason": "invalid_credentials"}));
    }
    assert_eq!(wrong.json, unknown.json, "no user enumeration through the body");

    let reply = app.post("/api/v1/auth/login", None, &json!({"email": "wang@example.com", "password": ""})).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
}

#[tokio::test]
async fn missing_forged_expired_and_mistyped_tokens_are_401() {
    let app = TestApp::new().await;
    let user = app.register("token@example.com").await;
    let now = get_current_timestamp();
    let claims = |typ, exp| Claims {
        sub: user.id,
        typ,
        iss: "querygpt".into(),
        iat: now - 7200,
        exp,
        sid: Uuid::new_v4(),
        jti: None,
    };

    let expired = app.state.tokens.sign(&claims(TokenKind::Access, now - 3600)).unwrap();
    let forger = TokenKeys::new(b"a different secret, also 32+ bytes long", 3600, 7200).unwrap();
    let forged = forger.sign(&claims(TokenKind::Access, now + 3600)).unwrap();
    let cases = [
        (Some(expired.as_str()), "token_expired"),
        (Some(forged.as_str()), "invalid_token"),
        (Some(user.refresh.as_str()), "wrong_token_type"),
        (Some("garbage"), "invalid_token"),
        (None, "missing_token"),
    ];
    for (token, reason) in cases {
        let reply = app.get("/api/v1/auth/me", token).await;
        let details = reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert_eq!(details, &json!({"reason": reason}), "{token:?}");
    }

    // Other schemes and an empty bearer are refused too.
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", user.access.as_str()] {
        let request = axum::http::Request::get("/api/v1/auth/me")
            .header("authorization", header)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(querygpt_api::router(app.state.clone()), request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    // The scheme is case-insensitive.
    let request = axum::http::Request::get("/api/v1/auth/me")
        .header("authorization", format!("bearer {}", user.access))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(querygpt_api::router(app.state.clone()), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_accepts_only_valid_refresh_tokens() {
    let app = TestApp::new().await;
    let user = app.register("refresh@example.com").await;
    let now = get_current_timestamp();
    let expired = app
        .state
        .tokens
        .sign(&Claims {
            sub: user.id,
            typ: TokenKind::Refresh,
            iss: "querygpt".into(),
            iat: now - 7200,
            exp: now - 3600,
            sid: Uuid::new_v4(),
            jti: Some(Uuid::new_v4()),
        })
        .unwrap();
    let ghost = app
        .state
        .tokens
        .sign(&Claims {
            sub: Uuid::new_v4(),
            typ: TokenKind::Refresh,
            iss: "querygpt".into(),
            iat: now,
            exp: now + 3600,
            sid: Uuid::new_v4(),
            jti: Some(Uuid::new_v4()),
        })
        .unwrap();
    for (token, reason) in [
        (user.access.as_str(), "wrong_token_type"),
        (expired.as_str(), "token_expired"),
        (ghost.as_str(), "invalid_token"),
        ("x.y.z", "invalid_token"),
    ] {
        let reply = app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": token})).await;
        assert_eq!(reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), &json!({"reason": reason}));
    }
    let reply = app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": ""})).await;
    let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(details, &json!({"field": "refresh_token", "reason": "required"}));
}

/// Refreshes with `token`; returns the reply.
async fn refresh_with(app: &TestApp, token: &str) -> crate::support::Reply {
    app.post("/api/v1/auth/refresh", None, &json!({"refresh_token": token})).await
}

#[tokio::test]
async fn each_refresh_token_works_once_and_a_reused_one_revokes_the_session() {
    let app = TestApp::new().await;
    let user = app.register("rotation@example.com").await;
    let other_login =
        app.post("/api/v1/auth/login", None, &json!({"email": "rotation@example.com", "password": PASSWORD})).await;
    let other_access = other_login.assert_ok(StatusCode::OK)["access_token"].as_str().unwrap().to_owned();

    let first = refresh_with(&app, &user.refresh).await;
    let first = first.assert_ok(StatusCode::OK).clone();
    let second = refresh_with(&app, first["refresh_token"].as_str().unwrap()).await;
    let second = second.assert_ok(StatusCode::OK).clone();
    app.get("/api/v1/auth/me", second["access_token"].as_str()).await.assert_ok(StatusCode::OK);

    // The first token again: someone holds a copy. The whole session ends: every token it ever got.
    let reused = refresh_with(&app, &user.refresh).await;
    assert_eq!(
        reused.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        &json!({"reason": "refresh_token_reused"})
    );
    for access in
        [user.access.as_str(), first["access_token"].as_str().unwrap(), second["access_token"].as_str().unwrap()]
    {
        let reply = app.get("/api/v1/auth/me", Some(access)).await;
        assert_eq!(reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), &json!({"reason": "session_revoked"}));
    }
    let newest = refresh_with(&app, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(newest.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), &json!({"reason": "session_revoked"}));

    // The user's other login is another session, untouched; logging in again starts a fresh one.
    app.get("/api/v1/auth/me", Some(&other_access)).await.assert_ok(StatusCode::OK);
    let again =
        app.post("/api/v1/auth/login", None, &json!({"email": "rotation@example.com", "password": PASSWORD})).await;
    let again = again.assert_ok(StatusCode::OK);
    app.get("/api/v1/auth/me", again["access_token"].as_str()).await.assert_ok(StatusCode::OK);
}

#[tokio::test]
async fn logout_ends_the_session_of_its_token_only() {
    let app = TestApp::new().await;
    let user = app.register("logout@example.com").await;
    let other =
        app.post("/api/v1/auth/login", None, &json!({"email": "logout@example.com", "password": PASSWORD})).await;
    let other_access = other.assert_ok(StatusCode::OK)["access_token"].as_str().unwrap().to_owned();

    let reply = app.post("/api/v1/auth/logout", Some(&user.access), &json!({})).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"logged_out": true}));

    let reply = app.get("/api/v1/models", Some(&user.access)).await;
    assert_eq!(reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), &json!({"reason": "session_revoked"}));
    let reply = refresh_with(&app, &user.refresh).await;
    assert_eq!(reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), &json!({"reason": "session_revoked"}));
    let reply = app.post("/api/v1/auth/logout", Some(&user.access), &json!({})).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.get("/api/v1/models", Some(&other_access)).await.assert_ok(StatusCode::OK);

    // Logout needs an access token.
    let reply = app.post("/api/v1/auth/logout", None, &json!({})).await;
    assert_eq!(reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), &json!({"reason": "missing_token"}));
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_address() {
    let app = TestApp::with_settings(|settings| settings.limits.login_per_minute = 3).await;
    app.register("guess@example.com").await;
    for _ in 0..3 {
        let reply = app
            .post("/api/v1/auth/login", None, &json!({"email": "guess@example.com", "password": "wrong password"}))
            .await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    // Even the right password waits now: that is what stops guessing.
    let reply =
        app.post("/api/v1/auth/login", None, &json!({"email": "GUESS@example.com", "password": PASSWORD})).await;
    let details = reply.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let retry_after: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(details, &json!({"retry_after": retry_after}));
    // Another address is not affected.
    let reply =
        app.post("/api/v1/auth/login", None, &json!({"email": "someone@example.com", "password": PASSWORD})).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn questions_are_rate_limited_per_user() {
    let app = TestApp::with_settings(|settings| settings.limits.chat_per_minute = 2).await;
    let user = app.register("asker@example.com").await;
    let other = app.register("other-asker@example.com").await;
    // No model is configured, so each question is refused after it was counted.
    for _ in 0..2 {
        let reply = app.get("/api/v1/chat/stream?query=hello", Some(&user.access)).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    }
    let reply = app.get("/api/v1/chat/stream?query=hello", Some(&user.access)).await;
    reply.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(reply.headers.contains_key("retry-after"));
    assert!(reply.json["error"]["message"].as_str().unwrap().contains("at most 2 per minute"), "{}", reply.text);
    let reply = app.get("/api/v1/chat/stream?query=hello", Some(&other.access)).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
}
