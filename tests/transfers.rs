//! File transfers through the node: the bytes that arrive, the digest the node computes,
//! flow control, pause and resume, and the limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::transfer::*;
use common::{Backend, Client, Node, NodeData};
use serde_json::{json, Value};
use uuid::Uuid;

on_both_backends!(
    files_of_every_edge_size_arrive_intact,
    a_100_mib_file_arrives_intact,
    a_room_offer_reaches_three_members,
    one_room_receiver_leaving_does_not_stop_the_others,
    resume_after_the_receiver_disconnects,
    resume_after_the_sender_disconnects,
    a_receiver_back_before_its_old_connection_ends_resumes,
    a_sender_back_before_its_old_connection_ends_resumes,
    a_transfer_resumes_after_kill_9_of_the_node,
    an_offer_survives_kill_9_of_the_node,
    an_offer_accepted_while_the_sender_is_away_waits_for_them,
    bad_data_frames_are_refused_and_dropped,
    a_declared_digest_that_differs_fails,
    limits_on_size_count_rate_and_presence,
    unanswered_offers_expire,
);

async fn files_of_every_edge_size_arrive_intact(backend: Backend) {
    let node = Node::start(backend).await;
    let sizes = [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17];
    for (i, size) in sizes.into_iter().enumerate() {
        let alice = Client::new_user(&node, "alice").await;
        let bob = Client::new_user(&node, "bob").await;
        let data = random_bytes(size, i as u64 + 1);
        let expected = sha256_hex(&data);
        let (bytes, sent, received) = transfer(alice, bob, data.clone()).await;
        assert_eq!(bytes.len(), size, "size {size}");
        assert!(bytes == data, "size {size}: the bytes differ");
        for done in [&sent, &received] {
            assert_eq!(done["type"], "complete", "size {size}: {done}");
            assert_eq!(
                done["sha256"],
                expected.as_str(),
                "size {size}: the node's digest is not the file's"
            );
            assert_eq!(done["size"], size);
        }
    }
    let (_, metrics) = node.get("/metrics").await;
    let total: usize = sizes.iter().sum();
    for needle in [
        "peerlink_transfers_finished_total{outcome=\"complete\"} 5".to_owned(),
        format!("peerlink_transfer_bytes_total {total}"),
        format!("peerlink_hashed_bytes_total {total}"),
    ] {
        assert!(
            metrics.contains(&needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }
}

async fn a_100_mib_file_arrives_intact(backend: Backend) {
    let node = Node::start(backend).await;
    let alice = Client::new_user(&node, "alice").await;
    let bob = Client::new_user(&node, "bob").await;
    let data = random_bytes(100 * 1024 * 1024, 23);
    let expected = sha256_hex(&data);
    let (bytes, sent, received) = transfer(alice, bob, data.clone()).await;
    assert!(bytes == data, "the 100 MiB differ");
    assert_eq!(sent["sha256"], expected.as_str(), "{sent}");
    assert_eq!(received["sha256"], expected.as_str(), "{received}");
}

/// Alice offers `len` random bytes to room "crew", where bob, carol and dave have joined;
/// all three accept. Returns the node, alice, the members, the transfer id and the data.
async fn room_offer(
    backend: Backend,
    len: usize,
    seed: u64,
) -> (Node, Client, Vec<Client>, Uuid, Vec<u8>) {
    let node = Node::start(backend).await;
    let (alice, members, id, data) = room_offer_across([&node; 4], len, seed).await;
    (node, alice, members, id, data)
}

async fn a_room_offer_reaches_three_members(backend: Backend) {
    let (_node, mut alice, members, id, data) = room_offer(backend, 2 * CHUNK + 99, 7).await;
    let size = data.len() as u64;
    let mut accepted_by = Vec::new();
    for _ in 0..3 {
        accepted_by.push(
            alice.next_of("accepted").await["by"]["name"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    accepted_by.sort();
    assert_eq!(accepted_by, ["bob", "carol", "dave"]);
    let receivers: Vec<_> = members
        .into_iter()
        .map(|mut member| {
            tokio::spawn(async move {
                let bytes = receive(&mut member, id, 0, size).await;
                (bytes, complete_of(&mut member, id).await)
            })
        })
        .collect();
    stream(&mut alice, id, &data, 0).await;
    let sender_done = complete_of(&mut alice, id).await;
    assert_eq!(
        sender_done["sha256"],
        sha256_hex(&data).as_str(),
        "{sender_done}"
    );
    for receiver in receivers {
        let (bytes, done) = receiver.await.unwrap();
        assert!(bytes == data, "a member got different bytes");
        assert_eq!(done["sha256"], sha256_hex(&data).as_str());
    }
}

async fn one_room_receiver_leaving_does_not_stop_the_others(backend: Backend) {
    let (_node, mut alice, mut members, id, data) = room_offer(backend, 5 * CHUNK + 1, 31).await;
    let size = data.len() as u64;
    for _ in 0..3 {
        alice.next_of("accepted").await;
    }
    // Dave takes one chunk, then goes away without acknowledging it.
    let mut dave = members.pop().unwrap();
    alice.send_binary(data_frame(id, 0, &data[..CHUNK])).await;
    dave.next_data().await;
    dave.close().await;

    let receivers: Vec<_> = members
        .into_iter()
        .map(|mut member| {
            tokio::spawn(async move {
                let bytes = receive(&mut member, id, 0, size).await;
                (bytes, complete_of(&mut member, id).await)
            })
        })
        .collect();
    // The first chunk is already out; send from the second on.
    let mut offset = CHUNK;
    let mut acked = 0u64;
    while offset < data.len() {
        let len = CHUNK.min(data.len() - offset);
        while (offset + len) as u64 - acked > WINDOW {
            acked = alice.next_of("progress").await["offset"].as_u64().unwrap();
        }
        alice
            .send_binary(data_frame(id, offset as u64, &data[offset..offset + len]))
            .await;
        offset += len;
    }
    alice.send(json!({"type": "end", "transfer": id})).await;
    let sender_done = complete_of(&mut alice, id).await;
    assert_eq!(
        (sender_done["type"].as_str(), sender_done["sha256"].as_str()),
        (Some("complete"), Some(sha256_hex(&data).as_str())),
        "{sender_done}"
    );
    for receiver in receivers {
        let (bytes, done) = receiver.await.unwrap();
        assert!(bytes == data, "a remaining member got different bytes");
        assert_eq!(done["type"], "complete", "{done}");
    }
}

/// A transfer of `len` random bytes from alice to bob, accepted, with its first `chunks`
/// chunks sent and acknowledged; returns the node, both clients, the id, the data and the
/// acknowledged offset.
async fn half_sent(
    backend: Backend,
    len: usize,
    seed: u64,
    chunks: usize,
) -> (Node, Client, Client, Uuid, Vec<u8>, u64) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    let data = random_bytes(len, seed);
    let size = data.len() as u64;
    let id = offer(
        &mut alice,
        json!({"to": bob.user_id}),
        "big.bin",
        size,
        Some(sha256_hex(&data)),
    )
    .await;
    accept(&mut bob, id, size).await;
    alice.next_of("accepted").await;
    let acked = stream_part(&mut alice, &mut bob, id, &data, chunks).await;
    (node, alice, bob, id, data, acked)
}

async fn resume_after_the_receiver_disconnects(backend: Backend) {
    let (node, alice, bob, id, data, acked) = half_sent(backend, 6 * CHUNK + 1234, 11, 3).await;
    let mut alice = alice;

    let token = bob.token.clone();
    bob.close().await;
    let paused = alice.next_of("paused").await;
    assert_eq!(
        (paused["transfer"].as_str(), paused["offset"].as_u64()),
        (Some(id.to_string().as_str()), Some(acked))
    );

    let mut bob = Client::returning(&node, &token).await;
    let resume = bob.next_of("resume").await;
    assert_eq!(resume["offset"].as_u64(), Some(acked), "{resume}");
    assert_eq!(
        alice.next_of("resume").await["offset"].as_u64(),
        Some(acked)
    );

    finish_from(alice, &mut bob, id, &data, acked).await;
}

async fn resume_after_the_sender_disconnects(backend: Backend) {
    let (node, alice, bob, id, data, acked) = half_sent(backend, 5 * CHUNK + 5, 13, 2).await;
    let mut bob = bob;

    let token = alice.token.clone();
    alice.close().await;
    assert_eq!(bob.next_of("paused").await["offset"].as_u64(), Some(acked));
    let mut alice = Client::returning(&node, &token).await;
    assert_eq!(
        alice.next_of("resume").await["offset"].as_u64(),
        Some(acked)
    );
    assert_eq!(bob.next_of("resume").await["offset"].as_u64(), Some(acked));

    finish_from(alice, &mut bob, id, &data, acked).await;
}

/// A page reload: the new connection signs in before the node has seen the old one end.
/// The transfer pauses when the old one ends and goes on with the new one at once, not
/// only at the user's next connection.
async fn a_receiver_back_before_its_old_connection_ends_resumes(backend: Backend) {
    let (node, mut alice, bob, id, data, acked) = half_sent(backend, 6 * CHUNK + 77, 21, 3).await;
    let mut bob_again = Client::returning(&node, &bob.token).await;
    bob.close().await;
    assert_eq!(
        alice.next_of("paused").await["offset"].as_u64(),
        Some(acked)
    );
    assert_eq!(
        bob_again.next_of("resume").await["offset"].as_u64(),
        Some(acked)
    );
    assert_eq!(
        alice.next_of("resume").await["offset"].as_u64(),
        Some(acked)
    );
    finish_from(alice, &mut bob_again, id, &data, acked).await;
}

async fn a_sender_back_before_its_old_connection_ends_resumes(backend: Backend) {
    let (node, alice, mut bob, id, data, acked) = half_sent(backend, 5 * CHUNK + 9, 23, 2).await;
    let mut alice_again = Client::returning(&node, &alice.token).await;
    alice.close().await;
    assert_eq!(bob.next_of("paused").await["offset"].as_u64(), Some(acked));
    assert_eq!(
        alice_again.next_of("resume").await["offset"].as_u64(),
        Some(acked)
    );
    assert_eq!(bob.next_of("resume").await["offset"].as_u64(), Some(acked));
    finish_from(alice_again, &mut bob, id, &data, acked).await;
}

async fn a_transfer_resumes_after_kill_9_of_the_node(backend: Backend) {
    // `progress` promises that the node has stored the acknowledged offset and its digest.
    let (node, alice, bob, id, data, acked) = half_sent(backend, 6 * CHUNK + 77, 29, 3).await;
    let (alice_token, bob_token) = (alice.token.clone(), bob.token.clone());
    drop((alice, bob));
    let node = node.restart_after_kill9().await;

    let mut alice = Client::returning(&node, &alice_token).await;
    let paused = alice.next_of("paused").await;
    assert_eq!(
        (paused["transfer"].as_str(), paused["offset"].as_u64()),
        (Some(id.to_string().as_str()), Some(acked)),
        "{paused}"
    );
    let mut bob = Client::returning(&node, &bob_token).await;
    assert_eq!(bob.next_of("resume").await["offset"].as_u64(), Some(acked));
    assert_eq!(
        alice.next_of("resume").await["offset"].as_u64(),
        Some(acked)
    );

    finish_from(alice, &mut bob, id, &data, acked).await;
}

/// Alice offers `len` pseudo-random bytes named `name` to bob, who is online.
async fn offered_to_bob(
    backend: Backend,
    name: &str,
    len: usize,
    seed: u64,
) -> (Node, Client, Client, Uuid, Vec<u8>) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let bob = Client::new_user(&node, "bob").await;
    let data = random_bytes(len, seed);
    let to = json!({"to": bob.user_id});
    let id = offer(&mut alice, to, name, data.len() as u64, None).await;
    (node, alice, bob, id, data)
}

async fn an_offer_survives_kill_9_of_the_node(backend: Backend) {
    let (node, alice, mut bob, id, data) =
        offered_to_bob(backend, "kept.bin", 3 * CHUNK + 5, 41).await;
    let size = data.len() as u64;
    assert_eq!(bob.next_of("offer").await["transfer"], id.to_string());
    let (alice_token, bob_token) = (alice.token.clone(), bob.token.clone());
    drop((alice, bob));
    let node = node.restart_after_kill9().await;

    // `offered` was a promise: bob is offered the file again, alice hears it still waits.
    let mut bob = Client::returning(&node, &bob_token).await;
    let again = bob.next_of("offer").await;
    assert_eq!(
        (
            again["transfer"].as_str(),
            again["name"].as_str(),
            again["size"].as_u64()
        ),
        (Some(id.to_string().as_str()), Some("kept.bin"), Some(size)),
        "{again}"
    );
    let mut alice = Client::returning(&node, &alice_token).await;
    let offered = alice.next_of("offered").await;
    assert_eq!(offered["transfer"], id.to_string(), "{offered}");
    assert!(offered.get("re").is_none(), "{offered}");

    bob.send(json!({"type": "accept", "transfer": id, "offset": 0}))
        .await;
    assert_eq!(alice.next_of("accepted").await["offset"], 0);
    finish_from(alice, &mut bob, id, &data, 0).await;
}

async fn an_offer_accepted_while_the_sender_is_away_waits_for_them(backend: Backend) {
    let (node, alice, mut bob, id, data) =
        offered_to_bob(backend, "later.bin", 2 * CHUNK + 9, 43).await;
    let size = data.len() as u64;
    let alice_token = alice.token.clone();
    alice.close().await;

    accept(&mut bob, id, size).await;
    let paused = bob.next_of("paused").await;
    assert_eq!(
        (paused["transfer"].as_str(), paused["offset"].as_u64()),
        (Some(id.to_string().as_str()), Some(0)),
        "the receiver hears that the transfer waits for the sender: {paused}"
    );
    let mut alice = Client::returning(&node, &alice_token).await;
    assert_eq!(alice.next_of("resume").await["offset"], 0);
    assert_eq!(bob.next_of("resume").await["offset"], 0);
    finish_from(alice, &mut bob, id, &data, 0).await;
}

/// The next error about transfer `id`.
async fn transfer_error(client: &mut Client, id: Uuid) -> Value {
    let id = id.to_string();
    client
        .next_matching(move |f| f["type"] == "error" && f["transfer"] == id.as_str())
        .await
}

async fn bad_data_frames_are_refused_and_dropped(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    let mut carol = Client::new_user(&node, "carol").await;
    let data = random_bytes(5 * 1024 * 1024, 17);
    let size = data.len() as u64;
    let id = offer(&mut alice, json!({"to": bob.user_id}), "x.bin", size, None).await;

    alice.send_binary(data_frame(id, 0, &data[..100])).await;
    assert_eq!(
        transfer_error(&mut alice, id).await["code"],
        "conflict",
        "data before anyone accepted"
    );

    accept(&mut bob, id, size).await;
    alice.next_of("accepted").await;
    alice.send_binary(data_frame(id, 10, &data[10..20])).await;
    let error = transfer_error(&mut alice, id).await;
    assert_eq!(
        (error["code"].as_str(), error["offset"].as_u64()),
        (Some("conflict"), Some(10)),
        "out of order: {error}"
    );
    carol.send_binary(data_frame(id, 0, &data[..10])).await;
    assert_eq!(
        transfer_error(&mut carol, id).await["code"],
        "forbidden",
        "a stranger's data"
    );
    bob.send_binary(data_frame(id, 0, &data[..10])).await;
    assert_eq!(
        transfer_error(&mut bob, id).await["code"],
        "forbidden",
        "the receiver's data"
    );
    alice
        .send_binary(data_frame(Uuid::new_v4(), 0, b"nowhere"))
        .await;
    assert_eq!(alice.next_of("error").await["code"], "not_found");
    alice.send_binary(vec![1, 2, 3]).await;
    assert_eq!(
        alice.next_of("error").await["code"],
        "bad_request",
        "a frame shorter than its header"
    );

    // Sixteen chunks fill the 4 MiB window; the seventeenth is refused.
    for n in 0..16 {
        alice
            .send_binary(data_frame(
                id,
                (n * CHUNK) as u64,
                &data[n * CHUNK..(n + 1) * CHUNK],
            ))
            .await;
    }
    alice
        .send_binary(data_frame(
            id,
            (16 * CHUNK) as u64,
            &data[16 * CHUNK..17 * CHUNK],
        ))
        .await;
    let error = transfer_error(&mut alice, id).await;
    assert_eq!(
        (error["code"].as_str(), error["offset"].as_u64()),
        (Some("conflict"), Some((16 * CHUNK) as u64)),
        "past the window: {error}"
    );

    // Nothing refused reached bob: exactly the 16 chunks, in order.
    let received = receive(&mut bob, id, 0, (16 * CHUNK) as u64).await;
    assert!(received == data[..16 * CHUNK]);

    let past_end = size - 10;
    for n in 16..20 {
        alice
            .send_binary(data_frame(
                id,
                (n * CHUNK) as u64,
                &data[n * CHUNK..(n + 1) * CHUNK],
            ))
            .await;
    }
    alice
        .send_binary(data_frame(id, past_end, &[0u8; 100]))
        .await;
    let error = transfer_error(&mut alice, id).await;
    assert_eq!(error["code"], "conflict", "{error}");
    let mut tail = data[past_end as usize..].to_vec();
    tail.extend_from_slice(&[0u8; 90]);
    alice
        .send_binary(data_frame(id, (20 * CHUNK) as u64, &tail))
        .await;
    let error = transfer_error(&mut alice, id).await;
    assert_eq!(
        error["code"], "bad_request",
        "past the end of the file: {error}"
    );
}

async fn a_declared_digest_that_differs_fails(backend: Backend) {
    let node = Node::start(backend).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    let data = random_bytes(CHUNK + 3, 19);
    let size = data.len() as u64;
    let wrong = sha256_hex(b"something else");
    let id = offer(
        &mut alice,
        json!({"to": bob.user_id}),
        "x.bin",
        size,
        Some(wrong),
    )
    .await;
    accept(&mut bob, id, size).await;
    alice.next_of("accepted").await;
    let copy = data.clone();
    let sending = tokio::spawn(async move {
        stream(&mut alice, id, &copy, 0).await;
        complete_of(&mut alice, id).await
    });
    receive(&mut bob, id, 0, size).await;
    for done in [complete_of(&mut bob, id).await, sending.await.unwrap()] {
        assert_eq!(
            (done["type"].as_str(), done["reason"].as_str()),
            (Some("failed"), Some("checksum_mismatch")),
            "{done}"
        );
    }
}

async fn limits_on_size_count_rate_and_presence(backend: Backend) {
    let settings = [
        ("PEERLINK_MAX_FILE_SIZE", "1000000"),
        ("PEERLINK_TRANSFERS_PER_USER", "2"),
        ("PEERLINK_OFFERS_PER_MINUTE", "4"),
    ];
    let node = Node::start_with(NodeData::fresh(backend), &settings).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let bob = Client::new_user(&node, "bob").await;
    let to_bob = json!({"type": "offer", "to": bob.user_id, "name": "f", "size": 10});

    let mut too_big = to_bob.clone();
    too_big["size"] = json!(1_000_001);
    assert_eq!(alice.request(too_big).await["code"], "too_large");

    let first = offer(&mut alice, json!({"to": bob.user_id}), "a", 10, None).await;
    let second = offer(&mut alice, json!({"to": bob.user_id}), "b", 10, None).await;
    assert_eq!(
        alice.request(to_bob.clone()).await["code"],
        "conflict",
        "a third transfer at once"
    );
    for id in [first, second] {
        alice.send(json!({"type": "cancel", "transfer": id})).await;
        let cancelled = alice.next_of("cancelled").await;
        assert_eq!(cancelled["transfer"], id.to_string());
    }
    let third = offer(&mut alice, json!({"to": bob.user_id}), "c", 10, None).await;
    let fourth = offer(&mut alice, json!({"to": bob.user_id}), "d", 10, None).await;
    for id in [third, fourth] {
        alice.send(json!({"type": "cancel", "transfer": id})).await;
        alice.next_of("cancelled").await;
    }
    let limited = alice.request(to_bob).await;
    assert_eq!(
        limited["code"], "rate_limited",
        "a fifth offer within a minute: {limited}"
    );
    assert!(limited["retry_after_ms"].as_u64().unwrap() > 0);

    let carol_token = Client::new_user(&node, "carol").await;
    let carol_id = carol_token.user_id.clone();
    carol_token.close().await;
    let mut dave = Client::new_user(&node, "dave").await;
    let offline = dave
        .request(json!({"type": "offer", "to": carol_id, "name": "f", "size": 1}))
        .await;
    assert_eq!(
        offline["code"], "unavailable",
        "an offer to someone offline: {offline}"
    );
}

async fn unanswered_offers_expire(backend: Backend) {
    let node = Node::start_with(
        NodeData::fresh(backend),
        &[("PEERLINK_OFFER_TTL_SECS", "1")],
    )
    .await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    let id = offer(&mut alice, json!({"to": bob.user_id}), "late.bin", 5, None).await;
    assert_eq!(bob.next_of("offer").await["transfer"], id.to_string());
    for client in [&mut alice, &mut bob] {
        let cancelled = client.next_of("cancelled").await;
        assert_eq!(
            (cancelled["transfer"].as_str(), cancelled["reason"].as_str()),
            (Some(id.to_string().as_str()), Some("expired"))
        );
    }
    bob.send(json!({"type": "accept", "transfer": id, "offset": 0}))
        .await;
    assert_eq!(
        bob.next_of("error").await["code"],
        "not_found",
        "an expired offer cannot be accepted"
    );
}
