//! Nothing acknowledged is lost: not to `kill -9`, not to a crashing room. And the schema
//! migrates up, down and up again on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Client, Node, NodeData};
use peerlink::storage::connection::{
    establish, revert_all, run_migrations, DatabaseUrl, SqliteSync,
};
use serde_json::json;

on_both_backends!(
    acknowledged_messages_survive_kill_9,
    a_crashed_room_is_restarted_with_its_members_and_order,
    failed_commits_are_retried_and_the_order_stays_gapless,
    a_crashed_session_takes_nothing_else_down,
    idle_rooms_and_users_leave_memory_and_come_back_intact,
    migrations_go_up_down_and_up,
);

/// The value of a gauge in `/metrics`.
async fn gauge(node: &Node, name: &str) -> i64 {
    let (_, metrics) = node.get("/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// Polls a gauge until it reads `want` (the node passivates on its own clock).
async fn gauge_reaches(node: &Node, name: &str, want: i64) {
    for _ in 0..200 {
        if gauge(node, name).await == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "{name} never reached {want} (it is {})",
        gauge(node, name).await
    );
}

async fn acknowledged_messages_survive_kill_9(backend: Backend) {
    const SENT: usize = 40;
    let node = Node::start_with(NodeData::fresh(backend), &[("PEERLINK_RATE_BURST", "100")]).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("vault", None).await;
    for i in 0..SENT {
        alice.send(json!({"type": "say", "id": format!("m{i}"), "room": "vault", "text": format!("entry {i}")})).await;
    }
    let mut acknowledged = Vec::new();
    for i in 0..SENT {
        let ack = alice.reply_to(&format!("m{i}")).await;
        assert_eq!(ack["type"], "message", "{ack}");
        acknowledged.push((
            ack["seq"].as_u64().expect("seq"),
            ack["text"].as_str().expect("text").to_owned(),
        ));
    }
    let token = alice.token.clone();
    // Kill the node the moment the last acknowledgement is in.
    let node = node.restart_after_kill9().await;

    let mut alice = Client::returning(&node, &token).await;
    let joined = alice.join("vault", Some(0)).await;
    assert_eq!(joined["last_seq"], SENT as u64);
    let history = alice
        .request(json!({"type": "history", "room": "vault", "limit": 200}))
        .await;
    let stored: Vec<(u64, String)> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().expect("seq"),
                m["text"].as_str().expect("text").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        stored, acknowledged,
        "every acknowledged message is in history after kill -9"
    );
    // The room goes on from where it was.
    assert_eq!(
        alice.say("vault", "after the crash").await["seq"],
        SENT as u64 + 1
    );
}

async fn a_crashed_room_is_restarted_with_its_members_and_order(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    alice.join("fragile", None).await;
    bob.join("fragile", None).await;
    alice.join("steady", None).await;
    bob.join("steady", None).await;
    for i in 1..=3 {
        alice.say("fragile", &format!("before {i}")).await;
        bob.next_message("fragile").await;
    }
    alice
        .send(json!({"type": "debug_panic", "target": "room", "room": "fragile"}))
        .await;

    // Another room is untouched.
    alice.say("steady", "unaffected").await;
    assert_eq!(bob.next_message("steady").await["text"], "unaffected");

    // The restarted room still has both members and continues the seq from the store.
    let ack = bob.say("fragile", "after").await;
    assert_eq!(ack["seq"], 4, "{ack}");
    let heard = alice.next_message("fragile").await;
    assert_eq!(
        (heard["seq"].clone(), heard["text"].clone()),
        (json!(4), json!("after"))
    );
    let (status, metrics) = node.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("peerlink_room_restarts_total 1"),
        "{metrics}"
    );
}

