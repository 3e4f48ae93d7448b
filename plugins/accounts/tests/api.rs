//! The accounts API as a client uses it, on the engine `PLEXICHAT_TEST_ENGINE` names:
//! registration and its modes, sign-in with its limits and second factor, rotating refresh
//! tokens, sessions, passwords, profiles and presence; every refusal with its stable code.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use accounts::{Accounts, AccountsConfig, Registration};
use plexichat::http::StatusCode;
use plexichat::serde_json::{Value, json};
use plexichat::testing::TestApp;

const ADMIN_TOKEN: &str = "accounts-test-admin-token-0123456789abcdef";

/// Another plugin with an admin-only route, as the test manager has.
#[plexichat::plugin(name = "admin_only", prefix = "/admin-only")]
#[derive(Default)]
pub struct AdminOnly;

#[plexichat::route(GET, "/ping")]
async fn ping(_admin: plexichat::extract::Admin) -> plexichat::extract::Json<&'static str> {
    plexichat::extract::Json("pong")
}

/// Cheap password hashes: these tests are about the protocol, not the hash's cost (one test
/// below keeps the default cost).
fn cheap() -> AccountsConfig {
    AccountsConfig {
        password_memory_kib: 1024,
        password_iterations: 1,
        ..AccountsConfig::default()
    }
}

async fn app_with(config: AccountsConfig) -> TestApp {
    TestApp::builder()
        .plugin_config::<Accounts>(config)
        .admin_token(ADMIN_TOKEN)
        .start()
        .await
}

async fn app() -> TestApp {
    app_with(cheap()).await
}

async fn register(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/auth/register",
        json!({ "username": username, "password": password }),
    )
    .await
}

