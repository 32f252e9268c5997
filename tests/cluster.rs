//! Three real nodes on one Redis and one PostgreSQL, clients on different nodes: to them
//! the cluster must be one service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::cluster::Cluster;
use common::Client;
use serde_json::Value;
use std::collections::HashMap;

/// The `(seq, text)` of every message a client reads until it has `count`.
async fn read_messages(client: &mut Client, room: &str, count: usize) -> Vec<(u64, String)> {
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        let m = client.next_message(room).await;
        seen.push((
            m["seq"].as_u64().expect("seq"),
            m["text"].as_str().unwrap_or("").to_owned(),
        ));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_spans_three_nodes_with_one_gapless_order() {
    let cluster = Cluster::start(3).await;
    // Two members on each node; each of them also sends (8 senders would be 8 of 6: the
    // first two nodes get a third member each).
    let mut members = Vec::new();
    for (i, node) in cluster.nodes.iter().cycle().take(8).enumerate() {
        let mut client = Client::new_user(node, &format!("user{i}")).await;
        let joined = client.join("lobby", None).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        members.push(client);
    }
    // The last to join sees every member, wherever they are connected.
    let joined_last = members[7].join("lobby", None).await;
    let listed = joined_last["members"].as_array().expect("members").len();
    assert_eq!(
        listed, 8,
        "joined lists members from every node: {joined_last}"
    );

    const PER_SENDER: usize = 20;
    let total = PER_SENDER * members.len();
    // Everyone sends at once; acknowledgements come back with their seq.
    let mut tasks = Vec::new();
    for (i, mut client) in members.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..PER_SENDER {
                client
                    .send(
                        serde_json::json!({"type":"say","room":"lobby","text":format!("{i}:{n}")}),
                    )
                    .await;
            }
            let seen = read_messages(&mut client, "lobby", total).await;
            (i, seen)
        }));
    }
    let mut orders: Vec<(usize, Vec<(u64, String)>)> = Vec::new();
    for task in tasks {
        orders.push(task.await.expect("member task"));
    }
    let (_, first) = &orders[0];
    let seqs: Vec<u64> = first.iter().map(|(seq, _)| *seq).collect();
    let start = seqs[0];
    assert_eq!(
        seqs,
        (start..start + total as u64).collect::<Vec<_>>(),
        "one gapless order"
    );
    for (i, order) in &orders {
        assert_eq!(order, first, "member {i} saw the same order as member 0");
    }
    // Each sender's own messages keep the order it sent them in.
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (_, text) in first {
        let (sender, n) = text.split_once(':').expect("sender:n");
        let n: usize = n.parse().expect("n");
        if let Some(previous) = last.insert(sender, n) {
            assert!(n > previous, "sender {sender}: {n} after {previous}");
        }
    }
    let _ = Value::Null;
}

/// What one chatting client did and saw.
struct Chat {
    /// `(seq, text)` of every message of its own that the node acknowledged.
    acked: Vec<(u64, String)>,
    /// The `seq` of every room message it received, in order (its own included).
    seen: Vec<u64>,
    /// Reconnections it needed.
    moves: usize,
    /// When each acknowledgement arrived.
    acked_at: Vec<std::time::Instant>,
}

impl Chat {
    /// The first acknowledgement after `instant`.
    fn first_ack_after(&self, instant: std::time::Instant) -> Option<std::time::Instant> {
        self.acked_at.iter().copied().find(|at| *at > instant)
    }
}

