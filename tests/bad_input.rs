//! Bad input gets a clear error and never takes the connection (or anything else) down,
//! except where the protocol says so: oversized frames (1009) and foreign origins (403).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{handshake_with_origin, Backend, Client, Node, NodeData};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    frames_before_hello_are_unauthorized,
    malformed_frames_keep_the_connection,
    invalid_rooms_and_texts_are_refused,
    a_flood_is_rate_limited_with_a_retry_hint,
    new_names_from_one_address_are_limited,
    connections_from_one_address_are_limited,
    behind_a_trusted_proxy_each_client_has_its_own_limit,
    a_frame_over_the_limit_closes_with_1009,
    foreign_origins_are_refused,
    bad_tokens_are_refused,
);

async fn frames_before_hello_are_unauthorized(backend: Backend) {
    let node = Node::start(backend).await;
    let mut client = Client::connect(&node).await;
    client
        .send(json!({"type": "join", "id": "j1", "room": "lobby"}))
        .await;
    let error = client.expect_error("unauthorized").await;
    assert_eq!(error["re"], "j1");
    client
        .send(json!({"type": "say", "room": "lobby", "text": "hi"}))
        .await;
    client.expect_error("unauthorized").await;
    // The connection is still usable: hello now works.
    client.send(json!({"type": "hello", "name": "late"})).await;
    assert_eq!(client.next_of("welcome").await["user"]["name"], "late");
}

async fn malformed_frames_keep_the_connection(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.send_raw(Message::text("{this is not json")).await;
    alice.expect_error("bad_request").await;
    alice.send(json!({"type": "teleport", "id": "t1"})).await;
    let error = alice.expect_error("bad_request").await;
    assert_eq!(error["re"], "t1");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("teleport")),
        "{error}"
    );
    alice.send(json!({"no_type": true})).await;
    alice.expect_error("bad_request").await;
    alice
        .send(json!({"type": "join", "id": "j", "room": 42}))
        .await;
    assert_eq!(alice.expect_error("bad_request").await["re"], "j");
    alice.send_raw(Message::binary(vec![0u8; 10])).await;
    alice.expect_error("bad_request").await;
    alice.send_raw(Message::binary(vec![0u8; 40])).await;
    let error = alice.expect_error("not_found").await;
    assert_eq!(
        error["transfer"], "00000000-0000-0000-0000-000000000000",
        "data for no transfer: {error}"
    );
    alice
        .send(json!({"type": "hello", "id": "h2", "name": "again"}))
        .await;
    assert_eq!(alice.expect_error("conflict").await["re"], "h2");
    // Still connected and working.
    let pong = alice.request(json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong");
    alice.join("lobby", None).await;
    assert_eq!(alice.say("lobby", "still here").await["seq"], 1);
}

async fn invalid_rooms_and_texts_are_refused(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    for room in ["", "has space", "semi;colon", "ünïcode", &"x".repeat(65)] {
        let reply = alice.request(json!({"type": "join", "room": room})).await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some("bad_request")),
            "room {room:?}: {reply}"
        );
    }
    alice.join(&"x".repeat(64), None).await;
    let joined = alice.join("edge", Some(u64::MAX)).await;
    assert_eq!(
        joined["last_seq"], 0,
        "a since beyond the end replays nothing and breaks nothing"
    );
    let history = alice
        .request(json!({"type": "history", "room": "edge", "before": u64::MAX, "limit": 1000}))
        .await;
    assert_eq!(history["messages"], json!([]));
    alice.join("lobby", None).await;
    let long = "é".repeat(4001);
    let reply = alice
        .request(json!({"type": "say", "room": "lobby", "text": long}))
        .await;
    assert_eq!(reply["code"], "too_large", "{reply}");
    let exactly = "é".repeat(4000);
    assert_eq!(
        alice.say("lobby", &exactly).await["text"]
            .as_str()
            .map(|t| t.chars().count()),
        Some(4000)
    );
    let reply = alice
        .request(json!({"type": "say", "room": "lobby", "text": "  "}))
        .await;
    assert_eq!(reply["code"], "bad_request");
    let reply = alice
        .request(json!({"type": "say", "room": "elsewhere", "text": "hi"}))
        .await;
    assert_eq!(
        reply["code"], "forbidden",
        "saying in a room you did not join: {reply}"
    );
    let reply = alice
        .request(json!({"type": "leave", "room": "elsewhere"}))
        .await;
    assert_eq!(reply["code"], "not_found");
    let reply = alice
        .request(json!({"type": "history", "room": "lobby", "limit": 0}))
        .await;
    assert_eq!(reply["code"], "bad_request");
}

