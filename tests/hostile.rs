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
use tokio::io::AsyncReadExt;

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

/// A user who sends up to 64 MiB of pings (for at most 6 s) and never reads a pong;
/// returns the connection and the bytes sent.
async fn ping_flood(node: &Node, name: &str) -> (RawConn, usize) {
    let mut flood = RawConn::upgrade(node).await;
    let hello = json!({"type": "hello", "name": name}).to_string();
    assert!(
        flood
            .write(&client_frame(true, 0x1, hello.as_bytes()))
            .await
    );
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
    (flood, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_is_bounded_and_closed() {
    let node = Node::start(Backend::Sqlite).await;
    let before = rss_kib(&node);
    let (mut flood, sent) = ping_flood(&node, "pinger").await;
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

/// Uploads `data` in one request (creation-with-upload); its id, or the refusal's status.
async fn upload_bytes(node: &Node, token: &str, data: &[u8]) -> Result<String, u16> {
    let mut conn = RawConn::open(node).await;
    let headers = tus_headers(
        token,
        &[
            format!("Upload-Length: {}", data.len()),
            "Content-Type: application/offset+octet-stream".into(),
            format!("Content-Length: {}", data.len()),
        ],
    );
    conn.head("POST", "/files/", &headers).await;
    // A refusal may come before the body is all sent, and close the connection.
    let _ = conn.write(data).await;
    let created = conn.response().await;
    if created.status != 201 {
        return Err(created.status);
    }
    let location = created.header("Location").expect("Location");
    Ok(location.rsplit('/').next().expect("id").to_owned())
}

/// Uploads `data` (creation-with-upload) and makes a link for it with `max_downloads`;
/// returns the link's path.
async fn shared_file(node: &Node, token: &str, data: &[u8], max_downloads: u64) -> String {
    let id = upload_bytes(node, token, data).await.expect("the upload");
    let body = json!({"upload": id, "max_downloads": max_downloads}).to_string();
    let mut conn = RawConn::open(node).await;
    let headers = [
        format!("Authorization: Bearer {token}"),
        "Content-Type: application/json".into(),
        format!("Content-Length: {}", body.len()),
    ];
    conn.head("POST", "/api/shares", &headers).await;
    assert!(conn.write(body.as_bytes()).await);
    let link = conn.response().await;
    assert_eq!(link.status, 201, "{}", String::from_utf8_lossy(&link.body));
    let link: serde_json::Value = serde_json::from_slice(&link.body).unwrap();
    link["url"].as_str().unwrap().to_owned()
}

/// `GET path` with an optional `Range` header value.
async fn get_range(node: &Node, path: &str, range: Option<&str>) -> common::raw::RawResponse {
    let mut conn = RawConn::open(node).await;
    let headers: Vec<String> = range.iter().map(|r| format!("Range: {r}")).collect();
    conn.head("GET", path, &headers).await;
    conn.response().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_never_get_more_than_the_links_downloads() {
    let node = Node::start(Backend::Sqlite).await;
    let alice = Client::new_user(&node, "alice").await;
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    let link = shared_file(&node, &alice.token, &data, 1).await;
    let whole = get_range(&node, &link, None).await;
    assert_eq!(whole.status, 200);
    assert!(whole.body == data, "the one download returns the file");
    let size = data.len();
    for range in [
        format!("bytes=-{size}"),
        "bytes=00-".into(),
        "bytes= 0-".into(),
        "BYTES=0-".into(),
        "bytes=0-,1-".into(),
        "bytes=1-".into(),
        format!("bytes={}-", size / 2),
    ] {
        let again = get_range(&node, &link, Some(&range)).await;
        assert!(
            again.status == 410 || again.status == 416,
            "Range {range:?} after the one download: {} with {} bytes",
            again.status,
            again.body.len()
        );
    }

    // A download that breaks off can be resumed from where it stopped, once.
    let link = shared_file(&node, &alice.token, &data, 1).await;
    // A client that reads what it is sent (a small receive buffer, so that little waits
    // unread in its kernel when it breaks off).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let stream = socket
        .connect(([127, 0, 0, 1], node.port).into())
        .await
        .unwrap();
    let mut broken = RawConn::from_stream(stream);
    broken.head("GET", &link, &[]).await;
    let mut got = Vec::new();
    while got.len() < 1 << 20 {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = tokio::io::AsyncReadExt::read(&mut broken.stream, &mut chunk)
            .await
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    drop(broken);
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let have = got.len() - head_end;
    let rest = get_range(&node, &link, Some(&format!("bytes={have}-"))).await;
    assert_eq!(rest.status, 206, "the resume of the one download");
    let mut joined = got[head_end..].to_vec();
    joined.extend_from_slice(&rest.body);
    assert!(joined == data, "the resumed download is the file");
    assert_eq!(get_range(&node, &link, None).await.status, 410);
    assert_eq!(get_range(&node, &link, Some("bytes=0-")).await.status, 410);
}

/// Sends a byte of body every second until the node answers; the answer's status, or
/// `None` if it never answered within 30 s.
async fn trickle(mut conn: RawConn) -> Option<u16> {
    for _ in 0..30 {
        if let Some(response) = conn.response_within(Duration::from_secs(1)).await {
            return Some(response.status);
        }
        if !conn.write(b" ").await {
            return None;
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_bodies_time_out_and_plain_connections_per_address_are_capped() {
    let data = common::NodeData::fresh(Backend::Sqlite);
    let node = Node::start_with(data, &[("PEERLINK_HTTP_CONNECTIONS_PER_ADDRESS", "8")]).await;
    let mut slow = Vec::new();
    for _ in 0..8 {
        // One answered request first: the connection is surely counted.
        let mut conn = RawConn::open(&node).await;
        conn.head("GET", "/healthz", &[]).await;
        assert_eq!(conn.response().await.status, 200);
        let headers = [
            "Content-Type: application/json".into(),
            "Content-Length: 200".into(),
        ];
        conn.head("POST", "/api/sessions", &headers).await;
        assert!(conn.write(b"{").await);
        slow.push(conn);
    }
    // The ninth connection from this address is refused at once, and closed.
    let mut ninth = RawConn::open(&node).await;
    ninth.head("GET", "/healthz", &[]).await;
    assert_eq!(ninth.response().await.status, 429);
    assert!(ninth.closed_within(Duration::from_secs(5)).await);
    // Each trickle ends with 408 once it falls behind, and gives its place back.
    let statuses = futures_util::future::join_all(slow.into_iter().map(trickle)).await;
    assert!(
        statuses.iter().all(|s| *s == Some(408)),
        "trickled bodies: {statuses:?}"
    );
    let mut back = false;
    for _ in 0..50 {
        if healthy_within(&node, STILL_ANSWERS).await {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        back,
        "the places come back once the node closed the sockets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_place_is_given_back_only_when_its_socket_closes() {
    let data = common::NodeData::fresh(Backend::Sqlite);
    let node = Node::start_with(data, &[("PEERLINK_CONNECTIONS_PER_ADDRESS", "1")]).await;
    // The node gives up on this reader; the socket stays open on our side.
    let (stuck, _) = ping_flood(&node, "stuck").await;
    let (_, status) = RawConn::try_upgrade(&node).await;
    assert_eq!(
        status, 429,
        "the stuck socket still holds the address's one place"
    );
    drop(stuck);
    let mut upgraded = false;
    for _ in 0..50 {
        if RawConn::try_upgrade(&node).await.1 == 101 {
            upgraded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(upgraded, "the place comes back once the socket is closed");
}

const CHUNK: usize = 256 * 1024;
const WINDOW: usize = 4 * 1024 * 1024;

fn data_frame(transfer: &str, offset: u64, len: usize) -> Vec<u8> {
    let id: uuid::Uuid = transfer.parse().unwrap();
    let mut frame = Vec::with_capacity(24 + len);
    frame.extend_from_slice(id.as_bytes());
    frame.extend_from_slice(&offset.to_be_bytes());
    frame.resize(24 + len, 0x5a);
    frame
}

/// The next `kind` frame about `transfer`.
async fn transfer_frame(
    client: &mut Client,
    kind: &'static str,
    transfer: &str,
) -> serde_json::Value {
    let transfer = transfer.to_owned();
    client
        .next_matching(move |f| f["type"] == kind && f["transfer"] == transfer.as_str())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_transfers_pause_and_the_node_bounds_what_they_hold() {
    let data = common::NodeData::fresh(Backend::Sqlite);
    let two_windows = (2 * WINDOW).to_string();
    let node = Node::start_with(
        data,
        &[
            ("PEERLINK_TRANSFER_STALL_SECS", "2"),
            ("PEERLINK_TRANSFER_MEMORY_BYTES", &two_windows),
        ],
    )
    .await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    let mut transfers = Vec::new();
    for n in 0..3 {
        let offer = json!({"type": "offer", "to": bob.user_id, "name": format!("f{n}"),
            "size": 2 * WINDOW, "mime": "application/octet-stream"});
        let offered = alice.request(offer).await;
        assert_eq!(offered["type"], "offered", "{offered}");
        let id = offered["transfer"].as_str().unwrap().to_owned();
        transfer_frame(&mut bob, "offer", &id).await;
        bob.send(json!({"type": "accept", "transfer": id, "offset": 0}))
            .await;
        transfer_frame(&mut alice, "accepted", &id).await;
        transfers.push(id);
    }
    // Two windows are all the node may hold: the third waits, paused.
    let waiting = transfer_frame(&mut alice, "paused", &transfers[2]).await;
    assert_eq!(waiting["offset"], 0);
    // A full window on each of the first two; bob reads it and never acknowledges.
    for id in &transfers[..2] {
        for offset in (0..WINDOW).step_by(CHUNK) {
            alice
                .send_binary(data_frame(id, offset as u64, CHUNK))
                .await;
        }
    }
    for id in &transfers[..2] {
        let paused = transfer_frame(&mut bob, "paused", id).await;
        assert_eq!(paused["offset"], 0, "nothing was acknowledged");
        transfer_frame(&mut alice, "paused", id).await;
    }
    // Their memory is free again, so the third goes on.
    transfer_frame(&mut alice, "resume", &transfers[2]).await;
    transfer_frame(&mut bob, "resume", &transfers[2]).await;
    let (_, metrics) = node.get("/metrics").await;
    assert!(
        metrics.contains("peerlink_transfers_stalled_total 2"),
        "{metrics}"
    );
    // A stalled receiver takes its transfer up again with accept at the offset.
    bob.send(json!({"type": "accept", "transfer": transfers[0], "offset": 0}))
        .await;
    transfer_frame(&mut alice, "resume", &transfers[0]).await;
}

/// A small tmpfs of its own for a node's data, unmounted when dropped. Needs root (as
/// `tests/run.sh` has in CI): the test fails, rather than passes, without it.
struct SmallVolume {
    dir: std::path::PathBuf,
}

impl SmallVolume {
    fn mount(mib: u64) -> SmallVolume {
        let dir = tempfile::Builder::new()
            .prefix("peerlink-small-volume-")
            .tempdir()
            .unwrap()
            .keep();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(mounted, "mounting a {mib} MiB tmpfs needs root");
        SmallVolume { dir }
    }

    /// Writes a file until the volume has at most `leave` bytes free; returns its path.
    fn fill(&self, leave: u64) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![1u8; 64 * 1024];
        while free_bytes(&self.dir) > leave {
            let room = usize::try_from(free_bytes(&self.dir) - leave).unwrap_or(usize::MAX);
            if file.write_all(&block[..room.min(block.len())]).is_err() {
                break;
            }
        }
        file.sync_all().ok();
        path
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn free_bytes(dir: &std::path::Path) -> u64 {
    let output = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_cannot_take_the_disk_that_chat_needs() {
    const MIB: usize = 1024 * 1024;
    let volume = SmallVolume::mount(48);
    let data = common::NodeData {
        dir: volume.dir.clone(),
        database_url: format!("sqlite://{}/peerlink.db", volume.dir.display()),
    };
    let reserve = (16 * MIB).to_string();
    let node = Node::start_with(data, &[("PEERLINK_DISK_RESERVE_BYTES", &reserve)]).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("lobby", None).await;
    assert_eq!(alice.say("lobby", "before").await["seq"], 1);

    // Uploads may fill the volume down to the reserve, and no further.
    assert_eq!(
        upload_bytes(&node, &alice.token, &vec![3; 40 * MIB]).await,
        Err(507)
    );
    let kept = upload_bytes(&node, &alice.token, &vec![3; 20 * MIB])
        .await
        .expect("fits");
    assert_eq!(
        upload_bytes(&node, &alice.token, &vec![3; 12 * MIB]).await,
        Err(507)
    );
    assert_eq!(alice.say("lobby", "chat still works").await["seq"], 2);
    assert_eq!(node.get("/readyz").await.0, 200);

    // Something else fills the volume: the node says it is not ready, and users can still
    // sign in and delete (signing in writes nothing it needs).
    let filler = volume.fill(0);
    let (status, body) = node.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    // Chat refuses messages at once once the node has seen the disk full (it measures the
    // free space twice a second and exports it).
    let mut seen_full = false;
    for _ in 0..100 {
        let (_, metrics) = node.get("/metrics").await;
        let free = metrics
            .lines()
            .find_map(|l| l.strip_prefix("peerlink_disk_free_bytes "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if free.is_some_and(|free| free < MIB as u64) {
            seen_full = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_full, "the node reports its disk full");
    let refused = alice
        .request(json!({"type": "say", "room": "lobby", "text": "on a full disk"}))
        .await;
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("disk is full"));
    let mut describe = RawConn::open(&node).await;
    let path = format!("/api/uploads/{kept}");
    describe
        .head("GET", &path, &tus_headers(&alice.token, &[]))
        .await;
    assert_eq!(
        describe.response().await.status,
        200,
        "authenticated on a full disk"
    );
    // A little room (as a cleaner would make) and the user deletes the file.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(
            std::fs::metadata(&filler)
                .unwrap()
                .len()
                .saturating_sub(2 * MIB as u64),
        )
        .unwrap();
    let mut delete = RawConn::open(&node).await;
    let path = format!("/files/{kept}");
    delete
        .head("DELETE", &path, &tus_headers(&alice.token, &[]))
        .await;
    assert_eq!(delete.response().await.status, 204);
    assert_eq!(node.get("/readyz").await.0, 200, "ready again");
    // Chat takes messages again once the node has seen the room (gapless: seq 3).
    let mut after = None;
    for _ in 0..100 {
        let reply = alice
            .request(json!({"type": "say", "room": "lobby", "text": "after"}))
            .await;
        if reply["type"] == "message" {
            after = reply["seq"].as_u64();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(after, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_hosts_from_strangers_do_not_make_a_foreign_origin_ours() {
    let node = Node::start(Backend::Sqlite).await;
    for forged in [
        "X-Forwarded-Host: evil.example",
        "Forwarded: host=evil.example;proto=http",
    ] {
        let extra = ["Origin: http://evil.example".into(), forged.into()];
        let (_, status) = RawConn::upgrade_with(&node, &extra).await;
        assert_eq!(status, 403, "{forged}");
    }
    // The node's own origin still opens a WebSocket.
    let (_, status) = RawConn::try_upgrade(&node).await;
    assert_eq!(status, 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unparseable_frames_costs_budget_and_ends_in_1008() {
    let node = Node::start(Backend::Sqlite).await;
    let mut bystander = Client::new_user(&node, "bystander").await;
    bystander.join("lobby", None).await;
    let flooder = RawConn::upgrade(&node).await;
    let (mut reader, mut writer) = flooder.stream.into_split();
    let hello = json!({"type": "hello", "name": "flooder"}).to_string();
    let hello = client_frame(true, 0x1, hello.as_bytes());
    tokio::io::AsyncWriteExt::write_all(&mut writer, &hello)
        .await
        .unwrap();
    // It reads what it is sent (errors), and sends up to 300 frames of 60 KiB of junk
    // within 10 s: the node stops it long before.
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(15), reader.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&chunk[..n]),
                _ => return got,
            }
        }
    });
    let junk = client_frame(true, 0x1, "{".repeat(60 * 1024).as_bytes());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for _ in 0..300 {
        let write = tokio::io::AsyncWriteExt::write_all(&mut writer, &junk);
        if !matches!(tokio::time::timeout_at(deadline, write).await, Ok(Ok(()))) {
            break;
        }
    }
    assert_eq!(bystander.say("lobby", "still served").await["seq"], 1);
    let received = reading.await.unwrap();
    let close = received
        .windows(4)
        .rposition(|w| w[0] == 0x88 && w[1] >= 2)
        .map(|at| u16::from_be_bytes([received[at + 2], received[at + 3]]));
    assert_eq!(
        close,
        Some(1008),
        "a client that keeps sending through rate_limited is let go, and its socket closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_replay_or_history_never_overflows_the_readers_queue() {
    let data = common::NodeData::fresh(Backend::Sqlite);
    let settings = [
        ("PEERLINK_RATE_PER_SEC", "100000"),
        ("PEERLINK_RATE_BURST", "100000"),
    ];
    let node = Node::start_with(data, &settings).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("big", None).await;
    // 600 messages of 16 KB: 9.6 MB, more than a connection's 8 MiB outbound queue.
    let text = "😀".repeat(4000);
    for _ in 0..600 {
        alice.say("big", &text).await;
    }
    let mut bob = Client::new_user(&node, "bob").await;
    let joined = bob.join("big", Some(0)).await;
    assert_eq!(joined["truncated"], true, "{}", joined["type"]);
    let mut replayed = Vec::new();
    loop {
        let message = bob.next_message("big").await;
        let seq = message["seq"].as_u64().unwrap();
        replayed.push(seq);
        if seq == 600 {
            break;
        }
    }
    assert!(replayed.len() < 600, "only what fits is replayed");
    assert_eq!(
        replayed,
        (replayed[0]..=600).collect::<Vec<_>>(),
        "the newest, without gaps"
    );
    // The rest comes by history, a page at a time, each page bounded.
    let page = bob
        .request(json!({"type": "history", "room": "big", "before": replayed[0], "limit": 200}))
        .await;
    let messages = page["messages"].as_array().unwrap();
    assert!(
        !messages.is_empty() && messages.len() < 200,
        "{}",
        messages.len()
    );
    assert_eq!(
        messages.last().unwrap()["seq"].as_u64(),
        Some(replayed[0] - 1)
    );
    // Still connected.
    assert_eq!(bob.request(json!({"type": "ping"})).await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_an_upload_counts_as_creating_a_share_link() {
    let data = common::NodeData::fresh(Backend::Sqlite);
    let node = Node::start_with(data, &[("PEERLINK_CREATIONS_PER_MINUTE", "3")]).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("lobby", None).await;
    let upload = upload_bytes(&node, &alice.token, b"a small file")
        .await
        .unwrap();
    let post = |n: u32| json!({"type": "say", "room": "lobby", "text": format!("post {n}"), "upload": upload});
    assert_eq!(alice.request(post(1)).await["type"], "message");
    assert_eq!(alice.request(post(2)).await["type"], "message");
    let refused = alice.request(post(3)).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_to_oneself_are_refused_and_unanswered_offers_leave_room() {
    let data = common::NodeData::fresh(Backend::Sqlite);
    let node = Node::start_with(data, &[("PEERLINK_TRANSFERS_PER_NODE", "4")]).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    let offer = |to: &str, n: u32| {
        json!({"type": "offer", "to": to, "name": format!("f{n}"), "size": 10,
            "mime": "application/octet-stream"})
    };
    let own = alice.user_id.clone();
    let refused = alice.request(offer(&own, 0)).await;
    assert_eq!(refused["code"], "bad_request", "{refused}");
    // Two offers nobody answers take half of the node's four places, and no more.
    let to_bob = bob.user_id.clone();
    let first = alice.request(offer(&to_bob, 1)).await;
    assert_eq!(first["type"], "offered");
    assert_eq!(alice.request(offer(&to_bob, 2)).await["type"], "offered");
    let third = alice.request(offer(&to_bob, 3)).await;
    assert_eq!(third["code"], "unavailable", "{third}");
    // An accepted one frees its place among the unanswered.
    let id = first["transfer"].as_str().unwrap().to_owned();
    transfer_frame(&mut bob, "offer", &id).await;
    bob.send(json!({"type": "accept", "transfer": id, "offset": 0}))
        .await;
    transfer_frame(&mut alice, "accepted", &id).await;
    assert_eq!(alice.request(offer(&to_bob, 4)).await["type"], "offered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_hears_offered_first_and_transfer_errors_carry_re() {
    let node = Node::start(Backend::Sqlite).await;
    let mut alice = Client::new_user(&node, "alice").await;
    let mut bob = Client::new_user(&node, "bob").await;
    alice
        .send(json!({"type": "offer", "id": "o1", "to": bob.user_id, "name": "f", "size": 1000}))
        .await;
    let offer = bob.next_of("offer").await;
    let id = offer["transfer"].as_str().unwrap().to_owned();
    bob.send(json!({"type": "accept", "id": "a1", "transfer": id, "offset": 0}))
        .await;
    let first = alice.next().await;
    assert_eq!(first["type"], "offered", "before anything else: {first}");
    assert_eq!(first["re"], "o1");
    transfer_frame(&mut alice, "accepted", &id).await;
    // Errors about frames with an id answer them with `re`.
    bob.send(json!({"type": "ack", "id": "k1", "transfer": id, "offset": 999}))
        .await;
    let error = bob.next_of("error").await;
    assert_eq!(error["re"], "k1", "{error}");
    assert_eq!(error["transfer"], id.as_str());
    bob.send(json!({"type": "accept", "id": "a2", "transfer": id, "offset": 5}))
        .await;
    assert_eq!(bob.next_of("error").await["re"], "a2");
    alice
        .send(json!({"type": "end", "id": "e1", "transfer": id}))
        .await;
    assert_eq!(alice.next_of("error").await["re"], "e1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_asks_clients_to_reconnect_and_stops_promptly() {
    let mut node = Node::start(Backend::Sqlite).await;
    let mut alice = Client::new_user(&node, "alice").await;
    alice.join("lobby", None).await;
    assert_eq!(alice.say("lobby", "before the stop").await["seq"], 1);
    let stopped = tokio::task::block_in_place(|| node.sigterm(Duration::from_secs(10)));
    assert!(stopped, "the node exits cleanly within 10 s of SIGTERM");
    assert_eq!(alice.closed().await.map(u16::from), Some(1012));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_on_an_empty_shared_file_is_served_whole() {
    let node = Node::start(Backend::Sqlite).await;
    let alice = Client::new_user(&node, "alice").await;
    let link = shared_file(&node, &alice.token, b"", 3).await;
    for range in ["bytes=-5", "bytes=0-", "bytes=0-0"] {
        let response = get_range(&node, &link, Some(range)).await;
        assert_eq!(response.status, 200, "{range}");
        assert!(response.body.is_empty());
    }
    assert!(healthy_within(&node, STILL_ANSWERS).await);
}