/// A client that says `texts` one at a time in `room`, waiting for each acknowledgement;
/// when its node goes away it comes back on another live node (`ws_urls` in order, as the
/// web page does) and rejoins from the last `seq` it saw; an unanswered or refused message
/// is sent again.
async fn chat(mut client: Client, ws_urls: Vec<String>, room: &str, texts: Vec<String>) -> Chat {
    use common::Next;
    use std::time::Duration;
    let mut chat = Chat {
        acked: Vec::new(),
        seen: Vec::new(),
        moves: 0,
        acked_at: Vec::new(),
    };
    let token = client.token.clone();
    let mut texts = texts.into_iter().peekable();
    'messages: while let Some(text) = texts.peek().cloned() {
        let id = client.request_id();
        let say = serde_json::json!({"type":"say","room":room,"text":text,"id":id});
        let sent = client.try_send(say).await;
        // A message unanswered for 2 s is sent again, as a client would after its node
        // died with the message in flight (it may then be stored twice, never lost).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            let next = if sent {
                client.next_or_end(wait).await
            } else {
                Next::Ended
            };
            match next {
                Next::Frame(f) if f["type"] == "message" && f["room"] == room => {
                    let seq = f["seq"].as_u64().expect("seq");
                    chat.seen.push(seq);
                    if f["re"] == id.as_str() {
                        chat.acked.push((seq, text.clone()));
                        chat.acked_at.push(std::time::Instant::now());
                        texts.next();
                        continue 'messages;
                    }
                }
                Next::Frame(f) if f["type"] == "error" && f["re"] == id.as_str() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'messages; // refused (e.g. the room is moving): send again
                }
                Next::Frame(_) => {}
                Next::Quiet => continue 'messages, // unanswered: send again
                Next::Ended => {
                    chat.moves += 1;
                    let since = chat.seen.last().copied();
                    client = reconnect(&ws_urls, &token).await;
                    let mut join = serde_json::json!({"type":"join","room":room});
                    if let Some(since) = since {
                        join["since"] = since.into();
                    }
                    client.try_send(join).await;
                    continue 'messages;
                }
            }
        }
    }
    chat
}

/// Connects to the first node of `ws_urls` that answers, trying them all for a while.
async fn reconnect(ws_urls: &[String], token: &str) -> Client {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        for url in ws_urls {
            if let Some(client) = Client::try_returning(url, token).await {
                return client;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no live node took the client back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Every message of `room` in `seq` order, read by a new member on `node` from the start.
async fn whole_room(node: &common::Node, room: &str) -> Vec<(u64, String)> {
    let mut reader = Client::new_user(node, "reader").await;
    let joined = reader.join(room, Some(0)).await;
    let last = joined["last_seq"].as_u64().expect("last_seq") as usize;
    read_messages(&mut reader, room, last).await
}

fn assert_gapless(seqs: &[u64], who: &str) {
    for pair in seqs.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{who}: seq {} after {}",
            pair[1],
            pair[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_rooms_owner_mid_burst_loses_nothing_acknowledged() {
    let mut cluster = Cluster::start(3).await;
    let ws_urls: Vec<String> = cluster.nodes.iter().map(|n| n.ws_url()).collect();
    let mut clients = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut client = Client::new_user(node, &format!("talker{i}")).await;
        client.join("busy", None).await;
        clients.push(client);
    }
    let owner = cluster
        .owner_of("busy")
        .await
        .expect("someone owns the room");
    const PER_CLIENT: usize = 40;
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        // Each client prefers the other nodes after its own, as the page would.
        let mut urls = ws_urls.clone();
        urls.rotate_left(i + 1);
        let texts: Vec<String> = (0..PER_CLIENT).map(|n| format!("{i}:{n}")).collect();
        tasks.push(tokio::spawn(chat(client, urls, "busy", texts)));
    }
    // Mid-burst: wait until the room has some messages, then kill its owner.
    let watcher = (owner + 1) % 3;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let (_, rooms) = cluster.nodes[watcher].get("/api/rooms").await;
        let rooms: Value = serde_json::from_str(&rooms).unwrap_or(Value::Null);
        let last = rooms["rooms"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "busy"))
            .and_then(|r| r["last_seq"].as_u64())
            .unwrap_or(0);
        if last >= 20 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the burst did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let killed_at = std::time::Instant::now();
    cluster.nodes[owner].kill9();
    let mut chats = Vec::new();
    for task in tasks {
        chats.push(task.await.expect("chat task"));
    }
    // The failover time: from the kill until every client has had a message acknowledged.
    let failover = chats
        .iter()
        .filter_map(|chat| chat.first_ack_after(killed_at))
        .max()
        .map(|at| at - killed_at)
        .expect("acknowledgements after the kill");
    let survivor = (owner + 1) % 3;
    let stored = whole_room(&cluster.nodes[survivor], "busy").await;
    let seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs.first(), Some(&1));
    assert_gapless(&seqs, "the stored room");
    for (i, chat) in chats.iter().enumerate() {
        assert_eq!(
            chat.acked.len(),
            PER_CLIENT,
            "client {i} got every message acknowledged"
        );
        for acked in &chat.acked {
            assert!(
                stored.contains(acked),
                "client {i}: acknowledged {acked:?} is stored"
            );
        }
        if i != owner {
            assert_gapless(&chat.seen, &format!("client {i} (its node stayed)"));
        }
    }
    assert!(
        chats[owner].moves >= 1,
        "the owner's client moved to another node"
    );
    // The survivors' metrics tell what happened.
    let (_, metrics) = cluster.nodes[survivor].get("/metrics").await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("peerlink_{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in {metrics}"))
    };
    assert_eq!(value("cluster_nodes_live"), 2.0);
    assert!(value("cluster_nodes_declared_dead_total") >= 1.0);
    assert!(value("cluster_link_envelopes_received_total") > 0.0);
    assert!(value("cluster_link_bytes_sent_total") > 0.0);
    eprintln!(
        "failover: every client had a message acknowledged {:.2} s after the kill of node-{} (the room's owner)",
        failover.as_secs_f64(),
        owner + 1
    );
}

