//! The admin API: what the node runs, and kick, cancel and drain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{handshake_with_origin, Backend, Client, Node};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use uuid::Uuid;

on_both_backends!(
    every_admin_route_needs_the_token,
    sessions_are_listed_and_a_kick_closes_that_connection,
    transfers_are_listed_and_an_admin_can_cancel_one,
    a_drained_node_sends_clients_away_and_takes_no_new_ones,
);

async fn every_admin_route_needs_the_token(backend: Backend) {
    let node = Node::start(backend).await;
    for path in [
        "/api/admin/nodes",
        "/api/admin/sessions",
        "/api/admin/rooms",
        "/api/admin/transfers",
        "/api/admin/stats",
    ] {
        assert_eq!(node.get(path).await.0, 401, "{path}");
        assert_eq!(node.admin("GET", path).await.0, 200, "{path}");
    }
    let (status, nodes) = node.admin("GET", "/api/admin/nodes").await;
    assert_eq!(status, 200);
    assert_eq!(nodes["nodes"][0]["role"], "single");
    assert!(nodes["nodes"][0]["uptime_secs"].is_u64());
}

async fn sessions_are_listed_and_a_kick_closes_that_connection(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    alice.join("lobby", None).await;
    bob.join("lobby", None).await;
    let (_, listed) = node.admin("GET", "/api/admin/sessions").await;
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    let alices = sessions
        .iter()
        .find(|s| s["user"]["name"] == "alice")
        .expect("alice is listed");
    assert_eq!(alices["id"], alice.session.as_str());
    assert_eq!(alices["rooms"], json!(["lobby"]));
    let (_, rooms) = node.admin("GET", "/api/admin/rooms").await;
    assert_eq!(
        rooms["rooms"],
        json!([{"name": "lobby", "last_seq": 0, "sessions": 2}])
    );

    let (status, _) = node
        .admin(
            "POST",
            &format!("/api/admin/sessions/{}/kick", alice.session),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        alice.closed().await,
        Some(CloseCode::Library(4001)),
        "the kicked connection closes with 4001"
    );
    assert_eq!(bob.next_of("presence").await["status"], "offline");
    assert_eq!(bob.say("lobby", "still here").await["seq"], 1);
    let (status, _) = node
        .admin(
            "POST",
            &format!("/api/admin/sessions/{}/kick", Uuid::new_v4()),
        )
        .await;
    assert_eq!(status, 404);
}

async fn transfers_are_listed_and_an_admin_can_cancel_one(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    let offered = alice
        .request(json!({"type": "offer", "to": bob.user_id, "name": "big.bin", "size": 1_000_000}))
        .await;
    let id: Uuid = offered["transfer"].as_str().unwrap().parse().unwrap();
    bob.next_of("offer").await;
    bob.send(json!({"type": "accept", "transfer": id, "offset": 0}))
        .await;
    alice.next_of("accepted").await;
    let mut frame = id.as_bytes().to_vec();
    frame.extend_from_slice(&0u64.to_be_bytes());
    frame.extend_from_slice(&[7u8; 1000]);
    alice.send_binary(frame).await;
    bob.next_data().await;

    let (_, listed) = node.admin("GET", "/api/admin/transfers").await;
    let transfer = &listed["transfers"][0];
    assert_eq!(
        (
            transfer["id"].as_str(),
            transfer["state"].as_str(),
            transfer["sent"].as_u64()
        ),
        (Some(id.to_string().as_str()), Some("streaming"), Some(1000)),
        "{listed}"
    );
    assert_eq!(
        (
            transfer["from"]["name"].as_str(),
            transfer["to"][0]["name"].as_str(),
            transfer["size"].as_u64()
        ),
        (Some("alice"), Some("bob"), Some(1_000_000))
    );

    let (status, _) = node
        .admin("POST", &format!("/api/admin/transfers/{id}/cancel"))
        .await;
    assert_eq!(status, 204);
    for client in [&mut alice, &mut bob] {
        let cancelled = client.next_of("cancelled").await;
        assert_eq!(
            (cancelled["transfer"].as_str(), cancelled["reason"].as_str()),
            (
                Some(id.to_string().as_str()),
                Some("cancelled by an administrator")
            )
        );
    }
    let (status, _) = node
        .admin("POST", &format!("/api/admin/transfers/{id}/cancel"))
        .await;
    assert_eq!(status, 404, "a finished transfer cannot be cancelled again");
}

async fn a_drained_node_sends_clients_away_and_takes_no_new_ones(backend: Backend) {
    let node = Node::start(backend).await;
    let alice = Client::new_user(&node, "alice").await;
    let (_, nodes) = node.admin("GET", "/api/admin/nodes").await;
    let id = nodes["nodes"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        node.admin("POST", "/api/admin/nodes/not-this-one/drain")
            .await
            .0,
        404
    );
    let (status, drained) = node
        .admin("POST", &format!("/api/admin/nodes/{id}/drain"))
        .await;
    assert_eq!(status, 202, "{drained}");
    assert_eq!(
        alice.closed().await,
        Some(CloseCode::Restart),
        "clients are told to reconnect elsewhere (1012)"
    );
    assert_eq!(
        handshake_with_origin(&node, &format!("http://127.0.0.1:{}", node.port)).await,
        Err(503)
    );
    assert_eq!(node.get("/readyz").await.0, 503);
    assert_eq!(
        node.admin("GET", "/api/admin/nodes").await.1["nodes"][0]["draining"],
        true
    );
}