/// Registers `username`; its tokens.
async fn member(app: &TestApp, username: &str) -> Value {
    let (status, body) = register(app, username, "correct horse battery").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn get_as(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    app.request("GET", path).bearer(token).send().await
}

async fn send_as(
    app: &TestApp,
    method: &str,
    token: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.request(method, path)
        .bearer(token)
        .json(&body)
        .send()
        .await
}

async fn login(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.post("/api/v1/auth/login", body).await
}

#[tokio::test]
async fn the_first_account_is_an_admin_and_the_next_are_members() {
    let app = app().await;
    let first = member(&app, "Alice").await;
    assert_eq!(first["token_type"], "Bearer");
    assert!(access(&first).starts_with("pxa_"));
    assert!(first["refresh_token"].as_str().unwrap().starts_with("pxr_"));
    assert_eq!(
        first["user"]["username"], "alice",
        "usernames are kept lowercase"
    );
    assert_eq!(first["user"]["display_name"], "alice");
    assert_eq!(first["user"]["role"], "admin");
    let second = member(&app, "bob").await;
    assert_eq!(second["user"]["role"], "member");
    let (status, me) = get_as(&app, access(&second), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "bob");
    assert_eq!(me["totp_enabled"], false);
    assert!(me.get("password_hash").is_none());
}

#[tokio::test]
async fn bad_registrations_name_the_field_and_the_rule() {
    let app = app().await;
    for (body, field, code) in [
        (
            json!({ "username": "a", "password": "long enough pass" }),
            "username",
            "invalid_username",
        ),
        (
            json!({ "username": "-dash", "password": "long enough pass" }),
            "username",
            "invalid_username",
        ),
        (
            json!({ "username": "ok_name", "password": "short" }),
            "password",
            "weak_password",
        ),
        (
            json!({ "username": "ok_name", "password": "OK_NAME" }),
            "password",
            "weak_password",
        ),
        (
            json!({ "username": "ok_name", "password": "long enough pass", "display_name": "  " }),
            "display_name",
            "invalid_field",
        ),
    ] {
        let response = app
            .request("POST", "/api/v1/auth/register")
            .json(&body)
            .send_raw()
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let (status, answer) = app.post("/api/v1/auth/register", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["field"], field, "{answer}");
        assert_eq!(answer["code"], code, "{answer}");
        assert_eq!(answer["status"], 400);
    }
    let (status, answer) = app
        .post(
            "/api/v1/auth/register",
            json!({ "username": "x_y", "password": "long enough pass", "admin": true }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused: {answer}"
    );
}

#[tokio::test]
async fn a_taken_username_is_a_conflict_whatever_its_case() {
    let app = app().await;
    member(&app, "carol").await;
    let (status, body) = register(&app, "CAROL", "another password").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "username_taken");
    assert_eq!(body["field"], "username");
}

#[tokio::test]
async fn probing_for_taken_usernames_is_limited_like_registering() {
    let app = app_with(AccountsConfig {
        registrations_per_address: 3,
        ..cheap()
    })
    .await;
    member(&app, "quinn").await;
    for _ in 0..2 {
        let (status, body) = register(&app, "quinn", "correct horse battery").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("username_taken"))
        );
    }
    let (status, body) = register(&app, "quinn", "correct horse battery").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (status, _) = register(&app, "someone-new", "correct horse battery").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address's window is spent"
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_one_answer() {
    let app = app().await;
    member(&app, "dave").await;
    let (status_wrong, wrong) = login(
        &app,
        json!({ "username": "dave", "password": "not the password" }),
    )
    .await;
    let (status_unknown, unknown) = login(
        &app,
        json!({ "username": "nobody", "password": "not the password" }),
    )
    .await;
    assert_eq!(status_wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(status_unknown, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown, "the answers must not tell which it was");
    assert_eq!(wrong["code"], "invalid_credentials");
    let (status, tokens) = login(
        &app,
        json!({ "username": "DAVE", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["user"]["username"], "dave");
}

/// With the default (real) hash cost, a sign-in for an unknown name takes as long as one
/// with a wrong password: both compute one Argon2id hash. Without the decoy hash the unknown
/// name would answer a hundred times sooner. The two kinds alternate and each keeps its
/// fastest time, so that a busy machine slowing some samples down slows both kinds alike and
/// the bounds only have to tell "one hash" from "none".
#[tokio::test]
async fn an_unknown_user_takes_as_long_as_a_wrong_password() {
    let app = app_with(AccountsConfig {
        login_failures_per_account: 1000,
        login_failures_per_address: 1000,
        ..AccountsConfig::default()
    })
    .await;
    member(&app, "erin").await;
    let time = |username: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            let (status, _) = login(
                app,
                json!({ "username": username, "password": "wrong password!" }),
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            started.elapsed()
        }
    };
    let (mut known, mut unknown) = (Duration::MAX, Duration::MAX);
    for _ in 0..9 {
        known = known.min(time("erin").await);
        unknown = unknown.min(time("no-such-person").await);
    }
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "unknown user {unknown:?}, wrong password {known:?}: ratio {ratio:.2}"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_account_whether_it_exists_or_not() {
    let app = app_with(AccountsConfig {
        login_failures_per_account: 3,
        ..cheap()
    })
    .await;
    member(&app, "frank").await;
    for username in ["frank", "ghost"] {
        for attempt in 0..3 {
            let (status, _) = login(
                &app,
                json!({ "username": username, "password": "guess number x" }),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{username} attempt {attempt}"
            );
        }
        // Now even the right password waits.
        let response = app
            .request("POST", "/api/v1/auth/login")
            .json(&json!({ "username": username, "password": "correct horse battery" }))
            .send_raw()
            .await;
        assert_eq!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{username}"
        );
        let wait: u32 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
    }
    // Another account is not held up by them.
    member(&app, "grace").await;
    let (status, _) = login(
        &app,
        json!({ "username": "grace", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_client_address() {
    let app = app_with(AccountsConfig {
        login_failures_per_address: 4,
        ..cheap()
    })
    .await;
    member(&app, "heidi").await;
    let attacker: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    let neighbour: SocketAddr = "198.51.100.10:40000".parse().unwrap();
    for attempt in 0..4 {
        let (status, _) = app
            .request("POST", "/api/v1/auth/login")
            .peer(attacker)
            .json(&json!({ "username": format!("victim{attempt}"), "password": "guess guess" }))
            .send()
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app
        .request("POST", "/api/v1/auth/login")
        .peer(attacker)
        .json(&json!({ "username": "heidi", "password": "correct horse battery" }))
        .send()
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    let (status, _) = app
        .request("POST", "/api/v1/auth/login")
        .peer(neighbour)
        .json(&json!({ "username": "heidi", "password": "correct horse battery" }))
        .send()
        .await;
    assert_eq!(status, StatusCode::OK, "another address is not limited");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replayed_one_ends_the_session() {
    let app = app().await;
    let first = member(&app, "ivan").await;
    let (status, second) = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": first["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["session_id"], first["session_id"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // The old access token is replaced; the new one works.
    let (status, _) = get_as(&app, access(&first), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_as(&app, access(&second), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::OK);
    // Someone replays the first refresh token: the whole session ends.
    let (status, body) = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": first["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "refresh_token_reused");
    let (status, body) = get_as(&app, access(&second), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": second["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_refresh_token");
}

#[tokio::test]
async fn an_expired_access_token_says_so() {
    let app = app().await;
    let tokens = member(&app, "judy").await;
    let pool = app.runtime.storage().database().pool().clone();
    plexichat::sqlx::query("UPDATE accounts_sessions SET access_expires_ms = 0")
        .execute(&pool)
        .await
        .unwrap();
    let response = app
        .request("GET", "/api/v1/users/me")
        .bearer(access(&tokens))
        .send_raw()
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    let (_, body) = get_as(&app, access(&tokens), "/api/v1/users/me").await;
    assert_eq!(body["code"], "token_expired");
    let (status, _) = app
        .post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the refresh token still renews it");
}

#[tokio::test]
async fn sessions_are_listed_and_ended_by_their_owner_only() {
    let app = app().await;
    let laptop = member(&app, "kim").await;
    let (_, phone) = app
        .request("POST", "/api/v1/auth/login")
        .header("user-agent", "KimPhone/1.0")
        .json(&json!({ "username": "kim", "password": "correct horse battery" }))
        .send()
        .await;
    let (_, tablet) = login(
        &app,
        json!({ "username": "kim", "password": "correct horse battery" }),
    )
    .await;
    let (status, list) = get_as(&app, access(&laptop), "/api/v1/auth/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop["session_id"]);
    assert!(sessions.iter().any(|s| s["user_agent"] == "KimPhone/1.0"));

    // Someone else cannot end Kim's sessions: 404, as for one that does not exist.
    let mallory = member(&app, "mallory").await;
    let path = format!("/api/v1/auth/sessions/{}", phone["session_id"]);
    let (status, body) = app
        .request("DELETE", &path)
        .bearer(access(&mallory))
        .send()
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = get_as(&app, access(&phone), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = app
        .request("DELETE", &path)
        .bearer(access(&laptop))
        .send()
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get_as(&app, access(&phone), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Sign out everywhere else.
    let (status, body) = app
        .request("DELETE", "/api/v1/auth/sessions")
        .bearer(access(&laptop))
        .send()
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ended"], 1);
    let (status, _) = get_as(&app, access(&tablet), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // And sign out here.
    let (status, _) = app
        .request("POST", "/api/v1/auth/logout")
        .bearer(access(&laptop))
        .send()
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get_as(&app, access(&laptop), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_new_password_ends_the_other_sessions() {
    let app = app().await;
    let here = member(&app, "leo").await;
    let (_, elsewhere) = login(
        &app,
        json!({ "username": "leo", "password": "correct horse battery" }),
    )
    .await;
    let (status, body) = send_as(
        &app,
        "POST",
        access(&here),
        "/api/v1/auth/password",
        json!({ "current_password": "wrong one here", "new_password": "a better password" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "invalid_password");
    assert_eq!(body["field"], "current_password");
    let (status, body) = send_as(
        &app,
        "POST",
        access(&here),
        "/api/v1/auth/password",
        json!({ "current_password": "correct horse battery", "new_password": "a better password" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ended"], 1);
    let (status, _) = get_as(&app, access(&elsewhere), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_as(&app, access(&here), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = login(
        &app,
        json!({ "username": "leo", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = login(
        &app,
        json!({ "username": "leo", "password": "a better password" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_admin_reset_code_sets_a_new_password_once_and_ends_every_session() {
    let app = app().await;
    let admin = member(&app, "root").await;
    let mia = member(&app, "mia").await;
    let mia_id = mia["user"]["id"].as_i64().unwrap();
    let other = member(&app, "ned").await;

    // Only an admin (or the admin token) makes one; for someone who exists.
    let (status, _) = send_as(
        &app,
        "POST",
        access(&other),
        "/api/v1/auth/password-resets",
        json!({ "username": "mia" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send_as(
        &app,
        "POST",
        access(&admin),
        "/api/v1/auth/password-resets",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("user_id"))
    );
    let (status, body) = send_as(
        &app,
        "POST",
        access(&admin),
        "/api/v1/auth/password-resets",
        json!({ "username": "nobody" }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("user_not_found"))
    );
    let (status, first) = app
        .request("POST", "/api/v1/auth/password-resets")
        .admin()
        .json(&json!({ "user_id": mia_id }))
        .send()
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, reset) = send_as(
        &app,
        "POST",
        access(&admin),
        "/api/v1/auth/password-resets",
        json!({ "username": "MIA", "expires_in_hours": 1 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reset}");
    assert_eq!(reset["user_id"], mia_id);
    let code = reset["code"].as_str().unwrap();
    assert!(code.starts_with("pxr_"), "{code}");

    // A wrong, replaced or spent code is one answer that names no one.
    let invalid = |body: &Value| {
        (
            body["code"].as_str().map(str::to_string),
            body["field"].as_str().map(str::to_string),
        )
    };
    let expected = (
        Some("invalid_reset_code".to_string()),
        Some("code".to_string()),
    );
    for wrong in ["pxr_nothing", first["code"].as_str().unwrap()] {
        let (status, body) = app
            .post(
                "/api/v1/auth/password/reset",
                json!({ "code": wrong, "new_password": "a fresh start here" }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(invalid(&body), expected, "{body}");
    }
    // A refused password keeps the code.
    let (status, body) = app
        .post(
            "/api/v1/auth/password/reset",
            json!({ "code": code, "new_password": "short" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("weak_password"),
            Some("new_password")
        )
    );
    let (status, body) = app
        .post(
            "/api/v1/auth/password/reset",
            json!({ "code": code, "new_password": "a fresh start here" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ended"], 1, "mia's one session ended");
    let (status, _) = get_as(&app, access(&mia), "/api/v1/users/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post(
            "/api/v1/auth/password/reset",
            json!({ "code": code, "new_password": "another fresh start" }),
        )
        .await;
    assert_eq!(invalid(&body), expected, "spent: {status} {body}");
    let (status, _) = login(
        &app,
        json!({ "username": "mia", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = login(
        &app,
        json!({ "username": "mia", "password": "a fresh start here" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// The current code of `secret`, as oathtool (an independent RFC 6238 implementation)
/// computes it: what an authenticator app would show.
fn oathtool(secret: &str, offset_secs: i64) -> String {
    let at = format!("@{}", jiff_now_secs() + offset_secs);
    let output = Command::new("oathtool")
        .args(["--totp", "--base32", "--now", &at, secret])
        .output()
        .expect("oathtool is installed by .ci/run (Debian package `oathtool`)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn jiff_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What `zbarimg` reads in a QR code drawn from `rows` of modules ("1" dark), scaled up with
/// a quiet zone, as a plain PBM image.
fn zbar(rows: &Value) -> String {
    let rows: Vec<&str> = rows
        .as_array()
        .expect("rows of modules")
        .iter()
        .map(|row| row.as_str().unwrap())
        .collect();
    let (scale, quiet) = (4, 4);
    let size = (rows.len() + 2 * quiet) * scale;
    let mut image = format!("P1\n{size} {size}\n");
    for y in 0..size {
        let line: Vec<&str> = (0..size)
            .map(|x| {
                let (row, column) = (
                    (y / scale).wrapping_sub(quiet),
                    (x / scale).wrapping_sub(quiet),
                );
                let dark = rows
                    .get(row)
                    .and_then(|row| row.as_bytes().get(column))
                    .is_some_and(|module| *module == b'1');
                if dark { "1" } else { "0" }
            })
            .collect();
        image.push_str(&line.join(" "));
        image.push('\n');
    }
    let path = plexichat::testing::fresh_dir("qr").with_extension("pbm");
    std::fs::write(&path, image).unwrap();
    let output = Command::new("zbarimg")
        .args(["--quiet", "--raw"])
        .arg(&path)
        .output()
        .expect("zbarimg (zbar-tools) runs: `apt-get install zbar-tools`");
    let _ = std::fs::remove_file(&path);
    assert!(output.status.success(), "zbarimg read no code");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn totp_enrolment_works_with_any_authenticator_and_codes_work_once() {
    let app = app().await;
    let tokens = member(&app, "mia").await;
    let token = access(&tokens);
    let (status, body) = send_as(
        &app,
        "POST",
        token,
        "/api/v1/auth/2fa/totp/setup",
        json!({ "password": "not my password" }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a stolen token alone cannot enrol: {body}"
    );
    let (status, setup) = send_as(
        &app,
        "POST",
        token,
        "/api/v1/auth/2fa/totp/setup",
        json!({ "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let secret = setup["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/PlexiChat:mia?secret="),
        "{uri}"
    );
    assert!(uri.contains("&digits=6&period=30"));
    assert_eq!(
        zbar(&setup["qr_modules"]),
        uri,
        "the QR code's modules read back, with zbar, as the URI"
    );

    // Not on until confirmed.
    let (status, _) = login(
        &app,
        json!({ "username": "mia", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = send_as(
        &app,
        "POST",
        token,
        "/api/v1/auth/2fa/totp/confirm",
        json!({ "code": "000000" }),
    )
    .await;
    // (One code in a million is 000000; then this assertion is the unlucky one.)
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "code");
    let (status, confirmed) = send_as(
        &app,
        "POST",
        token,
        "/api/v1/auth/2fa/totp/confirm",
        json!({ "code": oathtool(secret, 0) }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);

    // A password alone is no longer enough.
    let (status, body) = login(
        &app,
        json!({ "username": "mia", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "mfa_required");
    // The confirming code was used; the next step's code works once.
    let next = oathtool(secret, 30);
    let (status, body) = login(
        &app,
        json!({ "username": "mia", "password": "correct horse battery", "totp_code": next }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["totp_enabled"], true);
    let (status, body) = login(
        &app,
        json!({ "username": "mia", "password": "correct horse battery", "totp_code": next }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code works once");
    assert_eq!(body["code"], "invalid_mfa_code");

    // A recovery code works once, however it is typed.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let (status, body) = login(
        &app,
        json!({ "username": "mia", "password": "correct horse battery", "recovery_code": typed }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["recovery_codes_left"], 9);
    let (status, _) = login(
        &app,
        json!({ "username": "mia", "password": "correct horse battery", "recovery_code": codes[0] }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Off again, with the password and a recovery code.
    let (status, body) = send_as(
        &app,
        "DELETE",
        token,
        "/api/v1/auth/2fa/totp",
        json!({ "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send_as(
        &app,
        "DELETE",
        token,
        "/api/v1/auth/2fa/totp",
        json!({ "password": "correct horse battery", "recovery_code": codes[1] }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = login(
        &app,
        json!({ "username": "mia", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn invitations_admit_as_many_as_they_say() {
    let app = app_with(AccountsConfig {
        registration: Registration::Invite,
        ..cheap()
    })
    .await;
    let admin = member(&app, "root").await;
    assert_eq!(
        admin["user"]["role"], "admin",
        "the first account needs no invitation"
    );
    let (status, body) = register(&app, "nina", "correct horse battery").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invite_required");
    assert_eq!(body["field"], "invite_code");

    // The admin token and an admin's session may invite.
    let (status, by_token) = app
        .request("POST", "/api/v1/auth/invites")
        .admin()
        .json(&json!({ "uses": 1 }))
        .send()
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_token}");
    let (status, by_admin) = send_as(
        &app,
        "POST",
        access(&admin),
        "/api/v1/auth/invites",
        json!({ "uses": 2 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{by_admin}");
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            json!({ "username": "nina", "password": "correct horse battery", "invite_code": by_token["code"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A member may not.
    let (status, _) = send_as(
        &app,
        "POST",
        access(&body),
        "/api/v1/auth/invites",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            json!({ "username": "oscar", "password": "correct horse battery", "invite_code": by_token["code"] }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "used up: {body}");
    assert_eq!(body["code"], "invalid_invite");
    for name in ["oscar", "peggy"] {
        let (status, body) = app
            .post(
                "/api/v1/auth/register",
                json!({ "username": name, "password": "correct horse battery", "invite_code": by_admin["code"] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // A taken name gives its use back.
    let (status, invite) = app
        .request("POST", "/api/v1/auth/invites")
        .admin()
        .send()
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            "/api/v1/auth/register",
            json!({ "username": "peggy", "password": "correct horse battery", "invite_code": invite["code"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app
        .post(
            "/api/v1/auth/register",
            json!({ "username": "quinn", "password": "correct horse battery", "invite_code": invite["code"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn closed_registration_admits_only_the_first_account_and_configured_admins_are_admins() {
    let app = app_with(AccountsConfig {
        registration: Registration::Closed,
        admins: vec!["Rita".to_string()],
        ..cheap()
    })
    .await;
    let first = member(&app, "rita").await;
    assert_eq!(first["user"]["role"], "admin");
    let (status, body) = register(&app, "sam", "correct horse battery").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "registration_closed");
}

#[tokio::test]
async fn profiles_search_and_presence() {
    let app = app().await;
    let ted = member(&app, "ted").await;
    let uma = member(&app, "uma").await;
    let (status, me) = send_as(
        &app,
        "PATCH",
        access(&ted),
        "/api/v1/users/me",
        json!({ "display_name": "Ted 100% Real", "about": "hello" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["display_name"], "Ted 100% Real");
    let (status, body) = send_as(
        &app,
        "PATCH",
        access(&ted),
        "/api/v1/users/me",
        json!({ "about": "x".repeat(501) }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "about");

    let path = format!("/api/v1/users/{}", ted["user"]["id"]);
    let (status, seen) = get_as(&app, access(&uma), &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["about"], "hello");
    assert!(
        seen.get("totp_enabled").is_none(),
        "private fields stay private"
    );
    let (status, _) = app.get(&path).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "profiles are for people signed in"
    );
    let (status, body) = get_as(&app, access(&uma), "/api/v1/users/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "user_not_found");

    // Search by part of a display name, any case; `%` is a character, not a wildcard.
    let (_, found) = get_as(&app, access(&uma), "/api/v1/users?q=100%25%20REAL").await;
    let names: Vec<&str> = found["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ted"]);
    let (_, found) = get_as(&app, access(&uma), "/api/v1/users?q=%25").await;
    assert_eq!(found["users"].as_array().unwrap().len(), 1);
    // Pages.
    for name in ["vic", "wendy", "xena"] {
        member(&app, name).await;
    }
    let (_, page) = get_as(&app, access(&uma), "/api/v1/users?limit=2").await;
    assert_eq!(page["users"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_i64().unwrap();
    let (_, rest) = get_as(
        &app,
        access(&uma),
        &format!("/api/v1/users?limit=200&after={after}"),
    )
    .await;
    assert_eq!(rest["users"].as_array().unwrap().len(), 3);
    assert!(rest["next_after"].is_null());
    let (status, body) = get_as(&app, access(&uma), "/api/v1/users?limit=500").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "limit");

    let (status, body) = send_as(
        &app,
        "PUT",
        access(&uma),
        "/api/v1/users/me/presence",
        json!({ "presence": "dnd", "status_text": "in a meeting" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["presence"], "dnd");
    let (status, body) = send_as(
        &app,
        "PUT",
        access(&uma),
        "/api/v1/users/me/presence",
        json!({ "presence": "asleep" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "presence");
}

#[tokio::test]
async fn every_account_route_is_in_the_openapi_document_with_its_security() {
    let app = app().await;
    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for (path, method, secured) in [
        ("/api/v1/auth/register", "post", false),
        ("/api/v1/auth/login", "post", false),
        ("/api/v1/auth/refresh", "post", false),
        ("/api/v1/auth/logout", "post", true),
        ("/api/v1/auth/sessions", "get", true),
        ("/api/v1/auth/sessions", "delete", true),
        ("/api/v1/auth/sessions/{id}", "delete", true),
        ("/api/v1/auth/password", "post", true),
        ("/api/v1/auth/2fa/totp/setup", "post", true),
        ("/api/v1/auth/2fa/totp/confirm", "post", true),
        ("/api/v1/auth/2fa/totp", "delete", true),
        ("/api/v1/users/me", "get", true),
        ("/api/v1/users/me", "patch", true),
        ("/api/v1/users/{id}", "get", true),
        ("/api/v1/users", "get", true),
        ("/api/v1/users/me/presence", "put", true),
    ] {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        assert_eq!(
            operation["security"] == json!([{ "accessToken": [] }]),
            secured,
            "{method} {path}: {}",
            operation["security"]
        );
    }
    assert_eq!(
        document["components"]["securitySchemes"]["accessToken"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn an_admin_user_has_the_admin_api_through_their_own_session() {
    let app = app().await;
    let alice = member(&app, "alice").await;
    assert_eq!(alice["user"]["role"], "admin", "the first account");
    let bob = member(&app, "bob").await;
    let list = "/api/v1/admin/plugins";
    let (status, body) = get_as(&app, access(&alice), list).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = get_as(&app, access(&bob), list).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a member is not an admin");
    let (status, _) = get_as(&app, ADMIN_TOKEN, list).await;
    assert_eq!(status, StatusCode::OK, "the admin token still works");

    // A plugin's route that takes `Admin` accepts it too.
    let (status, body) = get_as(&app, access(&alice), "/admin-only/ping").await;
    assert_eq!((status, body), (StatusCode::OK, json!("pong")));
    let (status, _) = get_as(&app, access(&bob), "/admin-only/ping").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // With accounts disabled nobody vouches: only the admin token opens the admin API.
    let (status, body) = send_as(
        &app,
        "POST",
        access(&alice),
        "/api/v1/admin/plugins/accounts/disable",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = get_as(&app, access(&alice), list).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send_as(
        &app,
        "POST",
        ADMIN_TOKEN,
        "/api/v1/admin/plugins/accounts/enable",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A session that ended vouches for no one.
    let (status, _) = send_as(
        &app,
        "POST",
        access(&alice),
        "/api/v1/auth/logout",
        json!({}),
    )
    .await;
    assert!(status.is_success());
    let (status, _) = get_as(&app, access(&alice), list).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
