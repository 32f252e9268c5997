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