async fn a_flood_is_rate_limited_with_a_retry_hint(backend: Backend) {
    let settings = [("PEERLINK_RATE_PER_SEC", "1"), ("PEERLINK_RATE_BURST", "5")];
    let node = Node::start_with(NodeData::fresh(backend), &settings).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("lobby", None).await;
    for i in 0..20 {
        alice
            .send(json!({"type": "say", "id": format!("f{i}"), "room": "lobby", "text": "flood"}))
            .await;
    }
    let (mut acked, mut limited) = (Vec::new(), 0);
    for i in 0..20 {
        let reply = alice.reply_to(&format!("f{i}")).await;
        match reply["type"].as_str() {
            Some("message") => acked.push(reply["seq"].as_u64().expect("seq")),
            Some("error") => {
                assert_eq!(reply["code"], "rate_limited", "{reply}");
                let retry = reply["retry_after_ms"].as_u64().expect("retry_after_ms");
                assert!(retry > 0 && retry <= 1000, "{reply}");
                limited += 1;
            }
            _ => panic!("unexpected reply {reply}"),
        }
    }
    assert!(limited >= 10, "only {limited} of 20 frames were limited");
    assert_eq!(
        acked,
        (1..=acked.len() as u64).collect::<Vec<_>>(),
        "accepted messages keep a gapless order"
    );
    // The limit is per user: a second session of the same user shares the empty bucket.
    let mut phone = Client::returning(&node, &alice.token.clone()).await;
    let mut phone_limited = 0;
    for _ in 0..3 {
        if phone.request(json!({"type": "ping"})).await["code"] == "rate_limited" {
            phone_limited += 1;
        }
    }
    assert!(
        phone_limited >= 1,
        "another session of the same user had a fresh budget"
    );
}

async fn new_names_from_one_address_are_limited(backend: Backend) {
    let settings = [("PEERLINK_SIGNUPS_PER_MINUTE", "3")];
    let node = Node::start_with(NodeData::fresh(backend), &settings).await;
    let alice = Client::new_user(&node, "alice").await;
    Client::new_user(&node, "bob").await;
    let (status, _) = node
        .post_json("/api/sessions", json!({"name": "carol"}))
        .await;
    assert_eq!(status, 201, "the third name of the minute is still allowed");

    // The fourth name, over the WebSocket: refused with a hint, the connection stays open.
    let mut dave = Client::connect(&node).await;
    let reply = dave.request(json!({"type": "hello", "name": "dave"})).await;
    assert_eq!(reply["code"], "rate_limited", "{reply}");
    let retry = reply["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(
        retry > 0 && retry <= 20_000,
        "one name comes back every 20 s: {reply}"
    );
    assert!(
        reply["message"].as_str().unwrap().contains("new names"),
        "{reply}"
    );
    assert_eq!(
        dave.request(json!({"type": "hello", "name": "dave"})).await["code"],
        "rate_limited"
    );

    // And over HTTP: 429 with Retry-After.
    let url = node.url("/api/sessions");
    let (status, retry_after, body) = tokio::task::spawn_blocking(move || {
        match ureq::post(&url)
            .set("Content-Type", "application/json")
            .send_string(r#"{"name":"erin"}"#)
        {
            Err(ureq::Error::Status(status, response)) => (
                status,
                response.header("Retry-After").map(str::to_owned),
                response.into_string().unwrap(),
            ),
            other => panic!("expected an error status, got {other:?}"),
        }
    })
    .await
    .unwrap();
    assert_eq!(status, 429);
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "rate_limited");

    // Coming back with a token is not a new name: never limited.
    let again = Client::returning(&node, &alice.token).await;
    assert_eq!(again.user_id, alice.user_id);
}

