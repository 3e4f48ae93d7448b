//! The WebSocket as a client uses it, on the engine `PLEXICHAT_TEST_ENGINE` names: what
//! reaches whom, resume after being away, order and exactly-once when the bus delivers out
//! of order, typing, the refusals and close codes, and cutting off a client that does not
//! read.

use std::net::SocketAddr;
use std::time::Duration;

use accounts::{Accounts, AccountsConfig};
use channels::{ChannelEvent, EventRecord};
use futures_util::{SinkExt, StreamExt};
use plexichat::http::StatusCode;
use plexichat::prelude::*;
use plexichat::serde_json::{Value, json};
use plexichat::testing::{TestApp, TestClient};
use realtime::{Realtime, RealtimeConfig};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Holds back the bus's delivery of a message whose body is `slow`, as a busy handler or a
/// far replica would, so the next message overtakes it.
#[plugin(name = "stall", dependencies = [channels::Channels])]
#[derive(Default)]
pub struct Stall;

#[on_event(priority = 100)]
async fn stall(_stall: &Stall, event: &ChannelEvent) {
    if event.record.data["body"] == "slow" {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

async fn app_with(realtime: RealtimeConfig) -> (TestApp, SocketAddr) {
    let app = TestApp::builder()
        .plugin_config::<Accounts>(AccountsConfig {
            password_memory_kib: 1024,
            password_iterations: 1,
            ..AccountsConfig::default()
        })
        .plugin_config::<Realtime>(realtime)
        .start()
        .await;
    let address = app.serve_on_loopback().await;
    (app, address)
}

async fn app() -> (TestApp, SocketAddr) {
    app_with(RealtimeConfig::default()).await
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

async fn call(app: &TestClient, who: &Person, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = app
        .request(method, path)
        .bearer(&who.token)
        .json(&body)
        .send()
        .await;
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

async fn channel(app: &TestClient, who: &Person, kind: &str, name: &str) -> i64 {
    call(
        app,
        who,
        "POST",
        "/api/v1/channels",
        json!({ "kind": kind, "name": name }),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn say(app: &TestClient, who: &Person, channel: i64, body: &str) -> i64 {
    call(
        app,
        who,
        "POST",
        &format!("/api/v1/channels/{channel}/messages"),
        json!({ "body": body }),
    )
    .await["seq"]
        .as_i64()
        .unwrap()
}

async fn connect(address: SocketAddr) -> Socket {
    let (socket, response) = tokio_tungstenite::connect_async(format!("ws://{address}/api/v1/ws"))
        .await
        .expect("the upgrade succeeds");
    assert_eq!(response.status(), 101);
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame (pings skipped); panics after 5 s.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return plexichat::serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Signs in over `socket`; the `ready` frame and the events replayed before it.
async fn sign_in(socket: &mut Socket, who: &Person, resume: Value) -> (Value, Vec<Value>) {
    send(
        socket,
        json!({ "type": "auth", "token": who.token, "resume": resume }),
    )
    .await;
    let mut replayed = Vec::new();
    loop {
        let frame = next(socket).await;
        if frame["type"] == "ready" {
            return (frame, replayed);
        }
        replayed.push(frame);
    }
}

/// The close code the server ends with (frames before it skipped); panics after 5 s.
async fn closed_with(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("the server closes within 5 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => {}
            // Reset before a close frame could be written.
            Some(Err(_)) => return 1006,
        }
    }
}

/// Nothing arrives for a moment.
async fn quiet(socket: &mut Socket) {
    if let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_millis(300), socket.next()).await
    {
        panic!("expected nothing, got {text}");
    }
}

#[tokio::test]
async fn members_hear_their_channels_and_no_one_else_does() {
    let (app, address) = app().await;
    let (alice, bob, eve) = (
        person(&app, "alice").await,
        person(&app, "bob").await,
        person(&app, "eve").await,
    );
    let secret = channel(&app, &alice, "private", "secret").await;
    call(
        &app,
        &alice,
        "POST",
        &format!("/api/v1/channels/{secret}/members"),
        json!({ "user_id": bob.id }),
    )
    .await;
    let (mut bobs, mut eves) = (connect(address).await, connect(address).await);
    let (ready, _) = sign_in(&mut bobs, &bob, json!({})).await;
    assert_eq!(
        (ready["user_id"].as_i64(), ready["channels"].as_i64()),
        (Some(bob.id), Some(1))
    );
    sign_in(&mut eves, &eve, json!({})).await;

    let seq = say(&app, &alice, secret, "for members only").await;
    let frame = next(&mut bobs).await;
    assert_eq!(frame["type"], "message.created");
    assert_eq!(
        (frame["channel_id"].as_i64(), frame["seq"].as_i64()),
        (Some(secret), Some(seq))
    );
    assert_eq!(frame["event_id"], format!("{secret}-{seq}"));
    assert_eq!(frame["data"]["body"], "for members only");
    assert_eq!(frame["data"]["author_id"], alice.id);
    quiet(&mut eves).await;

    // Eve cannot listen in by subscribing or resuming either.
    send(
        &mut eves,
        json!({ "type": "subscribe", "channel_id": secret }),
    )
    .await;
    assert_eq!(next(&mut eves).await["code"], "channel_not_found");
    let mut again = connect(address).await;
    send(
        &mut again,
        json!({ "type": "auth", "token": eve.token, "resume": { secret.to_string(): 0 } }),
    )
    .await;
    let refused = next(&mut again).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("channel_not_found"))
    );
    assert_eq!(
        next(&mut again).await["type"],
        "ready",
        "and nothing of the channel before it"
    );

    // A new member hears themselves join, and everything after; one who leaves, nothing after.
    let public = channel(&app, &alice, "public", "plaza").await;
    call(
        &app,
        &eve,
        "POST",
        &format!("/api/v1/channels/{public}/members"),
        json!({}),
    )
    .await;
    let joined = next(&mut eves).await;
    assert_eq!(
        (joined["type"].as_str(), joined["data"]["user_id"].as_i64()),
        (Some("member.joined"), Some(eve.id))
    );
    say(&app, &alice, public, "welcome eve").await;
    assert_eq!(next(&mut eves).await["data"]["body"], "welcome eve");
    let path = format!("/api/v1/channels/{public}/members/{}", eve.id);
    assert_eq!(
        app.request("DELETE", &path)
            .bearer(&eve.token)
            .send()
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(next(&mut eves).await["type"], "member.left");
    say(&app, &alice, public, "bye").await;
    quiet(&mut eves).await;
    // Bob never joined the public channel: he hears it only once he subscribes.
    quiet(&mut bobs).await;
    send(
        &mut bobs,
        json!({ "type": "subscribe", "channel_id": public }),
    )
    .await;
    assert_eq!(next(&mut bobs).await["type"], "subscribed");
    say(&app, &alice, public, "hello readers").await;
    assert_eq!(next(&mut bobs).await["data"]["body"], "hello readers");
}

#[tokio::test]
async fn a_client_that_was_away_resumes_where_it_stopped() {
    let (app, address) = app().await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let general = channel(&app, &alice, "public", "general").await;
    call(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{general}/members"),
        json!({}),
    )
    .await;
    let seen = say(&app, &alice, general, "before").await;
    // Bob is away while these happen.
    let first = say(&app, &alice, general, "one").await;
    let message = call(
        &app,
        &alice,
        "GET",
        &format!("/api/v1/channels/{general}/messages?limit=1"),
        json!(null),
    )
    .await;
    let id = message["messages"][0]["id"].as_i64().unwrap();
    call(
        &app,
        &alice,
        "PATCH",
        &format!("/api/v1/messages/{id}"),
        json!({ "body": "one, edited" }),
    )
    .await;
    say(&app, &alice, general, "two").await;

    let mut socket = connect(address).await;
    let (ready, replayed) = sign_in(&mut socket, &bob, json!({ general.to_string(): seen })).await;
    let shown: Vec<(i64, &str)> = replayed
        .iter()
        .map(|frame| {
            (
                frame["seq"].as_i64().unwrap(),
                frame["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (first, "message.created"),
            (first + 1, "message.updated"),
            (first + 2, "message.created")
        ]
    );
    assert_eq!(replayed[1]["data"]["body"], "one, edited");
    assert_eq!(ready["resumed"][general.to_string()], 3);
    // Then it is live.
    let live = say(&app, &alice, general, "three").await;
    let frame = next(&mut socket).await;
    assert_eq!(
        (frame["seq"].as_i64(), frame["data"]["body"].as_str()),
        (Some(live), Some("three"))
    );
}

#[tokio::test]
async fn events_published_out_of_order_arrive_in_order_and_once() {
    let (app, address) = app().await;
    let alice = person(&app, "alice").await;
    let general = channel(&app, &alice, "public", "general").await;
    let mut socket = connect(address).await;
    let base = say(&app, &alice, general, "base").await;
    sign_in(&mut socket, &alice, json!({ general.to_string(): base })).await;

    // "slow" is committed first but its publication is held back, so "fast" reaches the
    // hub first: the connection fills the gap from the log and drops the late copy.
    let slow = {
        let (client, token) = (TestClient::clone(&app), alice.token.clone());
        tokio::spawn(async move {
            client
                .request("POST", &format!("/api/v1/channels/{general}/messages"))
                .bearer(&token)
                .json(&json!({ "body": "slow" }))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    say(&app, &alice, general, "fast").await;
    assert_eq!(slow.await.unwrap().0, StatusCode::CREATED);
    let frames = [next(&mut socket).await, next(&mut socket).await];
    let shown: Vec<(i64, &str)> = frames
        .iter()
        .map(|frame| {
            (
                frame["seq"].as_i64().unwrap(),
                frame["data"]["body"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, [(base + 1, "slow"), (base + 2, "fast")]);
    quiet(&mut socket).await;
}

#[tokio::test]
async fn typing_reaches_the_others_in_the_channel() {
    let (app, address) = app().await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let general = channel(&app, &alice, "public", "general").await;
    call(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{general}/members"),
        json!({}),
    )
    .await;
    let (mut alices, mut bobs) = (connect(address).await, connect(address).await);
    sign_in(&mut alices, &alice, json!({})).await;
    sign_in(&mut bobs, &bob, json!({})).await;
    send(
        &mut alices,
        json!({ "type": "typing", "channel_id": general }),
    )
    .await;
    let typing = next(&mut bobs).await;
    assert_eq!(
        typing,
        json!({ "type": "typing", "channel_id": general, "user_id": alice.id })
    );
    quiet(&mut alices).await;
    send(&mut alices, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut alices).await, json!({ "type": "pong" }));
    send(&mut alices, json!({ "type": "dance" })).await;
    assert_eq!(next(&mut alices).await["code"], "invalid_frame");
}

#[tokio::test]
async fn bad_or_missing_credentials_and_ended_sessions_close_with_their_codes() {
    let (app, address) = app_with(RealtimeConfig {
        auth_timeout_secs: 1,
        ..RealtimeConfig::default()
    })
    .await;
    let alice = person(&app, "alice").await;

    let mut socket = connect(address).await;
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(closed_with(&mut socket).await, 4400);

    let mut socket = connect(address).await;
    send(
        &mut socket,
        json!({ "type": "auth", "token": "pxa_not-a-token" }),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "unauthorized");
    assert_eq!(closed_with(&mut socket).await, 4401);

    let mut socket = connect(address).await;
    assert_eq!(
        closed_with(&mut socket).await,
        4408,
        "no auth frame in time"
    );

    let mut socket = connect(address).await;
    sign_in(&mut socket, &alice, json!({})).await;
    let (status, _) = app
        .request("POST", "/api/v1/auth/logout")
        .bearer(&alice.token)
        .send()
        .await;
    assert!(status.is_success());
    assert_eq!(
        closed_with(&mut socket).await,
        4403,
        "signing out closes its sockets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_cut_off_and_the_server_holds_nothing_for_it() {
    let (app, address) = app_with(RealtimeConfig {
        queue_frames: 256,
        send_timeout_secs: 1,
        ..RealtimeConfig::default()
    })
    .await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let general = channel(&app, &alice, "public", "general").await;
    call(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{general}/members"),
        json!({}),
    )
    .await;
    let (mut slow, mut fast) = (connect(address).await, connect(address).await);
    sign_in(&mut slow, &alice, json!({})).await;
    sign_in(&mut fast, &bob, json!({})).await;
    let reader = tokio::spawn(async move {
        let mut frames = 0;
        while let Some(Ok(message)) = fast.next().await {
            if matches!(message, Message::Text(_)) {
                frames += 1;
                if frames == 3000 {
                    break;
                }
            }
        }
        // Kept open: the reader stays connected.
        (frames, fast)
    });

    // 3000 events of 4 KiB (12 MiB) for a client that reads none of them.
    let padding = "x".repeat(4096);
    let start = channel_seq(&app, &alice, general).await;
    for seq in start + 1..=start + 3000 {
        let record = EventRecord {
            event_id: format!("{general}-{seq}"),
            channel_id: general,
            seq,
            kind: "message.created".to_string(),
            data: json!({ "body": padding }),
            at: String::new(),
        };
        app.runtime
            .publish(&ChannelEvent {
                record,
                public: true,
            })
            .await;
        // Paced so that the reading client keeps up.
        if seq % 16 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (frames, _fast) = reader.await.unwrap();
    assert_eq!(frames, 3000, "a reading client got every frame");
    let realtime = app.runtime.plugin::<Realtime>().unwrap();
    assert_eq!(realtime.cut_off(), 1);
    assert_eq!(realtime.connections(), 1, "only the reader is left");
    // The close frame arrives after what the socket's buffers held, unless those were so
    // full that it could not be written: then the connection is simply dropped.
    let code = closed_with(&mut slow).await;
    assert!([4429, 1006, 1005].contains(&code), "closed with {code}");
}

async fn channel_seq(app: &TestClient, who: &Person, channel: i64) -> i64 {
    call(
        app,
        who,
        "GET",
        &format!("/api/v1/channels/{channel}"),
        json!(null),
    )
    .await["last_seq"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_channel_created_while_connected_is_heard_by_its_first_members() {
    let (app, address) = app().await;
    let (alice, bob, eve) = (
        person(&app, "alice").await,
        person(&app, "bob").await,
        person(&app, "eve").await,
    );
    let mut sockets = Vec::new();
    for who in [&alice, &bob, &eve] {
        let mut socket = connect(address).await;
        sign_in(&mut socket, who, json!({})).await;
        sockets.push(socket);
    }
    let created = call(
        &app,
        &alice,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "private", "name": "new", "member_ids": [bob.id] }),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    for socket in &mut sockets[..2] {
        let frame = next(socket).await;
        assert_eq!(
            (frame["type"].as_str(), frame["seq"].as_i64()),
            (Some("channel.created"), Some(1))
        );
        assert_eq!(frame["data"]["member_ids"], json!([alice.id, bob.id]));
    }
    say(&app, &alice, id, "first").await;
    for socket in &mut sockets[..2] {
        assert_eq!(next(socket).await["data"]["body"], "first");
    }
    quiet(&mut sockets[2]).await;
}
