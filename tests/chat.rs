//! Chat over the wire: rooms, ordering, history, presence and direct messages, against
//! the real binary on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Client, Node, NodeData};
use serde_json::{json, Value};
use std::collections::HashMap;

on_both_backends!(
    two_users_chat,
    concurrent_senders_see_one_gapless_order,
    history_and_since_after_reconnect,
    presence_joined_left_offline,
    direct_messages_reach_every_session_of_both_users,
    a_direct_message_waits_for_an_offline_user,
    join_without_since_replays_recent_messages,
);

async fn two_users_chat(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    assert_ne!(alice.user_id, bob.user_id);
    assert!(alice.token.len() >= 22, "a token carries at least 128 bits");

    let joined = alice.join("lobby", None).await;
    assert_eq!(joined["last_seq"], 0);
    assert_eq!(
        joined["members"],
        json!([{"id": alice.user_id, "name": "alice"}])
    );
    bob.join("lobby", None).await;

    let ack = alice.say("lobby", "hi bob").await;
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["from"]["name"], "alice");
    assert!(
        ack["at"].as_str().is_some_and(|at| at.ends_with('Z')),
        "{ack}"
    );
    let heard = bob.next_message("lobby").await;
    assert_eq!(
        (heard["seq"].clone(), heard["text"].clone()),
        (json!(1), json!("hi bob"))
    );
    assert!(
        heard.get("re").is_none(),
        "only the sender's copy carries re: {heard}"
    );

    let ack = bob.say("lobby", "hello alice").await;
    assert_eq!(ack["seq"], 2);
    let heard = alice.next_message("lobby").await;
    assert_eq!(
        (
            heard["seq"].clone(),
            heard["text"].clone(),
            heard["from"]["id"].clone()
        ),
        (json!(2), json!("hello alice"), json!(bob.user_id))
    );
}

/// Eight members send at once; every member sees the same gapless `seq` order, and each
/// sender's messages keep the order they were sent in.
async fn concurrent_senders_see_one_gapless_order(backend: Backend) {
    const SENDERS: usize = 8;
    const EACH: usize = 25;
    let node = Node::start(backend).await;
    let mut clients = Vec::new();
    for i in 0..SENDERS {
        let mut client = Client::new_user(&node, &format!("sender{i}")).await;
        client.join("race", None).await;
        clients.push(client);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            tokio::spawn(async move {
                for n in 0..EACH {
                    client.send(json!({"type": "say", "id": format!("{i}-{n}"), "room": "race", "text": format!("{i}:{n}")})).await;
                }
                let mut seen = Vec::new();
                while seen.len() < SENDERS * EACH {
                    let message = client.next_message("race").await;
                    seen.push((message["seq"].as_u64().expect("seq"), message["text"].as_str().expect("text").to_owned()));
                }
                seen
            })
        })
        .collect();
    let mut views = Vec::new();
    for task in tasks {
        views.push(task.await.expect("sender task"));
    }
    let expected_seqs: Vec<u64> = (1..=(SENDERS * EACH) as u64).collect();
    for view in &views {
        let seqs: Vec<u64> = view.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(
            seqs, expected_seqs,
            "a member saw a gap, a duplicate or a reordering"
        );
        assert_eq!(view, &views[0], "members disagree on the order");
    }
    let mut per_sender: HashMap<usize, Vec<usize>> = HashMap::new();
    for (_, text) in &views[0] {
        let (sender, n) = text.split_once(':').expect("sender:n");
        per_sender
            .entry(sender.parse().expect("sender"))
            .or_default()
            .push(n.parse().expect("n"));
    }
    for (sender, order) in per_sender {
        assert_eq!(
            order,
            (0..EACH).collect::<Vec<_>>(),
            "sender {sender}'s own order was not kept"
        );
    }
}

async fn history_and_since_after_reconnect(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    alice.join("den", None).await;
    bob.join("den", None).await;
    for i in 1..=5 {
        alice.say("den", &format!("a{i}")).await;
    }
    let (token, alice_id) = (alice.token.clone(), alice.user_id.clone());
    alice.close().await;
    for i in 6..=8 {
        bob.say("den", &format!("b{i}")).await;
    }

    let mut alice = Client::returning(&node, &token).await;
    assert_eq!(
        alice.user_id, alice_id,
        "the token brings back the same identity"
    );
    let joined = alice.join("den", Some(5)).await;
    assert_eq!(joined["last_seq"], 8);
    assert!(joined.get("truncated").is_none(), "{joined}");
    let mut missed = Vec::new();
    for _ in 6..=8 {
        missed.push(alice.next_message("den").await["text"].clone());
    }
    assert_eq!(missed, vec![json!("b6"), json!("b7"), json!("b8")]);

    let history = alice
        .request(json!({"type": "history", "room": "den", "before": 6, "limit": 3}))
        .await;
    assert_eq!(history["type"], "history");
    let texts: Vec<Value> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, vec![json!("a3"), json!("a4"), json!("a5")]);
    let seqs: Vec<Value> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(seqs, vec![json!(3), json!(4), json!(5)]);
}

