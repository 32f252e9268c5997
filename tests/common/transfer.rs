//! File transfers as a test client makes them: offer, accept, stream within the window,
//! receive and acknowledge, with deterministic data.

use super::{Client, Node};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const CHUNK: usize = 256 * 1024;
pub const WINDOW: u64 = 4 * 1024 * 1024;

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn data_frame(transfer: Uuid, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(24 + data.len());
    frame.extend_from_slice(transfer.as_bytes());
    frame.extend_from_slice(&offset.to_be_bytes());
    frame.extend_from_slice(data);
    frame
}

/// Offers a file and returns the transfer id from `offered`.
pub async fn offer(
    sender: &mut Client,
    target: Value,
    name: &str,
    size: u64,
    sha256: Option<String>,
) -> Uuid {
    let mut frame =
        json!({"type": "offer", "name": name, "size": size, "mime": "application/octet-stream"});
    for (key, value) in target.as_object().unwrap() {
        frame[key] = value.clone();
    }
    if let Some(sha256) = sha256 {
        frame["sha256"] = json!(sha256);
    }
    let offered = sender.request(frame).await;
    assert_eq!(offered["type"], "offered", "{offered}");
    offered["transfer"].as_str().unwrap().parse().unwrap()
}

/// Waits for the offer and accepts it.
pub async fn accept(receiver: &mut Client, transfer: Uuid, size: u64) {
    let id = transfer.to_string();
    let offer = receiver
        .next_matching(move |f| f["type"] == "offer" && f["transfer"] == id.as_str())
        .await;
    assert_eq!(offer["size"], size, "{offer}");
    receiver
        .send(json!({"type": "accept", "transfer": transfer, "offset": 0}))
        .await;
}

/// Sends `data[start..]`, never more than the window ahead of the acknowledgements; then `end`.
pub async fn stream(sender: &mut Client, transfer: Uuid, data: &[u8], start: u64) {
    let mut acked = start;
    let mut offset = start as usize;
    while offset < data.len() {
        let len = CHUNK.min(data.len() - offset);
        while (offset + len) as u64 - acked > WINDOW {
            let progress = sender.next_of("progress").await;
            acked = acked.max(progress["offset"].as_u64().unwrap());
        }
        sender
            .send_binary(data_frame(
                transfer,
                offset as u64,
                &data[offset..offset + len],
            ))
            .await;
        offset += len;
    }
    sender
        .send(json!({"type": "end", "transfer": transfer}))
        .await;
}

/// Receives from `start` until `size` bytes, acknowledging every frame.
pub async fn receive(receiver: &mut Client, transfer: Uuid, start: u64, size: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut offset = start;
    while offset < size {
        let frame = receiver.next_data().await;
        assert_eq!(
            &frame[..16],
            transfer.as_bytes(),
            "a frame of another transfer"
        );
        let frame_offset = u64::from_be_bytes(frame[16..24].try_into().unwrap());
        assert_eq!(frame_offset, offset, "data out of order");
        bytes.extend_from_slice(&frame[24..]);
        offset += (frame.len() - 24) as u64;
        receiver
            .send(json!({"type": "ack", "transfer": transfer, "offset": offset}))
            .await;
    }
    bytes
}

pub async fn complete_of(client: &mut Client, transfer: Uuid) -> Value {
    let id = transfer.to_string();
    let done = client
        .next_matching(move |f| {
            f["transfer"] == id.as_str()
                && ["complete", "failed", "cancelled"].contains(&f["type"].as_str().unwrap_or(""))
        })
        .await;
    done
}

/// One whole transfer between two users; returns (received bytes, sender's and receiver's final frames).
pub async fn transfer(sender: Client, receiver: Client, data: Vec<u8>) -> (Vec<u8>, Value, Value) {
    let (mut sender, mut receiver) = (sender, receiver);
    let size = data.len() as u64;
    let id = offer(
        &mut sender,
        json!({"to": receiver.user_id}),
        "file.bin",
        size,
        None,
    )
    .await;
    accept(&mut receiver, id, size).await;
    let accepted = sender.next_of("accepted").await;
    assert_eq!(
        (accepted["offset"].as_u64(), accepted["by"]["id"].as_str()),
        (Some(0), Some(receiver.user_id.as_str()))
    );
    let sending = tokio::spawn(async move {
        stream(&mut sender, id, &data, 0).await;
        complete_of(&mut sender, id).await
    });
    let receiving = tokio::spawn(async move {
        let bytes = receive(&mut receiver, id, 0, size).await;
        let done = complete_of(&mut receiver, id).await;
        (bytes, done)
    });
    let sender_done = sending.await.unwrap();
    let (bytes, receiver_done) = receiving.await.unwrap();
    (bytes, sender_done, receiver_done)
}

/// Sends the first `chunks` chunks and waits until they are all acknowledged.
pub async fn stream_part(
    sender: &mut Client,
    receiver: &mut Client,
    id: Uuid,
    data: &[u8],
    chunks: usize,
) -> u64 {
    for n in 0..chunks {
        let offset = n * CHUNK;
        sender
            .send_binary(data_frame(id, offset as u64, &data[offset..offset + CHUNK]))
            .await;
    }
    let part = receive(receiver, id, 0, (chunks * CHUNK) as u64).await;
    assert!(part == data[..chunks * CHUNK]);
    let target = (chunks * CHUNK) as u64;
    loop {
        if sender.next_of("progress").await["offset"].as_u64().unwrap() == target {
            return target;
        }
    }
}

/// Sends the rest of `data` from `acked` after a resume; both sides must end with the
/// whole file's digest, and the receiver with exactly the remaining bytes.
pub async fn finish_from(
    mut sender: Client,
    receiver: &mut Client,
    id: Uuid,
    data: &[u8],
    acked: u64,
) {
    let rest = data.to_vec();
    let sending = tokio::spawn(async move {
        stream(&mut sender, id, &rest, acked).await;
        complete_of(&mut sender, id).await
    });
    let tail = receive(receiver, id, acked, data.len() as u64).await;
    assert!(
        tail == data[acked as usize..],
        "the bytes after the resume differ"
    );
    let expected = sha256_hex(data);
    for done in [complete_of(receiver, id).await, sending.await.unwrap()] {
        assert_eq!(
            (done["type"].as_str(), done["sha256"].as_str()),
            (Some("complete"), Some(expected.as_str())),
            "{done}"
        );
    }
}

/// Alice (on `nodes[0]`) offers a file to room `crew`, where bob, carol and dave (on
/// `nodes[1..]`) have joined, and each of them accepts. Returns (alice, the members, the
/// transfer, the data).
pub async fn room_offer_across(
    nodes: [&Node; 4],
    len: usize,
    seed: u64,
) -> (Client, Vec<Client>, Uuid, Vec<u8>) {
    let mut alice = Client::new_user(nodes[0], "alice").await;
    alice.join("crew", None).await;
    let mut members = Vec::new();
    for (node, name) in nodes[1..].iter().zip(["bob", "carol", "dave"]) {
        let mut member = Client::new_user(node, name).await;
        member.join("crew", None).await;
        members.push(member);
    }
    let data = random_bytes(len, seed);
    let size = data.len() as u64;
    let id = offer(&mut alice, json!({"room": "crew"}), "team.bin", size, None).await;
    for member in &mut members {
        accept(member, id, size).await;
    }
    (alice, members, id, data)
}