/// Starts one chatting client per node in `room` (client `i` on node `i`, moving to the
/// next nodes if its own goes away), each saying `per_client` messages.
async fn chatters(
    cluster: &Cluster,
    room: &str,
    per_client: usize,
) -> Vec<tokio::task::JoinHandle<Chat>> {
    let ws_urls: Vec<String> = cluster.nodes.iter().map(|n| n.ws_url()).collect();
    let mut tasks = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut client = Client::new_user(node, &format!("talker{i}")).await;
        client.join(room, None).await;
        let mut urls = ws_urls.clone();
        urls.rotate_left(i + 1);
        let texts: Vec<String> = (0..per_client).map(|n| format!("{i}:{n}")).collect();
        let room = room.to_owned();
        tasks.push(tokio::spawn(async move {
            chat(client, urls, &room, texts).await
        }));
    }
    tasks
}

/// Waits until `room` has at least `count` messages, as `node` reports it.
async fn wait_for_messages(node: &common::Node, room: &str, count: u64) {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let (_, rooms) = node.get("/api/rooms").await;
        let rooms: Value = serde_json::from_str(&rooms).unwrap_or(Value::Null);
        let last = rooms["rooms"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == room))
            .and_then(|r| r["last_seq"].as_u64())
            .unwrap_or(0);
        if last >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{room} has {last} messages, not {count}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Every acknowledged message is stored, and the room is one gapless order from 1.