async fn presence_joined_left_offline(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("hall", None).await;
    let mut bob = Client::new_user(&node, "bob").await;
    let joined = bob.join("hall", None).await;
    let names: Vec<&str> = joined["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, vec!["alice", "bob"]);

    let presence = alice.next_of("presence").await;
    assert_eq!(
        (
            presence["status"].as_str(),
            presence["user"]["name"].as_str(),
            presence["room"].as_str()
        ),
        (Some("joined"), Some("bob"), Some("hall"))
    );

    let left = bob.request(json!({"type": "leave", "room": "hall"})).await;
    assert_eq!(left["type"], "left");
    let presence = alice.next_of("presence").await;
    assert_eq!(
        (presence["status"].as_str(), presence["user"]["id"].as_str()),
        (Some("left"), Some(bob.user_id.as_str()))
    );

    bob.join("hall", None).await;
    assert_eq!(alice.next_of("presence").await["status"], "joined");
    bob.close().await;
    let presence = alice.next_of("presence").await;
    assert_eq!(
        (
            presence["status"].as_str(),
            presence["user"]["name"].as_str()
        ),
        (Some("offline"), Some("bob"))
    );
}

async fn direct_messages_reach_every_session_of_both_users(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut alice_phone = Client::returning(&node, &alice.token.clone()).await;
    let mut bob = Client::new_user(&node, "bob").await;
    let mut bob_phone = Client::returning(&node, &bob.token.clone()).await;
    assert_eq!(bob_phone.user_id, bob.user_id);

    let ack = alice
        .request(json!({"type": "say", "to": bob.user_id, "text": "psst"}))
        .await;
    assert_eq!(
        (
            ack["type"].as_str(),
            ack["to"].as_str(),
            ack["text"].as_str()
        ),
        (Some("message"), Some(bob.user_id.as_str()), Some("psst"))
    );
    assert!(ack.get("room").is_none(), "{ack}");
    let bob_id = bob.user_id.clone();
    for (who, client) in [
        ("alice's phone", &mut alice_phone),
        ("bob", &mut bob),
        ("bob's phone", &mut bob_phone),
    ] {
        let copy = client.next_of("message").await;
        assert_eq!(
            (
                copy["text"].as_str(),
                copy["from"]["name"].as_str(),
                copy["to"].as_str()
            ),
            (Some("psst"), Some("alice"), Some(bob_id.as_str())),
            "{who}"
        );
        assert!(copy.get("re").is_none(), "{who}: {copy}");
    }

    let unknown = alice
        .request(json!({"type": "say", "to": uuid::Uuid::new_v4().to_string(), "text": "hello?"}))
        .await;
    assert_eq!(
        (unknown["type"].as_str(), unknown["code"].as_str()),
        (Some("error"), Some("not_found")),
        "{unknown}"
    );
    let not_an_id = alice
        .request(json!({"type": "say", "to": "bob", "text": "hello?"}))
        .await;
    assert_eq!(not_an_id["code"], "bad_request");
}

async fn join_without_since_replays_recent_messages(backend: Backend) {
    let node = Node::start_with(NodeData::fresh(backend), &[("PEERLINK_RATE_BURST", "200")]).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("news", None).await;
    for i in 1..=60 {
        alice.send(json!({"type": "say", "id": format!("s{i}"), "room": "news", "text": format!("n{i}")})).await;
    }
    alice.reply_to("s60").await;
    let mut late = Client::new_user(&node, "late").await;
    let joined = late.join("news", None).await;
    assert_eq!(joined["last_seq"], 60);
    let first = late.next_message("news").await;
    assert_eq!(
        first["seq"], 11,
        "a join without since replays the last 50 messages"
    );
    for seq in 12..=60 {
        assert_eq!(late.next_message("news").await["seq"], seq);
    }
}

async fn a_direct_message_waits_for_an_offline_user(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let bob = Client::new_user(&node, "bob").await;
    let (bob_id, bob_token) = (bob.user_id.clone(), bob.token.clone());
    bob.close().await;
    for text in ["first", "second"] {
        let ack = alice
            .request(json!({"type": "say", "to": bob_id, "text": text}))
            .await;
        assert_eq!(ack["type"], "message", "{ack}");
    }
    let mut bob = Client::returning(&node, &bob_token).await;
    let history = bob
        .request(json!({"type": "history", "with": alice.user_id}))
        .await;
    let read: Vec<(Option<u64>, Option<&str>)> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["seq"].as_u64(), m["text"].as_str()))
        .collect();
    assert_eq!(
        read,
        vec![(Some(1), Some("first")), (Some(2), Some("second"))]
    );
    // The conversation is nobody else's: it is not a room anyone can list or join.
    let (_, rooms) = node.get("/api/rooms").await;
    assert!(!rooms.contains("dm."), "{rooms}");
}
