//! The files API as clients use it, on the engine `PLEXICHAT_TEST_ENGINE` names: uploads
//! checked against `sha256sum`, downloads with `Range` that never render in the app's
//! origin, attachments readable only by a channel's readers, caps, quotas and share links.

use std::process::Command;

use accounts::{Accounts, AccountsConfig};
use files::{Files, FilesConfig};
use plexichat::axum::body::to_bytes;
use plexichat::http::StatusCode;
use plexichat::serde_json::{Value, json};
use plexichat::testing::{TestApp, TestBody, TestClient};

async fn app_with(files: FilesConfig) -> TestApp {
    TestApp::builder()
        .plugin_config::<Accounts>(AccountsConfig {
            password_memory_kib: 1024,
            password_iterations: 1,
            ..AccountsConfig::default()
        })
        .plugin_config::<Files>(files)
        .start()
        .await
}

async fn app() -> TestApp {
    app_with(FilesConfig::default()).await
}

struct Person {
    id: i64,
    token: String,
}

async fn person(app: &TestClient, username: &str) -> Person {
    let (status, body) = app
        .post(
            "/api/v1/auth/register",
            json!({ "username": username, "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let (_, me) = app
        .request("GET", "/api/v1/users/me")
        .bearer(&token)
        .send()
        .await;
    Person {
        id: me["id"].as_i64().unwrap(),
        token,
    }
}

async fn upload(app: &TestClient, who: &Person, name: &str, bytes: &[u8]) -> (StatusCode, Value) {
    app.request("POST", &format!("/api/v1/files?name={name}"))
        .bearer(&who.token)
        .body(TestBody::raw(
            Some("application/octet-stream"),
            bytes.to_vec(),
        ))
        .send()
        .await
}

async fn uploaded(app: &TestClient, who: &Person, name: &str, bytes: &[u8]) -> Value {
    let (status, info) = upload(app, who, name, bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    info
}

/// Status, headers and bytes of a download.
async fn download(
    app: &TestClient,
    token: Option<&str>,
    path: &str,
    range: Option<&str>,
) -> (StatusCode, plexichat::http::HeaderMap, Vec<u8>) {
    let mut request = app.request("GET", path);
    if let Some(token) = token {
        request = request.bearer(token);
    }
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let response = request.send_raw().await;
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap().to_vec();
    (parts.status, parts.headers, bytes)
}

async fn call(
    app: &TestClient,
    who: &Person,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.request(method, path)
        .bearer(&who.token)
        .json(&body)
        .send()
        .await
}

/// `sha256sum`'s digest of `bytes`: the tool people check downloads with.
fn sha256sum(bytes: &[u8]) -> String {
    let path = plexichat::testing::fresh_dir("sha256sum");
    std::fs::write(&path, bytes).unwrap();
    let output = Command::new("sha256sum")
        .arg(&path)
        .output()
        .expect("sha256sum (coreutils) runs");
    let _ = std::fs::remove_file(&path);
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()[..64].to_string()
}

#[tokio::test]
async fn an_upload_comes_back_whole_or_in_ranges_as_an_attachment() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..200_000u32).map(|n| (n * 7 % 251) as u8));
    let info = uploaded(&app, &alice, "holiday%20photo.png", &bytes).await;
    assert_eq!(info["name"], "holiday photo.png");
    assert_eq!(info["content_type"], "image/png");
    assert_eq!(info["size"], bytes.len());
    assert_eq!(
        info["sha256"],
        sha256sum(&bytes),
        "the digest agrees with sha256sum"
    );
    assert_eq!(info["owner_id"], alice.id);
    let content = info["content_url"].as_str().unwrap();

    let (status, headers, body) = download(&app, Some(&alice.token), content, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sha256sum(&body), sha256sum(&bytes));
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"holiday photo.png\"; filename*=UTF-8''holiday%20photo.png"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(headers["accept-ranges"], "bytes");

    let (status, headers, part) =
        download(&app, Some(&alice.token), content, Some("bytes=100-199")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part, bytes[100..200]);
    assert_eq!(
        headers["content-range"],
        format!("bytes 100-199/{}", bytes.len())
    );
    let (_, _, tail) = download(&app, Some(&alice.token), content, Some("bytes=-10")).await;
    assert_eq!(tail, bytes[bytes.len() - 10..]);
    let (status, headers, _) =
        download(&app, Some(&alice.token), content, Some("bytes=999999999-")).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers["content-range"], format!("bytes */{}", bytes.len()));

    let (status, _) = app.get(content).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, list) = call(&app, &alice, "GET", "/api/v1/files", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["files"][0]["id"], info["id"]);
    assert_eq!(list["used_bytes"], bytes.len());
}

