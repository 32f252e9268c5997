//! Hostile clients: each test is one way a single client (an outsider or an ordinary user)
//! tried to freeze the node, exhaust its memory or get around a limit. Each asserts what the
//! victims would notice: the node still answers `/healthz`, bystanders still get their
//! replies, the node's memory stays bounded, the exact status or close code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::{client_frame, client_frame_header, healthy_within, rss_kib, RawConn};
use common::{Backend, Client, Node};
use serde_json::json;
use std::time::Duration;

/// How quickly a healthy node answers `/healthz` while it is under attack.
const STILL_ANSWERS: Duration = Duration::from_secs(5);

fn tus_headers(token: &str, extra: &[String]) -> Vec<String> {
    let mut headers = vec![
        "Tus-Resumable: 1.0.0".to_owned(),
        format!("Authorization: Bearer {token}"),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// Creates an empty upload of `length` bytes; returns its path.
async fn create_upload(node: &Node, token: &str, length: u64) -> String {
    let mut conn = RawConn::open(node).await;
    let headers = tus_headers(
        token,
        &[
            format!("Upload-Length: {length}"),
            "Content-Length: 0".into(),
        ],
    );
    conn.head("POST", "/files/", &headers).await;
    let response = conn.response().await;
    assert_eq!(response.status, 201, "create an upload");
    let location = response.header("Location").expect("Location").to_owned();
    format!("/files/{}", location.rsplit('/').next().expect("id"))
}

/// Starts a `PATCH` of `length` bytes at `offset` and sends only `sent` of them.
async fn start_patch(
    node: &Node,
    token: &str,
    (path, offset): (&str, u64),
    length: u64,
    sent: usize,
) -> RawConn {
    let mut conn = RawConn::open(node).await;
    let headers = tus_headers(
        token,
        &[
            format!("Upload-Offset: {offset}"),
            "Content-Type: application/offset+octet-stream".into(),
            format!("Content-Length: {length}"),
        ],
    );
    conn.head("PATCH", path, &headers).await;
    assert!(conn.write(&vec![7u8; sent]).await);
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_patches_get_409_and_the_node_keeps_answering() {
    let node = Node::start(Backend::Sqlite).await;
    let alice = Client::new_user(&node, "alice").await;
    let path = create_upload(&node, &alice.token, 2 << 20).await;

    let mut first = start_patch(&node, &alice.token, (&path, 0), 1 << 20, 4096).await;
    let mut second = start_patch(&node, &alice.token, (&path, 0), 1 << 20, 4096).await;
    // Whichever got the upload waits for the rest of its body; the other is refused.
    let patience = Duration::from_secs(2);
    let (a, b) = tokio::join!(
        first.response_within(patience),
        second.response_within(patience)
    );
    let (mut holder, refused) = match (a, b) {
        (None, Some(refused)) => (first, refused),
        (Some(refused), None) => (second, refused),
        other => panic!("expected one PATCH refused and one waiting, got {other:?}"),
    };
    assert_eq!(refused.status, 409, "a second PATCH of a busy upload");
    assert!(holder.write(&vec![7u8; (1 << 20) - 4096]).await);
    let done = holder.response().await;
    assert_eq!(done.status, 204);
    assert_eq!(done.header("Upload-Offset"), Some("1048576"));
    assert!(
        healthy_within(&node, STILL_ANSWERS).await,
        "the node still answers /healthz after the overlapping PATCHes"
    );
    // A DELETE during a PATCH waits for it, then removes the upload.
    let patch = start_patch(&node, &alice.token, (&path, 1 << 20), 1 << 20, 1000).await;
    drop(patch);
    let mut delete = RawConn::open(&node).await;
    delete
        .head("DELETE", &path, &tus_headers(&alice.token, &[]))
        .await;
    assert_eq!(delete.response().await.status, 204);
    let mut head = RawConn::open(&node).await;
    head.head("HEAD", &path, &tus_headers(&alice.token, &[]))
        .await;
    assert_eq!(head.response().await.status, 404);
    assert!(healthy_within(&node, STILL_ANSWERS).await);
}

/// Writes zeros to `conn` until the node stops taking them, `limit` bytes or `within`.
async fn stream_zeros(conn: &mut RawConn, limit: usize, within: Duration) -> usize {
    let zeros = vec![0u8; 256 * 1024];
    let mut sent = 0;
    let deadline = tokio::time::Instant::now() + within;
    while sent < limit && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, conn.write(&zeros)).await {
            Ok(true) => sent += zeros.len(),
            _ => break,
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_frame_is_refused_from_its_header() {
    let node = Node::start(Backend::Sqlite).await;
    let before = rss_kib(&node);
    // Before hello: a binary frame of 2^40 bytes, then as many zeros as the node takes.
    let mut attackers = Vec::new();
    for _ in 0..4 {
        let mut conn = RawConn::upgrade(&node).await;
        assert!(conn.write(&client_frame_header(true, 0x2, 1 << 40)).await);
        attackers.push(conn);
    }
    let floods = attackers
        .iter_mut()
        .map(|conn| stream_zeros(conn, 1 << 30, Duration::from_secs(3)));
    futures_util::future::join_all(floods).await;
    let grown_mib = rss_kib(&node).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "four 2^40-byte frames grew the node by {grown_mib} MiB"
    );
    for conn in &mut attackers {
        assert!(conn.closed_within(Duration::from_secs(10)).await);
    }
    assert!(healthy_within(&node, STILL_ANSWERS).await);

    // The refusal comes as close 1009, for a single frame and for a run of continuations.
    let mut single = RawConn::upgrade(&node).await;
    assert!(single.write(&client_frame_header(true, 0x2, 1 << 40)).await);
    assert_eq!(
        single.close_code_within(Duration::from_secs(5)).await,
        Some(1009)
    );
    let mut continued = RawConn::upgrade(&node).await;
    assert!(
        continued
            .write(&client_frame(false, 0x1, b"{\"type\":"))
            .await
    );
    assert!(
        continued
            .write(&client_frame_header(true, 0x0, 1 << 40))
            .await
    );
    assert_eq!(
        continued.close_code_within(Duration::from_secs(5)).await,
        Some(1009),
        "an oversize continuation closes with 1009"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_is_bounded_and_closed() {
    let node = Node::start(Backend::Sqlite).await;
    let before = rss_kib(&node);
    let mut flood = RawConn::upgrade(&node).await;
    let hello = json!({"type": "hello", "name": "pinger"}).to_string();
    assert!(
        flood
            .write(&client_frame(true, 0x1, hello.as_bytes()))
            .await
    );
    // 64 MiB of pings with the largest payload, never reading a pong.
    let ping = client_frame(true, 0x9, &[b'p'; 125]);
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 2048)
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut sent = 0usize;
    while sent < 64 << 20 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, flood.write(&batch)).await {
            Ok(true) => sent += batch.len(),
            _ => break,
        }
    }
    let grown_mib = rss_kib(&node).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 48,
        "{} MiB of pings grew the node by {grown_mib} MiB",
        sent >> 20
    );
    assert!(healthy_within(&node, STILL_ANSWERS).await);
    let mut bystander = Client::new_user(&node, "bystander").await;
    bystander.join("lobby", None).await;
    assert_eq!(bystander.say("lobby", "still fine").await["seq"], 1);
    // Reading now, the flooder finds itself told off (1008) and disconnected.
    assert_eq!(
        flood.close_code_within(Duration::from_secs(20)).await,
        Some(1008)
    );
}