async fn connections_from_one_address_are_limited(backend: Backend) {
    let settings = [("PEERLINK_CONNECTIONS_PER_ADDRESS", "2")];
    let node = Node::start_with(NodeData::fresh(backend), &settings).await;
    let origin = node.url("");
    let first = Client::new_user(&node, "alice").await;
    let _second = Client::connect(&node).await;
    assert_eq!(
        handshake_with_origin(&node, &origin).await,
        Err(429),
        "a third connection from 127.0.0.1 is refused"
    );
    // Closing one gives its place back (once the node has seen it close).
    first.close().await;
    let mut tries = 0;
    while handshake_with_origin(&node, &origin).await.is_err() {
        tries += 1;
        assert!(tries < 100, "the closed connection's place never came back");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `POST /api/sessions` as if through a proxy that says the client is `forwarded_for`.
async fn sign_up_via(node: &Node, forwarded_for: &str) -> u16 {
    let (url, forwarded_for) = (node.url("/api/sessions"), forwarded_for.to_owned());
    tokio::task::spawn_blocking(move || {
        match ureq::post(&url)
            .set("Content-Type", "application/json")
            .set("X-Forwarded-For", &forwarded_for)
            .send_string(r#"{"name":"someone"}"#)
        {
            Ok(response) => response.status(),
            Err(ureq::Error::Status(status, _)) => status,
            Err(e) => panic!("{e}"),
        }
    })
    .await
    .unwrap()
}

async fn behind_a_trusted_proxy_each_client_has_its_own_limit(backend: Backend) {
    // The test connects from 127.0.0.1, playing the proxy; the addresses in the header are
    // from the documentation range and are never contacted.
    let settings = [
        ("PEERLINK_SIGNUPS_PER_MINUTE", "1"),
        ("PEERLINK_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let node = Node::start_with(NodeData::fresh(backend), &settings).await;
    assert_eq!(sign_up_via(&node, "192.0.2.1").await, 201);
    assert_eq!(
        sign_up_via(&node, "192.0.2.1").await,
        429,
        "the same client again"
    );
    assert_eq!(
        sign_up_via(&node, "192.0.2.2").await,
        201,
        "another client behind the proxy"
    );
    // A client cannot escape its limit by writing its own entry in front.
    assert_eq!(sign_up_via(&node, "198.51.100.9, 192.0.2.2").await, 429);

    // Without trusted proxies the header is ignored: everyone here is 127.0.0.1.
    let node = Node::start_with(
        NodeData::fresh(backend),
        &[("PEERLINK_SIGNUPS_PER_MINUTE", "1")],
    )
    .await;
    assert_eq!(sign_up_via(&node, "192.0.2.1").await, 201);
    assert_eq!(sign_up_via(&node, "192.0.2.2").await, 429);
}

async fn a_frame_over_the_limit_closes_with_1009(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let huge = format!(
        r#"{{"type":"say","room":"lobby","text":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    alice.send_raw(Message::text(huge)).await;
    assert_eq!(alice.closed().await, Some(CloseCode::Size));
    // A binary frame over 24 bytes + chunk_size is refused the same way.
    let mut bob = Client::new_user(&node, "bob").await;
    bob.send_raw(Message::binary(vec![0u8; 24 + 256 * 1024 + 1]))
        .await;
    assert_eq!(bob.closed().await, Some(CloseCode::Size));
    // The node is fine.
    let mut carol = Client::new_user(&node, "carol").await;
    carol.join("lobby", None).await;
}

async fn foreign_origins_are_refused(backend: Backend) {
    let node = Node::start(backend).await;
    assert_eq!(
        handshake_with_origin(&node, "http://evil.example").await,
        Err(403)
    );
    assert_eq!(
        handshake_with_origin(&node, &format!("http://127.0.0.1:{}", node.port + 1)).await,
        Err(403)
    );
    assert_eq!(
        handshake_with_origin(&node, &format!("http://127.0.0.1:{}", node.port)).await,
        Ok(())
    );
}

async fn bad_tokens_are_refused(backend: Backend) {
    let node = Node::start(backend).await;
    for token in ["nonsense", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let mut client = Client::connect(&node).await;
        client
            .send(json!({"type": "hello", "id": "h", "token": token}))
            .await;
        assert_eq!(client.expect_error("unauthorized").await["re"], "h");
    }
    let mut client = Client::connect(&node).await;
    client
        .send(json!({"type": "hello", "name": "a", "token": "b"}))
        .await;
    client.expect_error("bad_request").await;
    client.send(json!({"type": "hello", "name": "\u{7}"})).await;
    client.expect_error("bad_request").await;
}
