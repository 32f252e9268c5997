//! The HTTP surface: health, readiness, metrics, identities, rooms, errors, and start-up
//! refusal of bad settings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Client, Node};
use serde_json::{json, Value};
use std::process::Command;

on_both_backends!(
    health_readiness_and_metrics,
    identities_over_http_work_on_the_websocket,
    rooms_are_listed,
    admin_needs_the_token
);

async fn health_readiness_and_metrics(backend: Backend) {
    let node = Node::start(backend).await;
    assert_eq!(node.get("/healthz").await.0, 200);
    let (status, body) = node.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("lobby", None).await;
    alice.say("lobby", "counted").await;
    alice.send(json!({"type": "nope"})).await;
    alice.expect_error("bad_request").await;
    let (status, metrics) = node.get("/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "peerlink_connections 1",
        "peerlink_frames_in_total{type=\"say\"} 1",
        "peerlink_frames_in_total{type=\"hello\"} 1",
        "peerlink_frames_out_total{type=\"welcome\"} 1",
        "peerlink_errors_total{code=\"bad_request\"} 1",
        "peerlink_db_seconds_bucket{op=\"commit\"",
        "peerlink_messages_stored_total 1",
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }
}

async fn identities_over_http_work_on_the_websocket(backend: Backend) {
    let node = Node::start(backend).await;
    let (status, body) = node
        .post_json("/api/sessions", json!({"name": "carol"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).expect("json");
    let token = created["token"].as_str().expect("token");
    let client = Client::returning(&node, token).await;
    assert_eq!(
        (client.name.as_str(), client.user_id.as_str()),
        ("carol", created["user"]["id"].as_str().expect("id"))
    );

    let (status, body) = node.post_json("/api/sessions", json!({"name": ""})).await;
    assert_eq!(status, 400);
    let error: Value = serde_json::from_str(&body).expect("errors are JSON");
    assert_eq!(error["error"], "bad_request");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    let (status, body) = node.post_json("/api/sessions", json!({"nom": "x"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = node.get("/api/sessions").await;
    assert_eq!(status, 405, "a known path with the wrong method");
    let error: Value = serde_json::from_str(&body).expect("a wrong method gets a JSON error");
    assert_eq!(error["error"], "bad_request", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("POST")),
        "{error}"
    );
    let (status, body) = node.get("/ws").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("a plain GET on /ws gets a JSON error")
            ["error"],
        "bad_request"
    );
    let (status, body) = node.get("/no/such/page").await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["error"],
        "not_found"
    );
}

async fn rooms_are_listed(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("alpha", None).await;
    alice.join("beta", None).await;
    alice.say("beta", "one").await;
    alice.say("beta", "two").await;
    let (status, body) = node.get("/api/rooms").await;
    assert_eq!(status, 200);
    let rooms: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        rooms["rooms"],
        json!([{"name": "alpha", "last_seq": 0, "sessions": 1}, {"name": "beta", "last_seq": 2, "sessions": 1}])
    );
}

async fn admin_needs_the_token(backend: Backend) {
    let node = Node::start(backend).await;
    assert_eq!(node.get("/api/admin/stats").await.0, 401);
    let url = node.url("/api/admin/stats");
    let token = node.admin_token.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        let response = ureq::get(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("admin call");
        (response.status(), response.into_string().expect("body"))
    })
    .await
    .expect("task");
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).expect("json")["uptime_secs"].is_u64());
}

#[test]
fn a_bad_setting_stops_the_start_with_one_clear_line() {
    for (variable, value) in [
        ("PEERLINK_BIND", "not-an-address"),
        ("PEERLINK_DATABASE_URL", "mysql://127.0.0.1/x"),
        ("PEERLINK_REDIS_URL", "redis://127.0.0.1:6379"),
        ("PEERLINK_ALLOWED_ORIGINS", "ftp://example.com"),
        ("PEERLINK_RATE_PER_SEC", "-3"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_peerlink"))
            .arg("serve")
            .env(variable, value)
            .env(
                "PEERLINK_DATA_DIR",
                std::env::temp_dir().join("peerlink-never-used"),
            )
            .output()
            .expect("run peerlink");
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line for {variable}: {stderr}");
        assert!(lines[0].contains(variable), "{stderr}");
    }
}