#[tokio::test]
async fn markup_uploads_are_plain_text_attachments_never_pages() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    for (name, bytes) in [
        (
            "page.html",
            &b"<!doctype html><script>alert(document.cookie)</script>"[..],
        ),
        (
            "image.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
        ),
    ] {
        let info = uploaded(&app, &alice, name, bytes).await;
        assert_eq!(info["content_type"], "text/plain; charset=utf-8", "{name}");
        let (_, headers, _) = download(
            &app,
            Some(&alice.token),
            info["content_url"].as_str().unwrap(),
            None,
        )
        .await;
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(
            !content_type.contains("html") && !content_type.contains("svg"),
            "{content_type}"
        );
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
}

#[tokio::test]
async fn an_attachment_is_read_by_the_channels_readers_only() {
    let app = app().await;
    let (alice, bob, eve) = (
        person(&app, "alice").await,
        person(&app, "bob").await,
        person(&app, "eve").await,
    );
    let (_, channel) = call(
        &app,
        &alice,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "private", "name": "plans", "member_ids": [bob.id] }),
    )
    .await;
    let channel = channel["id"].as_i64().unwrap();
    let info = uploaded(&app, &alice, "plan.txt", b"the secret plan").await;
    let (id, content) = (
        info["id"].as_i64().unwrap(),
        info["content_url"].as_str().unwrap().to_string(),
    );
    let (status, _) = call(
        &app,
        &bob,
        "GET",
        &format!("/api/v1/files/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not shared yet");

    let (status, message) = call(
        &app,
        &alice,
        "POST",
        &format!("/api/v1/channels/{channel}/messages"),
        json!({ "body": "see attached", "file_ids": [id] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["file_ids"], json!([id]));
    let (status, _, body) = download(&app, Some(&bob.token), &content, None).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, &b"the secret plan"[..])
    );
    for path in [format!("/api/v1/files/{id}"), content.clone()] {
        let (status, _, body) = download(&app, Some(&eve.token), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }

    // Attaching someone else's file is refused, and nothing is posted.
    let (status, refused) = call(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{channel}/messages"),
        json!({ "body": "mine now", "file_ids": [id] }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["rejected_by"], "files");
    let (_, history) = call(
        &app,
        &bob,
        "GET",
        &format!("/api/v1/channels/{channel}/messages"),
        json!(null),
    )
    .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);

    // Only the uploader deletes it; then it is gone for everyone.
    let (status, _) = call(
        &app,
        &bob,
        "DELETE",
        &format!("/api/v1/files/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &app,
        &alice,
        "DELETE",
        &format!("/api/v1/files/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = download(&app, Some(&bob.token), &content, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uploads_stop_at_the_size_cap_and_the_quota() {
    let app = app_with(FilesConfig {
        max_upload_bytes: 1000,
        quota_bytes_per_user: 1500,
        ..FilesConfig::default()
    })
    .await;
    let alice = person(&app, "alice").await;
    let (status, problem) = upload(&app, &alice, "big", &[7u8; 1001]).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("file_too_large"))
    );
    uploaded(&app, &alice, "first", &[7u8; 1000]).await;
    let (status, problem) = upload(&app, &alice, "second", &[7u8; 600]).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded"))
    );
    let (_, list) = call(&app, &alice, "GET", "/api/v1/files", json!(null)).await;
    assert_eq!(
        list["files"].as_array().unwrap().len(),
        1,
        "nothing kept of the refused ones"
    );
}

#[tokio::test]
async fn uploads_stream_past_the_json_cap_which_still_holds_for_json() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let bytes = vec![b'a'; 3 * 1024 * 1024];
    let info = uploaded(&app, &alice, "three-mib.txt", &bytes).await;
    assert_eq!(info["size"], bytes.len());
    let huge = json!({ "body": "x".repeat(3 * 1024 * 1024) });
    let (status, _) = call(&app, &alice, "POST", "/api/v1/channels", huge).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a JSON body is read whole, so it is capped"
    );
}

#[tokio::test]
async fn a_share_link_gives_the_file_to_anyone_who_has_it() {
    let app = app().await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let info = uploaded(&app, &alice, "notes.txt", b"shared notes").await;
    let id = info["id"].as_i64().unwrap();
    let (status, share) = call(
        &app,
        &alice,
        "POST",
        &format!("/api/v1/files/{id}/shares"),
        json!({ "expires_in_hours": 2 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{share}");
    let url = share["url"].as_str().unwrap();
    let (status, headers, body) = download(&app, None, url, None).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, &b"shared notes"[..])
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let (status, _, _) = download(&app, None, &format!("{url}x"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = call(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/files/{id}/shares"),
        json!({}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "bob cannot see it, let alone share it"
    );
    let (status, problem) = call(
        &app,
        &alice,
        "POST",
        &format!("/api/v1/files/{id}/shares"),
        json!({ "expires_in_hours": 100000 }),
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("expires_in_hours"))
    );
}