fn assert_nothing_acknowledged_lost(stored: &[(u64, String)], chats: &[Chat]) {
    let seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs.first(), Some(&1));
    assert_gapless(&seqs, "the stored room");
    for (i, chat) in chats.iter().enumerate() {
        for acked in &chat.acked {
            assert!(
                stored.contains(acked),
                "client {i}: acknowledged {acked:?} is stored"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_owner_past_its_lease_changes_nothing_and_leaves() {
    let cluster = Cluster::start(3).await;
    let tasks = chatters(&cluster, "paused", 30).await;
    let owner = cluster
        .owner_of("paused")
        .await
        .expect("someone owns the room");
    let other = (owner + 1) % 3;
    wait_for_messages(&cluster.nodes[other], "paused", 10).await;
    // Stopped past its lease (dead after 2.5 s): another node takes the room over while
    // the others keep writing. Then it wakes up with whatever it had in hand.
    cluster.nodes[owner].signal("STOP");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    cluster.nodes[owner].signal("CONT");
    let mut chats = Vec::new();
    for task in tasks {
        chats.push(task.await.expect("chat task"));
    }
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while cluster.nodes[owner].running() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stale owner did not leave"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stored = whole_room(&cluster.nodes[other], "paused").await;
    assert_nothing_acknowledged_lost(&stored, &chats);
    for (i, chat) in chats.iter().enumerate().filter(|(i, _)| *i != owner) {
        assert_gapless(&chat.seen, &format!("client {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_empty_mid_chat_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    let tasks = chatters(&cluster, "steady", 40).await;
    wait_for_messages(&cluster.nodes[0], "steady", 15).await;
    cluster.redis.kill9_and_restart_empty();
    let mut chats = Vec::new();
    for task in tasks {
        chats.push(task.await.expect("chat task"));
    }
    cluster.wait_for_nodes(3).await;
    let stored = whole_room(&cluster.nodes[1], "steady").await;
    assert_nothing_acknowledged_lost(&stored, &chats);
    for (i, chat) in chats.iter().enumerate() {
        assert_gapless(&chat.seen, &format!("client {i}"));
        assert_eq!(chat.moves, 0, "client {i} kept its connection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_is_cluster_wide() {
    let cluster = Cluster::start(3).await;
    let mut watcher = Client::new_user(&cluster.nodes[2], "watcher").await;
    watcher.join("hall", None).await;
    let mut first = Client::new_user(&cluster.nodes[0], "ann").await;
    first.join("hall", None).await;
    let joined = watcher.next_of("presence").await;
    assert_eq!(
        (joined["user"]["name"].as_str(), joined["status"].as_str()),
        (Some("ann"), Some("joined"))
    );
    // Ann's second session, on another node, in the room too.
    let mut second = Client::returning(&cluster.nodes[1], &first.token).await;
    second.join("hall", None).await;
    // Her first session ends: she is still here (on node 2), so nobody hears of it.
    first.close().await;
    second.say("hall", "still here").await;
    let next = watcher
        .next_matching(|f| f["type"] == "presence" || f["type"] == "message")
        .await;
    assert_eq!(
        next["type"], "message",
        "no presence while Ann is connected elsewhere: {next}"
    );
    // Her last session ends: now she is offline.
    second.close().await;
    let gone = watcher.next_of("presence").await;
    assert_eq!(
        (gone["user"]["name"].as_str(), gone["status"].as_str()),
        (Some("ann"), Some("offline"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_100_mib_file_goes_from_node_1_to_node_2_with_the_right_digest() {
    use common::transfer::{random_bytes, sha256_hex, transfer};
    let cluster = Cluster::start(3).await;
    let sender = Client::new_user(&cluster.nodes[0], "sender").await;
    let receiver = Client::new_user(&cluster.nodes[1], "receiver").await;
    let data = random_bytes(100 * 1024 * 1024, 11);
    let digest = sha256_hex(&data);
    let (bytes, sender_done, receiver_done) = transfer(sender, receiver, data.clone()).await;
    assert!(
        bytes == data,
        "the 100 MiB that arrived differ from what was sent"
    );
    for done in [&sender_done, &receiver_done] {
        assert_eq!(done["type"], "complete", "{done}");
        assert_eq!(
            done["sha256"],
            digest.as_str(),
            "the node's digest is sha256sum's"
        );
    }
}

/// Alice on node 1 offers Bob on node 2 a file of a little over ten chunks; he accepts and
/// three chunks are acknowledged. Returns (alice, bob, transfer, data, acknowledged).
async fn three_chunks_across(cluster: &Cluster) -> (Client, Client, uuid::Uuid, Vec<u8>, u64) {
    use common::transfer::*;
    let mut alice = Client::new_user(&cluster.nodes[0], "alice").await;
    let mut bob = Client::new_user(&cluster.nodes[1], "bob").await;
    let data = random_bytes(10 * CHUNK + 999, 21);
    let size = data.len() as u64;
    let target = serde_json::json!({"to": bob.user_id});
    let id = offer(&mut alice, target, "big.bin", size, Some(sha256_hex(&data))).await;
    accept(&mut bob, id, size).await;
    alice.next_of("accepted").await;
    let acked = stream_part(&mut alice, &mut bob, id, &data, 3).await;
    (alice, bob, id, data, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_comes_back_on_another_node_resumes() {
    use common::transfer::*;
    let cluster = Cluster::start(3).await;
    let (mut alice, bob, id, data, acked) = three_chunks_across(&cluster).await;
    // Bob's connection to node 2 ends; the transfer pauses where he acknowledged.
    let token = bob.token.clone();
    bob.close().await;
    let paused = alice.next_of("paused").await;
    assert_eq!(paused["offset"].as_u64(), Some(acked), "{paused}");
    // He comes back through node 3: both sides hear `resume` at the same offset.
    let mut bob = Client::returning(&cluster.nodes[2], &token).await;
    let resume = bob.next_of("resume").await;
    assert_eq!(resume["offset"].as_u64(), Some(acked), "{resume}");
    assert_eq!(
        alice.next_of("resume").await["offset"].as_u64(),
        Some(acked)
    );
    finish_from(alice, &mut bob, id, &data, acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_offer_reaches_members_on_three_nodes() {
    use common::transfer::*;
    let cluster = Cluster::start(3).await;
    let n = &cluster.nodes;
    let (mut alice, members, id, data) =
        room_offer_across([&n[0], &n[0], &n[1], &n[2]], 5 * CHUNK + 77, 9).await;
    let size = data.len() as u64;
    let expected = sha256_hex(&data);
    let sent = data.clone();
    let sending = tokio::spawn(async move {
        stream(&mut alice, id, &sent, 0).await;
        complete_of(&mut alice, id).await
    });
    let mut receiving = Vec::new();
    for mut member in members {
        receiving.push(tokio::spawn(async move {
            let bytes = receive(&mut member, id, 0, size).await;
            (bytes, complete_of(&mut member, id).await)
        }));
    }
    for task in receiving {
        let (bytes, done) = task.await.expect("receiver");
        assert!(bytes == data, "a member received other bytes");
        assert_eq!(
            (done["type"].as_str(), done["sha256"].as_str()),
            (Some("complete"), Some(expected.as_str())),
            "{done}"
        );
    }
    let done = sending.await.expect("sender");
    assert_eq!(done["sha256"].as_str(), Some(expected.as_str()), "{done}");
}

/// Alice on node 1 sends to Bob on node 2; three chunks are acknowledged; then the node of
/// `victim` ("sender" or "receiver") is killed, its user comes back on node 3, and the
/// transfer completes with the right digest.
async fn a_transfer_survives_the_kill_of(victim: &str) {
    use common::transfer::*;
    let mut cluster = Cluster::start(3).await;
    let (mut alice, mut bob, id, data, acked) = three_chunks_across(&cluster).await;
    let (node, user) = if victim == "sender" {
        (0, &mut alice)
    } else {
        (1, &mut bob)
    };
    let token = user.token.clone();
    cluster.nodes[node].kill9();
    *user = Client::returning(&cluster.nodes[2], &token).await;
    // Both sides hear `resume` at the acknowledged offset (the survivor may first hear
    // `paused`), wherever the transfer now lives.
    for side in [&mut alice, &mut bob] {
        let resume = side.next_of("resume").await;
        assert_eq!(resume["offset"].as_u64(), Some(acked), "{resume}");
    }
    finish_from(alice, &mut bob, id, &data, acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_completes_after_kill_9_of_the_receivers_node() {
    a_transfer_survives_the_kill_of("receiver").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_completes_after_kill_9_of_the_senders_node_which_owned_it() {
    a_transfer_survives_the_kill_of("sender").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_empty_mid_transfer_loses_nothing() {
    use common::transfer::*;
    let mut cluster = Cluster::start(3).await;
    let (alice, mut bob, id, data, acked) = three_chunks_across(&cluster).await;
    // File bytes never go through Redis: the transfer goes on while Redis is away and
    // after it comes back empty.
    cluster.redis.kill9_and_restart_empty();
    finish_from(alice, &mut bob, id, &data, acked).await;
    cluster.wait_for_nodes(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_messages_reach_both_users_everywhere_and_wait_for_the_offline() {
    let cluster = Cluster::start(3).await;
    let mut ann = Client::new_user(&cluster.nodes[0], "ann").await;
    let mut ann_phone = Client::returning(&cluster.nodes[1], &ann.token).await;
    let mut ben = Client::new_user(&cluster.nodes[2], "ben").await;
    // Live: every session of both, on every node; numbered like a room of two.
    let ack = ann
        .request(serde_json::json!({"type":"say","to":ben.user_id,"text":"hi ben"}))
        .await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_u64()),
        (Some("message"), Some(1)),
        "{ack}"
    );
    let ben_id = ben.user_id.clone();
    for (who, client) in [("ann's phone", &mut ann_phone), ("ben", &mut ben)] {
        let copy = client.next_of("message").await;
        assert_eq!(
            (copy["text"].as_str(), copy["seq"].as_u64()),
            (Some("hi ben"), Some(1)),
            "{who}: {copy}"
        );
        assert_eq!(copy["to"].as_str(), Some(ben_id.as_str()), "{who}");
    }
    // Ben goes offline; Ann writes twice; Ben comes back on another node and reads them.
    let ben_token = ben.token.clone();
    ben.close().await;
    for text in ["are you there?", "call me"] {
        let ack = ann
            .request(serde_json::json!({"type":"say","to":ben_id,"text":text}))
            .await;
        assert_eq!(ack["type"], "message", "{ack}");
    }
    let mut ben = Client::returning(&cluster.nodes[1], &ben_token).await;
    let history = ben
        .request(serde_json::json!({"type":"history","with":ann.user_id}))
        .await;
    assert_eq!(
        history["with"].as_str(),
        Some(ann.user_id.as_str()),
        "{history}"
    );
    let read: Vec<(u64, String)> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap_or(0),
                m["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        read,
        vec![
            (1, "hi ben".into()),
            (2, "are you there?".into()),
            (3, "call me".into())
        ]
    );
    // Nobody else can read or write it as a room.
    let join = ben
        .request(serde_json::json!({"type":"join","room":"dm.x"}))
        .await;
    assert_eq!(join["code"], "bad_request", "{join}");
}
