//! The channels API as clients use it, on the engine `PLEXICHAT_TEST_ENGINE` names: who may
//! see and write what, history by sequence number, edits and tombstones, threads,
//! reactions, read markers, search, `Idempotency-Key`, and the events each change becomes.

use std::sync::Mutex;

use accounts::{Accounts, AccountsConfig};
use channels::{ChannelEvent, Channels, ChannelsConfig, MessagePosting};
use plexichat::http::StatusCode;
use plexichat::prelude::*;
use plexichat::serde_json::{Value, json};
use plexichat::testing::{TestApp, TestClient};

/// Records the channel events the bus delivers, and screens posts: a test's stand-in for
/// another plugin.
#[plugin(name = "channel_watcher", dependencies = [channels::Channels])]
#[derive(Default)]
pub struct Watcher {
    seen: Mutex<Vec<(i64, i64, String)>>,
}

#[on_event]
fn record(watcher: &Watcher, event: &ChannelEvent) {
    watcher.seen.lock().unwrap().push((
        event.record.channel_id,
        event.record.seq,
        event.record.kind.clone(),
    ));
}

#[on_event(pre)]
fn screen(_watcher: &Watcher, post: &mut MessagePosting) -> Result<(), String> {
    if post.body.contains("forbidden-word") {
        return Err("that word is not said here".to_string());
    }
    post.body = post.body.replace("darn", "d**n");
    Ok(())
}

async fn app() -> TestApp {
    app_with(ChannelsConfig::default()).await
}

/// The app with cheap password hashes and `config` for channels.
async fn app_with(config: ChannelsConfig) -> TestApp {
    TestApp::builder()
        .plugin_config::<Accounts>(AccountsConfig {
            password_memory_kib: 1024,
            password_iterations: 1,
            ..AccountsConfig::default()
        })
        .plugin_config::<Channels>(config)
        .start()
        .await
}