async fn idle_rooms_and_users_leave_memory_and_come_back_intact(backend: Backend) {
    let settings = [("PEERLINK_PASSIVATE_AFTER_SECS", "1")];
    let node = Node::start_with(NodeData::fresh(backend), &settings).await;
    let mut bob = Client::new_user(&node, "bob").await;
    bob.join("lobby", None).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let token = alice.token.clone();

    // Five rounds: alice joins "quiet", says one thing, leaves, and goes offline; each time
    // the room and alice's peer leave memory, and the next round brings them back.
    for round in 1..=5u64 {
        alice.join("quiet", Some(round - 1)).await;
        let ack = alice.say("quiet", &format!("note {round}")).await;
        assert_eq!(ack["seq"], round, "seq goes on across passivations: {ack}");
        alice.close().await;
        gauge_reaches(&node, "peerlink_rooms_live", 1).await; // lobby stays: bob is in it
        gauge_reaches(&node, "peerlink_peers_live", 1).await; // bob's
        alice = Client::returning(&node, &token).await;
    }

    // Everything said is there: replayed on join and in history.
    let joined = alice.join("quiet", Some(0)).await;
    assert_eq!(joined["last_seq"], 5, "{joined}");
    for seq in 1..=5u64 {
        let message = alice.next_message("quiet").await;
        assert_eq!(
            (message["seq"].as_u64(), message["text"].as_str()),
            (Some(seq), Some(format!("note {seq}").as_str()))
        );
    }
    let history = alice
        .request(json!({"type": "history", "room": "quiet", "before": 6, "limit": 10}))
        .await;
    assert_eq!(
        history["messages"].as_array().map(Vec::len),
        Some(5),
        "{history}"
    );

    // A direct message reaches a user whose peer was passivated, once they are back.
    alice.close().await;
    gauge_reaches(&node, "peerlink_peers_live", 1).await;
    let mut alice = Client::returning(&node, &token).await;
    let reply = bob
        .request(json!({"type": "say", "to": alice.user_id, "text": "welcome back"}))
        .await;
    assert_eq!(reply["type"], "message", "{reply}");
    let dm = alice.next_of("message").await;
    assert_eq!(dm["text"], "welcome back");
    // A passivation is not a crash.
    let (_, metrics) = node.get("/metrics").await;
    assert!(
        metrics.contains("peerlink_room_restarts_total 0"),
        "{metrics}"
    );
}

async fn failed_commits_are_retried_and_the_order_stays_gapless(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    alice.join("shaky", None).await;
    bob.join("shaky", None).await;
    let fail = |count: u32| json!({"type": "debug_panic", "target": "commits", "room": "shaky", "count": count});

    // The store fails twice, then takes the message: acknowledged late, not refused.
    alice.send(fail(2)).await;
    let ack = alice.say("shaky", "kept").await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_u64()),
        (Some("message"), Some(1)),
        "{ack}"
    );
    assert_eq!(alice.say("shaky", "next").await["seq"], 2);

    // A store that stays down: after the retries the sender is told to send again, the
    // room restarts from what the store holds, and the next message takes the next seq.
    alice.send(fail(100)).await;
    let refused = alice
        .request(json!({"type": "say", "room": "shaky", "text": "lost"}))
        .await;
    assert_eq!(refused["code"], "unavailable", "{refused}");
    let after = alice.say("shaky", "after").await;
    assert_eq!(after["seq"], 3, "no seq was burnt: {after}");
    let seen: Vec<(u64, String)> = {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let m = bob.next_message("shaky").await;
            seen.push((
                m["seq"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_owned(),
            ));
        }
        seen
    };
    assert_eq!(
        seen,
        vec![(1, "kept".into()), (2, "next".into()), (3, "after".into())],
        "bob sees every stored message once, gapless"
    );
}

async fn a_crashed_session_takes_nothing_else_down(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    alice.join("lobby", None).await;
    bob.join("lobby", None).await;
    alice
        .send(json!({"type": "debug_panic", "target": "session"}))
        .await;
    assert!(
        alice.closed().await.is_some(),
        "the crashed session's connection is closed"
    );
    let presence = bob.next_of("presence").await;
    assert_eq!(
        (
            presence["status"].as_str(),
            presence["user"]["name"].as_str()
        ),
        (Some("offline"), Some("alice"))
    );
    assert_eq!(bob.say("lobby", "still fine").await["seq"], 1);
    let mut carol = Client::new_user(&node, "carol").await;
    carol.join("lobby", None).await;
    assert_eq!(carol.next_message("lobby").await["text"], "still fine");
}

async fn migrations_go_up_down_and_up(backend: Backend) {
    let data = NodeData::fresh(backend);
    tokio::task::spawn_blocking(move || {
        let url = DatabaseUrl::parse(&data.database_url).expect("url");
        let mut conn = establish(&url, SqliteSync::Normal).expect("connect");
        let up = run_migrations(&mut conn).expect("up");
        assert!(!up.is_empty(), "a fresh database gets every migration");
        assert!(
            run_migrations(&mut conn).expect("up again").is_empty(),
            "nothing is pending after up"
        );
        let down = revert_all(&mut conn).expect("down");
        assert_eq!(down.len(), up.len(), "every migration reverts");
        assert_eq!(
            run_migrations(&mut conn).expect("up after down"),
            up,
            "up again after down"
        );
    })
    .await
    .expect("migration task");
    // And a node runs on the re-migrated schema.
}