/// The bodies `GET /api/v1/messages/search?{query}` finds for `token`.
async fn found(app: &TestClient, token: &str, query: &str) -> Vec<String> {
    let (status, page) = get(app, token, &format!("/api/v1/messages/search?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    bodies(&page).iter().map(|body| body.to_string()).collect()
}

/// A signed-in person: their id and access token.
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
    let (_, me) = get(app, &token, "/api/v1/users/me").await;
    Person {
        id: me["id"].as_i64().unwrap(),
        token,
    }
}

async fn get(app: &TestClient, token: &str, path: &str) -> (StatusCode, Value) {
    app.request("GET", path).bearer(token).send().await
}

async fn send(
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

async fn delete(app: &TestClient, who: &Person, path: &str) -> StatusCode {
    app.request("DELETE", path)
        .bearer(&who.token)
        .send()
        .await
        .0
}

async fn channel(app: &TestClient, who: &Person, kind: &str, name: &str) -> i64 {
    let (status, body) = send(
        app,
        who,
        "POST",
        "/api/v1/channels",
        json!({ "kind": kind, "name": name }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().unwrap()
}

async fn post(app: &TestClient, who: &Person, channel: i64, body: &str) -> Value {
    let (status, message) = send(
        app,
        who,
        "POST",
        &format!("/api/v1/channels/{channel}/messages"),
        json!({ "body": body }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    message
}

fn bodies(page: &Value) -> Vec<&str> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn private_channels_are_invisible_to_non_members_through_every_route() {
    let app = app().await;
    let (alice, bob, eve) = (
        person(&app, "alice").await,
        person(&app, "bob").await,
        person(&app, "eve").await,
    );
    let secret = channel(&app, &alice, "private", "secret-plans").await;
    let (status, _) = send(
        &app,
        &alice,
        "POST",
        &format!("/api/v1/channels/{secret}/members"),
        json!({ "user_id": bob.id }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let root = post(&app, &alice, secret, "launch codes are tangerine").await;
    let root_id = root["id"].as_i64().unwrap();
    let (status, _) = send(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{secret}/messages"),
        json!({ "body": "noted", "thread_root_id": root_id }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "a member writes");

    for path in [
        format!("/api/v1/channels/{secret}"),
        format!("/api/v1/channels/{secret}/messages"),
        format!("/api/v1/channels/{secret}/members"),
        format!("/api/v1/channels/{secret}/events?after=0"),
        format!("/api/v1/messages/{root_id}"),
        format!("/api/v1/messages/{root_id}/thread"),
        format!("/api/v1/messages/search?q=tangerine&channel_id={secret}"),
    ] {
        let (status, body) = get(&app, &eve.token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(
            !body.to_string().contains("tangerine") && !body.to_string().contains("secret-plans"),
            "{path} leaks: {body}"
        );
    }
    let (_, found) = get(&app, &eve.token, "/api/v1/messages/search?q=tangerine").await;
    assert_eq!(
        found["messages"],
        json!([]),
        "search skips what eve may not read"
    );
    let (_, listed) = get(&app, &eve.token, "/api/v1/channels").await;
    assert_eq!(listed["channels"], json!([]));
    for (method, path, body) in [
        (
            "POST",
            format!("/api/v1/channels/{secret}/messages"),
            json!({ "body": "hi" }),
        ),
        (
            "POST",
            format!("/api/v1/channels/{secret}/members"),
            json!({}),
        ),
        (
            "PATCH",
            format!("/api/v1/channels/{secret}"),
            json!({ "topic": "mine" }),
        ),
        (
            "PATCH",
            format!("/api/v1/messages/{root_id}"),
            json!({ "body": "x" }),
        ),
        (
            "PUT",
            format!("/api/v1/channels/{secret}/read"),
            json!({ "seq": 1 }),
        ),
    ] {
        let (status, answer) = send(&app, &eve, method, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    for path in [
        format!("/api/v1/messages/{root_id}"),
        format!("/api/v1/messages/{root_id}/reactions/%F0%9F%91%8D"),
        format!("/api/v1/channels/{secret}/members/{}", bob.id),
    ] {
        assert_eq!(
            delete(&app, &eve, &path).await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // Bob sees it all, and once he leaves, nothing.
    let (status, thread) = get(
        &app,
        &bob.token,
        &format!("/api/v1/messages/{root_id}/thread"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(thread["root"]["reply_count"], 1);
    assert_eq!(thread["replies"][0]["body"], "noted");
    assert_eq!(
        delete(
            &app,
            &bob,
            &format!("/api/v1/channels/{secret}/members/{}", bob.id)
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (status, _) = get(
        &app,
        &bob.token,
        &format!("/api/v1/channels/{secret}/messages"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "gone with the membership");
}

#[tokio::test]
async fn public_channels_are_read_by_all_and_written_by_members() {
    let app = app().await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let town = channel(&app, &alice, "public", "Town-Square").await;
    post(&app, &alice, town, "welcome").await;

    let (status, page) = get(
        &app,
        &bob.token,
        &format!("/api/v1/channels/{town}/messages"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bodies(&page), ["welcome"]);
    let (_, listed) = get(&app, &bob.token, "/api/v1/channels").await;
    assert_eq!(listed["channels"][0]["name"], "town-square");
    assert_eq!(
        listed["channels"][0]["membership"],
        Value::Null,
        "not joined yet"
    );
    let (_, joined) = get(&app, &bob.token, "/api/v1/channels?joined=true").await;
    assert_eq!(joined["channels"], json!([]));

    let (status, refused) = send(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{town}/messages"),
        json!({ "body": "hello?" }),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_a_member"))
    );

    let path = format!("/api/v1/channels/{town}/members");
    let (status, member) = send(&app, &bob, "POST", &path, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(
        (member["user_id"].as_i64(), member["role"].as_str()),
        (Some(bob.id), Some("member"))
    );
    let (status, _) = send(&app, &bob, "POST", &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "joining twice is one membership");
    post(&app, &bob, town, "hello!").await;

    // Only the owner (or an admin) renames it or removes others.
    let (status, _) = send(
        &app,
        &bob,
        "PATCH",
        &format!("/api/v1/channels/{town}"),
        json!({ "topic": "mine" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        delete(
            &app,
            &bob,
            &format!("/api/v1/channels/{town}/members/{}", alice.id)
        )
        .await,
        StatusCode::FORBIDDEN
    );
    let (status, renamed) = send(
        &app,
        &alice,
        "PATCH",
        &format!("/api/v1/channels/{town}"),
        json!({ "name": "plaza", "topic": "Everything" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        (renamed["name"].as_str(), renamed["topic"].as_str()),
        (Some("plaza"), Some("Everything"))
    );
    let (_, members) = get(&app, &alice.token, &path).await;
    let ids: Vec<i64> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [alice.id, bob.id]);
}

#[tokio::test]
async fn a_direct_channel_is_one_per_pair() {
    let app = app().await;
    let (alice, bob, eve) = (
        person(&app, "alice").await,
        person(&app, "bob").await,
        person(&app, "eve").await,
    );
    let (status, first) = send(
        &app,
        &alice,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "direct", "user_id": bob.id }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        first["direct_user_ids"],
        json!([alice.id.min(bob.id), alice.id.max(bob.id)])
    );
    let (status, again) = send(
        &app,
        &bob,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "direct", "user_id": alice.id }),
    )
    .await;
    assert_eq!(
        (status, again["id"].clone()),
        (StatusCode::OK, first["id"].clone())
    );
    let id = first["id"].as_i64().unwrap();
    post(&app, &bob, id, "psst").await;
    let (status, _) = get(&app, &eve.token, &format!("/api/v1/channels/{id}/messages")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = send(
        &app,
        &alice,
        "POST",
        &format!("/api/v1/channels/{id}/members"),
        json!({ "user_id": eve.id }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("direct_channel"))
    );
    let (status, body) = send(
        &app,
        &alice,
        "POST",
        "/api/v1/channels",
        json!({ "kind": "direct", "user_id": 999_999 }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("user_not_found"), Some("user_id"))
    );
}

#[tokio::test]
async fn history_pages_by_sequence_number_both_ways() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let general = channel(&app, &alice, "public", "general").await;
    let mut seqs = Vec::new();
    for n in 1..=7 {
        seqs.push(
            post(&app, &alice, general, &format!("m{n}")).await["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    assert!(
        seqs.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "{seqs:?}"
    );
    let base = format!("/api/v1/channels/{general}/messages");

    let (_, latest) = get(&app, &alice.token, &format!("{base}?limit=3")).await;
    assert_eq!(
        (bodies(&latest), latest["has_more"].as_bool()),
        (vec!["m5", "m6", "m7"], Some(true))
    );
    let (_, older) = get(
        &app,
        &alice.token,
        &format!("{base}?limit=3&before={}", seqs[4]),
    )
    .await;
    assert_eq!(bodies(&older), ["m2", "m3", "m4"]);
    let (_, oldest) = get(
        &app,
        &alice.token,
        &format!("{base}?limit=3&before={}", seqs[1]),
    )
    .await;
    assert_eq!(
        (bodies(&oldest), oldest["has_more"].as_bool()),
        (vec!["m1"], Some(false))
    );
    let (_, newer) = get(
        &app,
        &alice.token,
        &format!("{base}?limit=4&after={}", seqs[2]),
    )
    .await;
    assert_eq!(
        (bodies(&newer), newer["has_more"].as_bool()),
        (vec!["m4", "m5", "m6", "m7"], Some(false))
    );

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("before=3&after=1", "after"),
    ] {
        let (status, problem) = get(&app, &alice.token, &format!("{base}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }

    // The event log holds every change, numbered without gaps, for a client catching up.
    let (_, events) = get(
        &app,
        &alice.token,
        &format!("/api/v1/channels/{general}/events?after=0"),
    )
    .await;
    let events = events["events"].as_array().unwrap();
    let numbers: Vec<i64> = events
        .iter()
        .map(|event| event["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
    assert_eq!(events[0]["kind"], "channel.created");
    assert_eq!(events[7]["kind"], "message.created");
    assert_eq!(events[7]["data"]["body"], "m7");
    assert_eq!(events[7]["event_id"], format!("{general}-8"));
}

#[tokio::test]
async fn edits_deletes_and_reactions_follow_who_may_do_them() {
    let app = app().await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let general = channel(&app, &alice, "public", "general").await;
    send(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{general}/members"),
        json!({}),
    )
    .await;
    let message = post(&app, &bob, general, "helo").await;
    let id = message["id"].as_i64().unwrap();
    let path = format!("/api/v1/messages/{id}");

    let (status, _) = send(&app, &alice, "PATCH", &path, json!({ "body": "hijacked" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the author edits");
    let (status, edited) = send(&app, &bob, "PATCH", &path, json!({ "body": "hello" })).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["body"], "hello");
    assert!(edited["edited_at"].is_string());

    let thumbs = format!("{path}/reactions/%F0%9F%91%8D");
    for _ in 0..2 {
        assert_eq!(
            app.request("PUT", &thumbs)
                .bearer(&alice.token)
                .send()
                .await
                .0,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        app.request("PUT", &format!("{path}/reactions/tada"))
            .bearer(&bob.token)
            .send()
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, read) = get(&app, &bob.token, &path).await;
    assert_eq!(
        read["reactions"],
        json!([
            { "emoji": "👍", "count": 1, "user_ids": [alice.id] },
            { "emoji": "tada", "count": 1, "user_ids": [bob.id] },
        ])
    );
    assert_eq!(delete(&app, &alice, &thumbs).await, StatusCode::NO_CONTENT);
    assert_eq!(delete(&app, &alice, &thumbs).await, StatusCode::NO_CONTENT);
    // History asks for the reactions of the messages that have some; what each has follows
    // every add and removal (the same one twice counts once).
    let (_, page) = get(
        &app,
        &bob.token,
        &format!("/api/v1/channels/{general}/messages"),
    )
    .await;
    assert_eq!(
        page["messages"][0]["reactions"],
        json!([{ "emoji": "tada", "count": 1, "user_ids": [bob.id] }])
    );
    let (status, bad) = app
        .request("PUT", &format!("{path}/reactions/a%20b"))
        .bearer(&bob.token)
        .send()
        .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_emoji"))
    );

    // The channel's owner may delete others' messages; the tombstone keeps its place.
    assert_eq!(delete(&app, &alice, &path).await, StatusCode::NO_CONTENT);
    assert_eq!(
        delete(&app, &alice, &path).await,
        StatusCode::NO_CONTENT,
        "twice is once"
    );
    let (_, page) = get(
        &app,
        &bob.token,
        &format!("/api/v1/channels/{general}/messages"),
    )
    .await;
    let tombstone = &page["messages"][0];
    assert_eq!(
        (tombstone["deleted"].as_bool(), tombstone["body"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(tombstone["reactions"], json!([]));
    let (status, body) = send(&app, &bob, "PATCH", &path, json!({ "body": "back" })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("message_deleted"))
    );
    let (_, found) = get(&app, &bob.token, "/api/v1/messages/search?q=hello").await;
    assert_eq!(
        found["messages"],
        json!([]),
        "a deleted message is not found"
    );

    // A member who does not moderate deletes only their own.
    let mine = post(&app, &alice, general, "alice's").await;
    assert_eq!(
        delete(&app, &bob, &format!("/api/v1/messages/{}", mine["id"])).await,
        StatusCode::FORBIDDEN
    );

    let (_, events) = get(
        &app,
        &bob.token,
        &format!("/api/v1/channels/{general}/events?after=2"),
    )
    .await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "message.created",
            "message.updated",
            "reaction.added",
            "reaction.added",
            "reaction.removed",
            "message.deleted",
            "message.created"
        ]
    );
}

#[tokio::test]
async fn threads_are_one_level_and_replies_count_on_their_root() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let general = channel(&app, &alice, "public", "general").await;
    let root = post(&app, &alice, general, "question").await;
    let path = format!("/api/v1/channels/{general}/messages");
    let (_, first) = send(
        &app,
        &alice,
        "POST",
        &path,
        json!({ "body": "answer", "thread_root_id": root["id"] }),
    )
    .await;
    // A reply to a reply joins the root's thread.
    let (status, second) = send(
        &app,
        &alice,
        "POST",
        &path,
        json!({ "body": "follow-up", "thread_root_id": first["id"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["thread_root_id"], root["id"]);
    let (_, thread) = get(
        &app,
        &alice.token,
        &format!("/api/v1/messages/{}/thread", second["id"]),
    )
    .await;
    assert_eq!(thread["root"]["body"], "question");
    assert_eq!(thread["root"]["reply_count"], 2);
    let replies: Vec<&str> = thread["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(replies, ["answer", "follow-up"]);

    let (_, roots) = get(&app, &alice.token, &path).await;
    assert_eq!(bodies(&roots), ["question"], "replies stay in their thread");
    let (_, all) = get(&app, &alice.token, &format!("{path}?replies=true")).await;
    assert_eq!(bodies(&all), ["question", "answer", "follow-up"]);

    let other = channel(&app, &alice, "public", "other").await;
    let (status, body) = send(
        &app,
        &alice,
        "POST",
        &format!("/api/v1/channels/{other}/messages"),
        json!({ "body": "x", "thread_root_id": root["id"] }),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("thread_root_id"))
    );
}

#[tokio::test]
async fn unread_counts_follow_read_markers() {
    let app = app().await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let general = channel(&app, &alice, "public", "general").await;
    post(&app, &alice, general, "before bob came").await;
    send(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{general}/members"),
        json!({}),
    )
    .await;
    let mut last = 0;
    for n in 0..3 {
        last = post(&app, &alice, general, &format!("news {n}")).await["seq"]
            .as_i64()
            .unwrap();
    }
    let unread = |app: &TestClient, who: &Person| {
        let (app, token) = (app.clone(), who.token.clone());
        async move {
            let (_, listed) = get(&app, &token, "/api/v1/channels?joined=true").await;
            listed["channels"][0]["membership"]["unread"]
                .as_i64()
                .unwrap()
        }
    };
    let mark = |who: &Person, seq: i64| {
        let (app, token) = (TestClient::clone(&app), who.token.clone());
        async move {
            let (status, marker) = app
                .request("PUT", &format!("/api/v1/channels/{general}/read"))
                .bearer(&token)
                .json(&json!({ "seq": seq }))
                .send()
                .await;
            assert_eq!(status, StatusCode::OK, "{marker}");
            marker["unread"].as_i64().unwrap()
        }
    };
    assert_eq!(
        unread(&app, &bob).await,
        3,
        "others' messages since he joined"
    );
    assert_eq!(unread(&app, &alice).await, 0);
    assert_eq!(mark(&bob, last - 1).await, 1);
    assert_eq!(mark(&bob, 1).await, 1, "a marker never moves back");
    post(&app, &bob, general, "bob's own").await;
    assert_eq!(
        unread(&app, &bob).await,
        0,
        "posting marks one's channel read"
    );
    assert_eq!(unread(&app, &alice).await, 1, "bob's message");
    assert_eq!(mark(&alice, 1_000_000).await, 0, "up to the last event");
}

#[tokio::test]
async fn search_finds_every_word_and_prefixes_newest_first() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let general = channel(&app, &alice, "public", "general").await;
    let random = channel(&app, &alice, "public", "random").await;
    post(&app, &alice, general, "Deploying the release on Friday").await;
    post(&app, &alice, random, "the RELEASE notes are ready").await;
    post(
        &app,
        &alice,
        general,
        "Grüße aus München: release party friday!",
    )
    .await;
    assert_eq!(found(&app, &alice.token, "q=release").await.len(), 3);
    assert_eq!(
        found(&app, &alice.token, "q=release%20friday").await,
        [
            "Grüße aus München: release party friday!",
            "Deploying the release on Friday"
        ]
    );
    assert_eq!(
        found(&app, &alice.token, "q=deploy*").await,
        ["Deploying the release on Friday"]
    );
    assert_eq!(
        found(&app, &alice.token, "q=m%C3%BCnchen").await.len(),
        1,
        "words in any script"
    );
    assert_eq!(
        found(
            &app,
            &alice.token,
            &format!("q=release&channel_id={random}")
        )
        .await,
        ["the RELEASE notes are ready"]
    );
    assert!(found(&app, &alice.token, "q=nothing").await.is_empty());

    let (_, first) = get(
        &app,
        &alice.token,
        "/api/v1/messages/search?q=release&limit=2",
    )
    .await;
    let before = first["next_before"].as_i64().expect("a next page");
    let (_, second) = get(
        &app,
        &alice.token,
        &format!("/api/v1/messages/search?q=release&limit=2&before={before}"),
    )
    .await;
    assert_eq!(bodies(&second), ["Deploying the release on Friday"]);
    assert_eq!(second["next_before"], Value::Null);

    let (status, problem) = get(&app, &alice.token, "/api/v1/messages/search?q=%20").await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("q"))
    );
}

#[tokio::test]
async fn search_reads_past_more_hidden_matches_than_one_batch() {
    // Search reads its first word's matches a hundred at a time and keeps the ones the caller
    // may read: the readable ones behind 150 newer hidden ones are still found, in order,
    // and a second word narrows across batches.
    let app = app_with(ChannelsConfig {
        message_burst: 1000,
        ..ChannelsConfig::default()
    })
    .await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let general = channel(&app, &alice, "public", "general").await;
    let secret = channel(&app, &alice, "private", "secret").await;
    for n in 0..3 {
        post(&app, &alice, general, &format!("needle {n} in the open")).await;
    }
    for n in 0..150 {
        post(&app, &alice, secret, &format!("needle {n} hidden")).await;
    }
    assert_eq!(
        found(&app, &bob.token, "q=needle").await,
        [
            "needle 2 in the open",
            "needle 1 in the open",
            "needle 0 in the open"
        ]
    );
    assert_eq!(
        found(&app, &bob.token, "q=needle%20open&limit=1").await,
        ["needle 2 in the open"]
    );
    assert_eq!(
        found(&app, &bob.token, "q=hidden").await,
        Vec::<String>::new()
    );
    let (_, page) = get(
        &app,
        &alice.token,
        "/api/v1/messages/search?q=needle&limit=200",
    )
    .await;
    assert_eq!(bodies(&page).len(), 153, "alice reads both channels");
}

#[tokio::test]
async fn a_retried_send_with_its_idempotency_key_posts_once() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let general = channel(&app, &alice, "public", "general").await;
    let path = format!("/api/v1/channels/{general}/messages");
    let attempt = |body: &str| {
        app.request("POST", &path)
            .bearer(&alice.token)
            .header("idempotency-key", "send-42")
            .json(&json!({ "body": body }))
    };
    let first = attempt("only once").send_raw().await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let retry = attempt("only once").send_raw().await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let (status, problem) = attempt("something else").send().await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );

    // Eight copies at once: one message.
    let sends = (0..8).map(|_| {
        let (client, path, token) = (TestClient::clone(&app), path.clone(), alice.token.clone());
        tokio::spawn(async move {
            client
                .request("POST", &path)
                .bearer(&token)
                .header("idempotency-key", "burst")
                .json(&json!({ "body": "burst" }))
                .send()
                .await
        })
    });
    let mut ids = Vec::new();
    for send in sends.collect::<Vec<_>>() {
        let (status, message) = send.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{message}");
        ids.push(message["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, page) = get(&app, &alice.token, &path).await;
    assert_eq!(bodies(&page), ["only once", "burst"]);

    let (status, problem) = app
        .request("POST", &path)
        .bearer(&alice.token)
        .header("idempotency-key", "")
        .json(&json!({ "body": "x" }))
        .send()
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Idempotency-Key"))
    );
}

#[tokio::test]
async fn concurrent_senders_get_distinct_gapless_sequence_numbers_and_the_bus_hears_each() {
    let app = app().await;
    let mut people = Vec::new();
    for name in ["ann", "ben", "cat", "dan"] {
        people.push(person(&app, name).await);
    }
    let general = channel(&app, &people[0], "public", "general").await;
    for who in &people[1..] {
        send(
            &app,
            who,
            "POST",
            &format!("/api/v1/channels/{general}/members"),
            json!({}),
        )
        .await;
    }
    let mut tasks = Vec::new();
    for who in &people {
        for n in 0..10 {
            let (client, token) = (TestClient::clone(&app), who.token.clone());
            tasks.push(tokio::spawn(async move {
                client
                    .request("POST", &format!("/api/v1/channels/{general}/messages"))
                    .bearer(&token)
                    .json(&json!({ "body": format!("{n}") }))
                    .send()
                    .await
            }));
        }
    }
    let mut seqs = Vec::new();
    for task in tasks {
        let (status, message) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{message}");
        seqs.push(message["seq"].as_i64().unwrap());
    }
    seqs.sort_unstable();
    // 1 created the channel, 2..=4 the joins.
    assert_eq!(seqs, (5..=44).collect::<Vec<_>>());

    let watcher = app.runtime.plugin::<Watcher>().unwrap();
    let heard: Vec<i64> = {
        let seen = watcher.seen.lock().unwrap();
        let mut heard: Vec<i64> = seen
            .iter()
            .filter(|(id, _, _)| *id == general)
            .map(|(_, seq, _)| *seq)
            .collect();
        heard.sort_unstable();
        heard
    };
    assert_eq!(heard, (1..=44).collect::<Vec<_>>(), "each event once");
}

#[tokio::test]
async fn another_plugin_may_rewrite_or_refuse_a_message() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let general = channel(&app, &alice, "public", "general").await;
    let message = post(&app, &alice, general, "oh darn").await;
    assert_eq!(message["body"], "oh d**n");
    let (status, problem) = send(
        &app,
        &alice,
        "POST",
        &format!("/api/v1/channels/{general}/messages"),
        json!({ "body": "the forbidden-word" }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["rejected_by"], "channel_watcher");
    let (_, page) = get(
        &app,
        &alice.token,
        &format!("/api/v1/channels/{general}/messages"),
    )
    .await;
    assert_eq!(bodies(&page), ["oh d**n"], "the refused one was not posted");
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_the_field() {
    let app = app().await;
    let alice = person(&app, "alice").await;
    let general = channel(&app, &alice, "public", "general").await;
    let messages = format!("/api/v1/channels/{general}/messages");
    let cases = [
        (
            "POST",
            "/api/v1/channels".to_string(),
            json!({ "kind": "public", "name": "has space" }),
            "name",
            "invalid_channel_name",
        ),
        (
            "POST",
            "/api/v1/channels".to_string(),
            json!({ "kind": "public", "name": "General" }),
            "name",
            "name_taken",
        ),
        (
            "POST",
            "/api/v1/channels".to_string(),
            json!({ "kind": "public" }),
            "name",
            "invalid_field",
        ),
        (
            "POST",
            "/api/v1/channels".to_string(),
            json!({ "kind": "direct" }),
            "user_id",
            "invalid_field",
        ),
        (
            "POST",
            messages.clone(),
            json!({ "body": "   " }),
            "body",
            "empty_message",
        ),
        (
            "POST",
            messages.clone(),
            json!({ "body": "x".repeat(4001) }),
            "body",
            "message_too_long",
        ),
        (
            "POST",
            messages.clone(),
            json!({ "body": "a\u{0}b" }),
            "body",
            "invalid_field",
        ),
        (
            "POST",
            messages.clone(),
            json!({ "body": "x", "thread_root_id": 999_999 }),
            "thread_root_id",
            "message_not_found",
        ),
        (
            "PUT",
            format!("/api/v1/channels/{general}/read"),
            json!({ "seq": -1 }),
            "seq",
            "invalid_field",
        ),
    ];
    for (method, path, body, field, code) in cases {
        let (status, problem) = send(&app, &alice, method, &path, body.clone()).await;
        assert!(status.is_client_error(), "{method} {path} {body}: {status}");
        assert_eq!(
            (problem["field"].as_str(), problem["code"].as_str()),
            (Some(field), Some(code)),
            "{body}: {problem}"
        );
        assert!(problem["detail"].is_string());
    }
    let (status, problem) = get(&app, &alice.token, "/api/v1/channels/999999").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("channel_not_found"))
    );
    let (status, _) = app.get("/api/v1/channels").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_behind_the_access_token() {
    let app = app().await;
    let (_, document) = app.get("/openapi.json").await;
    for (path, method) in [
        ("/api/v1/channels", "post"),
        ("/api/v1/channels", "get"),
        ("/api/v1/channels/{id}", "get"),
        ("/api/v1/channels/{id}", "patch"),
        ("/api/v1/channels/{id}/members", "post"),
        ("/api/v1/channels/{id}/members/{user_id}", "delete"),
        ("/api/v1/channels/{id}/messages", "post"),
        ("/api/v1/channels/{id}/messages", "get"),
        ("/api/v1/channels/{id}/read", "put"),
        ("/api/v1/channels/{id}/events", "get"),
        ("/api/v1/messages/{id}", "get"),
        ("/api/v1/messages/{id}", "patch"),
        ("/api/v1/messages/{id}", "delete"),
        ("/api/v1/messages/{id}/thread", "get"),
        ("/api/v1/messages/{id}/reactions/{emoji}", "put"),
        ("/api/v1/messages/{id}/reactions/{emoji}", "delete"),
        ("/api/v1/messages/search", "get"),
    ] {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        assert_eq!(
            operation["security"],
            json!([{ "accessToken": [] }]),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn posting_faster_than_allowed_is_429_with_retry_after_and_retries_are_free() {
    let app = app_with(ChannelsConfig {
        messages_per_second: 1,
        message_burst: 2,
        ..ChannelsConfig::default()
    })
    .await;
    let (alice, bob) = (person(&app, "alice").await, person(&app, "bob").await);
    let general = channel(&app, &alice, "public", "general").await;
    send(
        &app,
        &bob,
        "POST",
        &format!("/api/v1/channels/{general}/members"),
        json!({}),
    )
    .await;
    let path = format!("/api/v1/channels/{general}/messages");
    let keyed = |key: &str| {
        app.request("POST", &path)
            .bearer(&alice.token)
            .header("idempotency-key", key)
            .json(&json!({ "body": key }))
    };
    assert_eq!(keyed("one").send().await.0, StatusCode::CREATED);
    assert_eq!(keyed("two").send().await.0, StatusCode::CREATED);
    let refused = keyed("three").send_raw().await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    // A retry of a post that went through is answered, not counted; others are not held back.
    assert_eq!(keyed("two").send().await.0, StatusCode::CREATED);
    post(&app, &bob, general, "bob is not limited by alice").await;
    let (_, page) = get(&app, &bob.token, &path).await;
    assert_eq!(bodies(&page), ["one", "two", "bob is not limited by alice"]);
}
