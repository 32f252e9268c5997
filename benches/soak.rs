//! `peerlink-soak`: runs one release `peerlink` node for `--minutes` under a steady, mixed
//! workload on loopback and samples it every `--sample-secs`.
//!
//! Well-behaved clients (every error they see is counted; there must be none):
//! - chat: `--chat-connections` connections in `--rooms` rooms say messages at a fixed
//!   total `--rate`; latency is from writing the `say` to reading the `message`, over every
//!   delivery (as in `load.rs`); every member checks that `seq` goes up by exactly one.
//! - transfers: every `--transfer-every-secs`, one `--transfer-size` file from one
//!   connection to another with flow control; both `complete.sha256` and the receiver's
//!   own digest must equal the SHA-256 of what was sent.
//! - uploads: every `--upload-every-secs`, a tus upload of `--upload-size` bytes, a share
//!   link, a download of it compared byte for byte, a DELETE, and checks that the link and
//!   the upload are gone.
//!
//! Misbehaving clients (`--misbehaving` of each kind, started again when the node is done
//! with them; what the node did to them is tallied):
//! - `ping_flood`: WebSocket pings, never reading the pongs (expected: close 1008);
//! - `garbage`: bursts of unparseable text frames (expected: `bad_request`, then
//!   `rate_limited`, then close 1008);
//! - `stalled_receiver`: accepts a transfer and never acknowledges (expected: `paused`);
//! - `trickle`: an HTTP request body sent a byte a second (expected: 408).
//!
//! Output: one JSON document (`--json PATH`, rewritten after every sample so a run that
//! dies leaves what it had; stdout if not given). Exit status 1 if a well-behaved client
//! saw an unexpected error or a digest mismatch, or the node died.
//!
//!     cargo build --release
//!     cargo bench --bench soak -- --minutes 60 --json docs/soak.json
//!     /work/soak-venv/bin/python benches/plot_soak.py docs/soak.json docs/soak.png
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use clap::Parser;
use common::{
    cpu_of, file_bytes_seeded, hello, join, percentile, raise_open_file_limit, sha256_hex,
    stamp_of, text, Identity, NodeProcess, Socket,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const ADMIN_TOKEN: &str = "soak-tool-admin-token";
const CHUNK: usize = 256 * 1024;
const WINDOW: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Parser)]
#[command(about = "Run a PeerLink node for a long time under a mixed load and sample it")]
struct Args {
    /// The node binary (a release build).
    #[arg(long, default_value = "target/release/peerlink")]
    node: String,
    /// How long the workload runs, in minutes.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Seconds between two samples.
    #[arg(long, default_value_t = 10.0)]
    sample_secs: f64,
    #[arg(long, default_value_t = 200)]
    chat_connections: usize,
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// Total chat messages per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Bytes of each relayed file.
    #[arg(long, default_value_t = 64 << 20)]
    transfer_size: u64,
    #[arg(long, default_value_t = 60.0)]
    transfer_every_secs: f64,
    /// Bytes of each tus upload.
    #[arg(long, default_value_t = 4 << 20)]
    upload_size: u64,
    #[arg(long, default_value_t = 60.0)]
    upload_every_secs: f64,
    /// Misbehaving clients of each kind.
    #[arg(long, default_value_t = 2)]
    misbehaving: usize,
    /// SQLite durability of the node under test (full or normal).
    #[arg(long, default_value = "full")]
    sqlite_sync: String,
    /// Where the JSON document goes (stdout if not given).
    #[arg(long)]
    json: Option<String>,
    /// Where the node's stderr goes.
    #[arg(long, default_value = "/tmp/peerlink-soak-node.log")]
    node_log: String,
    /// A free-form note kept in the output (e.g. what else ran on the machine).
    #[arg(long, default_value = "")]
    note: String,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

/// Outcome counts of one kind of client, by name.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, what: impl Into<String>) {
        *self.0.lock().unwrap().entry(what.into()).or_insert(0) += 1;
    }
    fn json(&self) -> Value {
        json!(self.0.lock().unwrap().clone())
    }
}

/// Everything the clients count; the sampler reads it.
struct Shared {
    start: Instant,
    port: u16,
    chat_sent: AtomicU64,
    chat_acked: AtomicU64,
    chat_delivered: AtomicU64,
    /// Latencies (µs) since the last sample.
    latencies: Mutex<Vec<u32>>,
    /// Errors seen by well-behaved clients that nothing explains.
    errors: AtomicU64,
    error_log: Mutex<BTreeMap<String, (u64, f64)>>,
    digest_mismatches: AtomicU64,
    transfers: Tally,
    transfer_mb_per_sec: Mutex<Vec<f64>>,
    uploads: Tally,
    ping_flood: Tally,
    garbage: Tally,
    stalled_receiver: Tally,
    trickle: Tally,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// An error a well-behaved client should never see.
    fn error(&self, who: &str, what: impl AsRef<str>) {
        self.errors.fetch_add(1, Ordering::SeqCst);
        let what: String = what.as_ref().chars().take(300).collect();
        // Group by text without the ids and numbers that make every instance unique.
        let key_text: String = what
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        let key = format!("{who}: {key_text}");
        let at = self.start.elapsed().as_secs_f64();
        eprintln!("peerlink-soak: [{at:.0} s] {who}: {what}");
        self.error_log
            .lock()
            .unwrap()
            .entry(key)
            .and_modify(|(n, _)| *n += 1)
            .or_insert((1, at));
    }
}

/// Sleeps `d`; true if the run was stopped meanwhile (or before).
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

// ---------------------------------------------------------------------------------------
// Chat

struct ChatPace {
    interval: Duration,
}

/// One chat connection for the whole run: says a stamped message every `interval`, reads
/// everything, checks `seq` order and acknowledgements, reconnects if the node drops it
/// (which counts as an error).
async fn chat_client(
    i: usize,
    room: String,
    pace: Arc<ChatPace>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut token: Option<String> = None;
    let name = format!("chat{i}");
    let mut next_id = 0u64;
    loop {
        if *stop.borrow() {
            return;
        }
        let who = match &token {
            Some(t) => Identity::Token(t),
            None => Identity::Name(&name),
        };
        let opened = async {
            let (mut ws, welcome) = hello(shared.port, who).await?;
            let joined = join(&mut ws, &room).await?;
            Ok::<_, String>((ws, welcome, joined))
        }
        .await;
        let (ws, welcome, joined) = match opened {
            Ok(x) => x,
            Err(e) => {
                shared.error("chat", format!("cannot connect: {e}"));
                if sleep_or_stop(Duration::from_secs(1), &mut stop).await {
                    return;
                }
                continue;
            }
        };
        token = welcome["token"].as_str().map(str::to_owned);
        let mut last_seq = joined["last_seq"].as_u64().unwrap_or(0);
        let (mut sink, mut stream) = ws.split();
        let phase = Duration::from_micros(rand::random_range(
            0..pace.interval.as_micros().max(1) as u64,
        ));
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + phase, pace.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Ids and send times of says not yet acknowledged, oldest first.
        let mut outstanding: VecDeque<(u64, Instant)> = VecDeque::new();
        let mut stopping = *stop.borrow();
        let drain_deadline = tokio::time::sleep(Duration::from_secs(3600 * 24));
        tokio::pin!(drain_deadline);
        let mut check = tokio::time::interval(Duration::from_secs(5));
        let ended = loop {
            if stopping && outstanding.is_empty() {
                let _ = sink.send(Message::Close(None)).await;
                return;
            }
            tokio::select! {
                _ = ticker.tick(), if !stopping => {
                    next_id += 1;
                    let frame = format!(
                        r#"{{"type":"say","id":"{next_id}","room":"{room}","text":"t{}"}}"#,
                        shared.now_us()
                    );
                    if let Err(e) = sink.send(Message::text(frame)).await {
                        break format!("send: {e}");
                    }
                    shared.chat_sent.fetch_add(1, Ordering::Relaxed);
                    outstanding.push_back((next_id, Instant::now()));
                }
                message = stream.next() => {
                    let message = match message {
                        None => break "the connection ended".to_owned(),
                        Some(Err(e)) => break format!("read: {e}"),
                        Some(Ok(m)) => m,
                    };
                    match &message {
                        Message::Close(frame) => break format!("closed by the node: {frame:?}"),
                        Message::Text(raw) => {
                            let Some(v) = text(&message) else {
                                shared.error("chat", format!("unreadable frame {raw}"));
                                continue;
                            };
                            match v["type"].as_str() {
                                Some("message") => {
                                    let seq = v["seq"].as_u64().unwrap_or(0);
                                    if seq != last_seq + 1 {
                                        shared.error("chat", format!("seq {seq} after {last_seq} in {room}"));
                                    }
                                    last_seq = last_seq.max(seq);
                                    if let Some(sent_us) = stamp_of(raw) {
                                        shared.chat_delivered.fetch_add(1, Ordering::Relaxed);
                                        let us = shared.now_us().saturating_sub(sent_us);
                                        shared.latencies.lock().unwrap().push(us.min(u32::MAX as u64) as u32);
                                    }
                                    if let Some(re) = v["re"].as_str() {
                                        let re: u64 = re.parse().unwrap_or(0);
                                        match outstanding.front() {
                                            Some((id, _)) if *id == re => {
                                                outstanding.pop_front();
                                                shared.chat_acked.fetch_add(1, Ordering::Relaxed);
                                            }
                                            _ => shared.error("chat", format!("acknowledgement {re} out of order")),
                                        }
                                    }
                                }
                                Some("presence") => {}
                                _ => shared.error("chat", format!("unexpected frame {raw}")),
                            }
                        }
                        _ => {}
                    }
                }
                _ = check.tick() => {
                    while let Some((id, at)) = outstanding.front() {
                        if at.elapsed() < Duration::from_secs(30) { break }
                        shared.error("chat", format!("no acknowledgement of say {id} in 30 s"));
                        outstanding.pop_front();
                    }
                }
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    drain_deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(10));
                }
                _ = &mut drain_deadline, if stopping => {
                    for (id, _) in &outstanding {
                        shared.error("chat", format!("no acknowledgement of say {id} by the end"));
                    }
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            }
        };
        shared.error("chat", ended);
        for (id, _) in outstanding.drain(..) {
            shared.error(
                "chat",
                format!("say {id} unacknowledged when the connection ended"),
            );
        }
        if sleep_or_stop(Duration::from_secs(1), &mut stop).await {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Transfers

/// The next frame about `transfer` of one of `kinds`; other frames about it (and errors)
/// are `Err`; frames about nothing in particular are skipped.
async fn transfer_event(ws: &mut Socket, transfer: &str, kinds: &[&str]) -> Result<Value, String> {
    while let Some(message) = ws.next().await {
        let message = message.map_err(|e| format!("read: {e}"))?;
        if let Message::Close(frame) = &message {
            return Err(format!("closed: {frame:?}"));
        }
        let Some(v) = text(&message) else { continue };
        let kind = v["type"].as_str().unwrap_or("");
        if v["transfer"] == transfer && kinds.contains(&kind) {
            return Ok(v);
        }
        if kind == "error" || v["transfer"] == transfer {
            return Err(format!("unexpected {v}"));
        }
    }
    Err("connection ended".into())
}

struct Pair {
    alice: Option<String>,
    bob: Option<String>,
}

async fn connect_as(
    port: u16,
    token: &mut Option<String>,
    name: &str,
) -> Result<(Socket, String), String> {
    let who = match token {
        Some(t) => Identity::Token(t),
        None => Identity::Name(name),
    };
    let (ws, welcome) = hello(port, who).await?;
    *token = welcome["token"].as_str().map(str::to_owned);
    let id = welcome["user"]["id"]
        .as_str()
        .ok_or("no user id")?
        .to_owned();
    Ok((ws, id))
}

/// One relayed file; returns MB/s.
async fn transfer_round(
    shared: &Shared,
    pair: &mut Pair,
    size: u64,
    round: u64,
) -> Result<f64, String> {
    let port = shared.port;
    let data = Arc::new(file_bytes_seeded(size as usize, round));
    let expected = sha256_hex(&data);
    let (mut alice, _) = connect_as(port, &mut pair.alice, "transfer-alice").await?;
    let (mut bob, bob_id) = connect_as(port, &mut pair.bob, "transfer-bob").await?;
    let offer = json!({"type": "offer", "id": format!("o{round}"), "to": bob_id,
        "name": format!("soak-{round}.bin"), "size": size});
    alice
        .send(Message::text(offer.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    let offered = common::next_of(&mut alice, "offered").await?;
    let transfer = offered["transfer"]
        .as_str()
        .ok_or("no transfer id")?
        .to_owned();
    let id = uuid::Uuid::parse_str(&transfer).map_err(|e| e.to_string())?;
    transfer_event(&mut bob, &transfer, &["offer"]).await?;
    bob.send(Message::text(
        json!({"type": "accept", "transfer": transfer, "offset": 0}).to_string(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    transfer_event(&mut alice, &transfer, &["accepted"]).await?;
    let started = Instant::now();
    let receiver = {
        let transfer = transfer.clone();
        tokio::spawn(async move {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            let mut got = 0u64;
            loop {
                let message = match bob.next().await {
                    None => return Err("receiver: connection ended".to_owned()),
                    Some(Err(e)) => return Err(format!("receiver: read: {e}")),
                    Some(Ok(m)) => m,
                };
                match &message {
                    Message::Binary(frame) => {
                        if frame.len() < 24 || frame[..16] != id.as_bytes()[..] {
                            return Err("receiver: a frame of another transfer".into());
                        }
                        let offset = u64::from_be_bytes(frame[16..24].try_into().unwrap());
                        if offset != got {
                            return Err(format!("receiver: offset {offset}, expected {got}"));
                        }
                        hasher.update(&frame[24..]);
                        got += (frame.len() - 24) as u64;
                        let ack = json!({"type": "ack", "transfer": transfer, "offset": got});
                        bob.send(Message::text(ack.to_string()))
                            .await
                            .map_err(|e| format!("receiver: ack: {e}"))?;
                    }
                    Message::Close(frame) => return Err(format!("receiver: closed {frame:?}")),
                    _ => {
                        let Some(v) = text(&message) else { continue };
                        if v["type"] == "complete" && v["transfer"] == transfer.as_str() {
                            let mine = common::hex(&hasher.finalize());
                            let _ = bob.send(Message::Close(None)).await;
                            return Ok((got, mine, v));
                        }
                        if v["type"] == "error" || v["transfer"] == transfer.as_str() {
                            return Err(format!("receiver: unexpected {v}"));
                        }
                    }
                }
            }
        })
    };
    let sending = async {
        let (mut sent, mut acked) = (0u64, 0u64);
        let mut frame = Vec::with_capacity(24 + CHUNK);
        while sent < size {
            let len = (CHUNK as u64).min(size - sent);
            while sent + len - acked > WINDOW {
                let v = transfer_event(&mut alice, &transfer, &["progress"]).await?;
                acked = v["offset"].as_u64().ok_or("progress without offset")?;
            }
            frame.clear();
            frame.extend_from_slice(id.as_bytes());
            frame.extend_from_slice(&sent.to_be_bytes());
            frame.extend_from_slice(&data[sent as usize..(sent + len) as usize]);
            alice
                .send(Message::binary(frame.clone()))
                .await
                .map_err(|e| format!("sender: {e}"))?;
            sent += len;
        }
        alice
            .send(Message::text(
                json!({"type": "end", "transfer": transfer}).to_string(),
            ))
            .await
            .map_err(|e| format!("sender: end: {e}"))?;
        transfer_event(&mut alice, &transfer, &["complete", "progress"]).await
    };
    let mut done = sending.await;
    while let Ok(v) = &done {
        if v["type"] == "complete" {
            break;
        }
        done = transfer_event(&mut alice, &transfer, &["complete", "progress"]).await;
    }
    let sender_complete = match done {
        Ok(v) => v,
        Err(e) => {
            receiver.abort();
            let cancel = json!({"type": "cancel", "transfer": transfer});
            let _ = alice.send(Message::text(cancel.to_string())).await;
            return Err(format!("sender: {e}"));
        }
    };
    let (got, mine, receiver_complete) = receiver.await.map_err(|e| e.to_string())??;
    let secs = started.elapsed().as_secs_f64();
    let _ = alice.send(Message::Close(None)).await;
    let digests = [
        sender_complete["sha256"].as_str().unwrap_or(""),
        receiver_complete["sha256"].as_str().unwrap_or(""),
        mine.as_str(),
    ];
    if got != size || digests.iter().any(|d| *d != expected) {
        shared.digest_mismatches.fetch_add(1, Ordering::SeqCst);
        return Err(format!(
            "digest mismatch: sent {expected} ({size} bytes), complete says {} / {}, receiver got {got} bytes hashing to {mine}",
            digests[0], digests[1]
        ));
    }
    Ok(size as f64 / secs / 1e6)
}

async fn transfer_loop(args: Arc<Args>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut pair = Pair {
        alice: None,
        bob: None,
    };
    let mut round = 0u64;
    // Start a little after the chat, so the first samples see chat alone too.
    if sleep_or_stop(Duration::from_secs(5), &mut stop).await {
        return;
    }
    loop {
        round += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            Duration::from_secs(180),
            transfer_round(&shared, &mut pair, args.transfer_size, round),
        )
        .await;
        match outcome {
            Ok(Ok(mb_per_sec)) => {
                shared.transfers.add("complete");
                shared.transfer_mb_per_sec.lock().unwrap().push(mb_per_sec);
            }
            Ok(Err(e)) => {
                shared.transfers.add("failed");
                shared.error("transfer", e);
            }
            Err(_) => {
                shared.transfers.add("timed_out");
                shared.error("transfer", "no complete within 180 s");
            }
        }
        let wait =
            Duration::from_secs_f64(args.transfer_every_secs).saturating_sub(started.elapsed());
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Uploads (blocking HTTP with ureq, run on the blocking pool)

fn http_status(result: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response, String> {
    match result {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "HTTP {code}: {}",
            r.into_string().unwrap_or_default()
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn expect_status(
    what: &str,
    result: Result<ureq::Response, ureq::Error>,
    want: u16,
) -> Result<ureq::Response, String> {
    let got = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{what}: {e}")),
    };
    if got.status() != want {
        let status = got.status();
        return Err(format!(
            "{what}: HTTP {status} (expected {want}): {}",
            got.into_string().unwrap_or_default()
        ));
    }
    Ok(got)
}

fn upload_round(base: &str, token: &str, size: usize, round: u64) -> Result<&'static str, String> {
    use base64::Engine;
    use sha2::Digest;
    let b64 = base64::engine::general_purpose::STANDARD;
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let auth = format!("Bearer {token}");
    let data = file_bytes_seeded(size, 1_000_000 + round);
    let expected = sha256_hex(&data);
    let metadata = format!(
        "filename {},filetype {}",
        b64.encode(format!("upload-{round}.bin")),
        b64.encode("application/octet-stream")
    );
    let created = expect_status(
        "create",
        agent
            .post(&format!("{base}/files/"))
            .set("Tus-Resumable", "1.0.0")
            .set("Authorization", &auth)
            .set("Upload-Length", &size.to_string())
            .set("Upload-Metadata", &metadata)
            .send_bytes(&[]),
        201,
    )?;
    let location = created.header("Location").ok_or("no Location")?;
    let id = location
        .rsplit('/')
        .next()
        .ok_or("bad Location")?
        .to_owned();
    let path = format!("{base}/files/{id}");
    // In 1 MiB pieces, each with its checksum.
    let mut offset = 0usize;
    while offset < size {
        let piece = &data[offset..(offset + (1 << 20)).min(size)];
        let digest = b64.encode(sha2::Sha256::digest(piece));
        let patched = expect_status(
            "patch",
            agent
                .request("PATCH", &path)
                .set("Tus-Resumable", "1.0.0")
                .set("Authorization", &auth)
                .set("Upload-Offset", &offset.to_string())
                .set("Content-Type", "application/offset+octet-stream")
                .set("Upload-Checksum", &format!("sha256 {digest}"))
                .send_bytes(piece),
            204,
        )?;
        offset += piece.len();
        let now = patched.header("Upload-Offset").unwrap_or("");
        if now != offset.to_string() {
            return Err(format!("patch: Upload-Offset {now}, expected {offset}"));
        }
    }
    let head = expect_status(
        "head",
        agent
            .head(&path)
            .set("Tus-Resumable", "1.0.0")
            .set("Authorization", &auth)
            .call(),
        200,
    )?;
    if head.header("Upload-Offset") != Some(&size.to_string()) {
        return Err(format!(
            "head: Upload-Offset {:?}",
            head.header("Upload-Offset")
        ));
    }
    let info: Value = http_status(
        agent
            .get(&format!("{base}/api/uploads/{id}"))
            .set("Authorization", &auth)
            .call(),
    )?
    .into_string()
    .map_err(|e| e.to_string())
    .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))?;
    if info["complete"] != true || info["sha256"] != expected.as_str() {
        return Err(format!(
            "DIGEST: upload info {info}, expected sha256 {expected}"
        ));
    }
    let link: Value = expect_status(
        "share",
        agent
            .post(&format!("{base}/api/shares"))
            .set("Authorization", &auth)
            .set("Content-Type", "application/json")
            .send_string(&json!({"upload": id, "max_downloads": 1}).to_string()),
        201,
    )?
    .into_string()
    .map_err(|e| e.to_string())
    .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))?;
    let url = format!("{base}{}", link["url"].as_str().ok_or("no url")?);
    let got = expect_status("download", agent.get(&url).call(), 200)?;
    let etag = got.header("ETag").unwrap_or("").to_owned();
    let mut body = Vec::with_capacity(size);
    std::io::Read::read_to_end(&mut got.into_reader(), &mut body).map_err(|e| e.to_string())?;
    if body != data {
        return Err(format!(
            "DIGEST: the download ({} bytes, sha256 {}) is not what was uploaded ({size} bytes, {expected})",
            body.len(),
            sha256_hex(&body)
        ));
    }
    if etag != format!("\"{expected}\"") {
        return Err(format!("DIGEST: ETag {etag}, expected \"{expected}\""));
    }
    expect_status(
        "delete",
        agent
            .delete(&path)
            .set("Tus-Resumable", "1.0.0")
            .set("Authorization", &auth)
            .call(),
        204,
    )?;
    // protocol.md says 410 once "the file is gone"; this build forgets the link with the
    // upload (ON DELETE CASCADE), so it answers 404. Either way the bytes are not served.
    let after = match agent.get(&url).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => return Err(format!("the link after DELETE: {e}")),
    };
    let outcome = match after {
        410 => "verified",
        404 => "verified_link_404_after_delete",
        other => return Err(format!("the link after DELETE: HTTP {other}")),
    };
    expect_status(
        "HEAD after DELETE",
        agent
            .head(&path)
            .set("Tus-Resumable", "1.0.0")
            .set("Authorization", &auth)
            .call(),
        404,
    )?;
    Ok(outcome)
}

async fn upload_loop(args: Arc<Args>, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let base = format!("http://127.0.0.1:{}", shared.port);
    if sleep_or_stop(Duration::from_secs(15), &mut stop).await {
        return;
    }
    let token = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || -> Result<String, String> {
            let v: Value = http_status(
                ureq::post(&format!("{base}/api/sessions"))
                    .set("Content-Type", "application/json")
                    .send_string(&json!({"name": "uploader"}).to_string()),
            )?
            .into_string()
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))?;
            v["token"]
                .as_str()
                .map(str::to_owned)
                .ok_or("no token".into())
        })
        .await
        .expect("blocking task")
    };
    let token = match token {
        Ok(t) => t,
        Err(e) => return shared.error("upload", format!("no session: {e}")),
    };
    let mut round = 0u64;
    loop {
        round += 1;
        let started = Instant::now();
        let (base, token, size) = (base.clone(), token.clone(), args.upload_size as usize);
        let outcome = tokio::task::spawn_blocking(move || upload_round(&base, &token, size, round))
            .await
            .expect("blocking task");
        match outcome {
            Ok(outcome) => shared.uploads.add(outcome),
            Err(e) => {
                if e.contains("DIGEST") {
                    shared.digest_mismatches.fetch_add(1, Ordering::SeqCst);
                }
                shared.uploads.add("failed");
                shared.error("upload", e);
            }
        }
        let wait =
            Duration::from_secs_f64(args.upload_every_secs).saturating_sub(started.elapsed());
        if sleep_or_stop(wait, &mut stop).await {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Misbehaving clients

/// A client frame (masked with a zero key, so the payload goes as it is).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut frame = vec![0x80 | opcode];
    match len {
        0..=125 => frame.push(0x80 | len as u8),
        126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// Reads an HTTP response head from `stream` into `buf`; its status.
async fn read_status(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return head.split(' ').nth(1)?.parse().ok();
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads server frames until a close frame; its code (0 without one), or `None` if the
/// connection ended or `within` passed first.
async fn close_code(stream: &mut TcpStream, buf: &mut Vec<u8>, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let (len, at) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < at + len {
                break;
            }
            if opcode == 0x8 {
                let payload = &buf[at..at + len];
                return Some(if payload.len() >= 2 {
                    u16::from_be_bytes([payload[0], payload[1]])
                } else {
                    0
                });
            }
            buf.drain(..at + len);
        }
        let mut chunk = vec![0u8; 64 * 1024];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// A WebSocket handshake by hand; the stream and anything read past the response head.
async fn raw_upgrade(port: u16) -> Result<(TcpStream, Vec<u8>), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).ok();
    let request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    match read_status(&mut stream, &mut buf).await {
        Some(101) => Ok((stream, buf)),
        other => Err(format!("refused_{}", other.unwrap_or(0))),
    }
}

/// Says hello, then writes up to 64 MiB of pings for at most 10 s without reading; then
/// reads to see how the node ended it.
async fn ping_flood_once(port: u16, n: u64) -> String {
    let (mut stream, mut buf) = match raw_upgrade(port).await {
        Ok(x) => x,
        Err(e) => return e,
    };
    let hello = json!({"type": "hello", "name": format!("flood{n}")}).to_string();
    if stream
        .write_all(&client_frame(0x1, hello.as_bytes()))
        .await
        .is_err()
    {
        return "write_failed_at_hello".into();
    }
    let ping = client_frame(0x9, &[b'p'; 125]);
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1024)
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut sent = 0usize;
    while sent < 64 << 20 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, stream.write_all(&batch)).await {
            Ok(Ok(())) => sent += batch.len(),
            _ => break,
        }
    }
    match close_code(&mut stream, &mut buf, Duration::from_secs(30)).await {
        Some(code) => format!("closed_{code}"),
        None => {
            eprintln!(
                "peerlink-soak: ping flood {n}: {} MiB of pings, no close within 30 s",
                sent >> 20
            );
            "not_closed".into()
        }
    }
}

/// Says hello, then sends bursts of unparseable frames while reading the answers.
async fn garbage_once(
    port: u16,
    n: u64,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> String {
    let (ws, _) = match hello(port, Identity::Name(&format!("garbage{n}"))).await {
        Ok(x) => x,
        Err(e) => return format!("hello_failed: {e}"),
    };
    let (mut sink, mut stream) = ws.split();
    const KINDS: [&str; 5] = [
        "not json",
        "{\"type\":",
        "[1,2,3]",
        "{\"type\":\"nope\"}",
        "{\"type\":7}",
    ];
    for burst in 0..20u32 {
        // 300 frames as fast as the socket takes them; then read for a while.
        let frames = futures_util::stream::iter((0..300).map(|k| {
            Ok::<_, tokio_tungstenite::tungstenite::Error>(Message::text(
                KINDS[(k + burst as usize) % KINDS.len()],
            ))
        }));
        let writer = async {
            let mut frames = frames;
            sink.send_all(&mut frames).await
        };
        let reader = async {
            let quiet = Duration::from_secs(3);
            loop {
                match tokio::time::timeout(quiet, stream.next()).await {
                    Err(_) => return None,
                    Ok(None) => return Some("ended_without_close".to_owned()),
                    Ok(Some(Err(_))) => return Some("ended_without_close".to_owned()),
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        return Some(format!(
                            "closed_{}",
                            frame.map(|f| u16::from(f.code)).unwrap_or(0)
                        ))
                    }
                    Ok(Some(Ok(m))) => {
                        if let Some(v) = text(&m) {
                            if v["type"] == "error" {
                                shared
                                    .garbage
                                    .add(format!("answered_{}", v["code"].as_str().unwrap_or("?")));
                            }
                        }
                    }
                }
            }
        };
        let (_, ended) = tokio::join!(writer, reader);
        if let Some(ended) = ended {
            return ended;
        }
        if sleep_or_stop(Duration::from_secs(2), stop).await {
            return "stopped".into();
        }
    }
    "not_closed".into()
}

/// Offers a file to a receiver that accepts, reads, and never acknowledges; the node
/// should pause the transfer after its stall time. Returns what happened.
async fn stalled_once(port: u16, pair: &mut Pair, n: u64) -> String {
    let run = async {
        let (mut sender, _) = connect_as(port, &mut pair.alice, "stall-sender").await?;
        let (mut receiver, receiver_id) = connect_as(port, &mut pair.bob, "stall-receiver").await?;
        let offer = json!({"type": "offer", "to": receiver_id, "name": format!("stall-{n}"),
            "size": 4 * WINDOW});
        sender
            .send(Message::text(offer.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        let offered = common::next_of(&mut sender, "offered").await?;
        let transfer = offered["transfer"].as_str().ok_or("no id")?.to_owned();
        let id = uuid::Uuid::parse_str(&transfer).map_err(|e| e.to_string())?;
        transfer_event(&mut receiver, &transfer, &["offer"]).await?;
        receiver
            .send(Message::text(
                json!({"type": "accept", "transfer": transfer, "offset": 0}).to_string(),
            ))
            .await
            .map_err(|e| e.to_string())?;
        transfer_event(&mut sender, &transfer, &["accepted"]).await?;
        // One full window, which the receiver reads and never acknowledges.
        for offset in (0..WINDOW).step_by(CHUNK) {
            let mut frame = Vec::with_capacity(24 + CHUNK);
            frame.extend_from_slice(id.as_bytes());
            frame.extend_from_slice(&offset.to_be_bytes());
            frame.resize(24 + CHUNK, 0x5a);
            sender
                .send(Message::binary(frame))
                .await
                .map_err(|e| e.to_string())?;
        }
        let receiver_side = async {
            while let Some(Ok(m)) = receiver.next().await {
                if let Some(v) = text(&m) {
                    if v["transfer"] == transfer.as_str() && v["type"] != "offer" {
                        return v["type"].as_str().unwrap_or("?").to_owned();
                    }
                }
            }
            "receiver_ended".to_owned()
        };
        let sender_side = async {
            match transfer_event(&mut sender, &transfer, &["paused", "progress"]).await {
                Ok(v) if v["type"] == "paused" => "paused".to_owned(),
                Ok(_) => "acknowledged?".to_owned(),
                Err(e) => format!("other: {e}"),
            }
        };
        let (seen_by_receiver, seen_by_sender) = tokio::join!(receiver_side, sender_side);
        let cancel = json!({"type": "cancel", "transfer": transfer});
        let _ = sender.send(Message::text(cancel.to_string())).await;
        let _ = transfer_event(&mut sender, &transfer, &["cancelled"]).await;
        let _ = sender.send(Message::Close(None)).await;
        let _ = receiver.send(Message::Close(None)).await;
        Ok::<_, String>(if seen_by_receiver == seen_by_sender {
            seen_by_sender
        } else {
            format!("sender_{seen_by_sender}_receiver_{seen_by_receiver}")
        })
    };
    match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            eprintln!("peerlink-soak: stalled receiver: {e}");
            "failed".into()
        }
        Err(_) => "not_paused_in_120_s".into(),
    }
}

/// POSTs a 200-byte JSON body one byte a second; the status the node answers with.
async fn trickle_once(port: u16) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return "connect_failed".into();
    };
    let head = "POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\
        Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return "write_failed".into();
    }
    let mut buf = Vec::new();
    for _ in 0..60 {
        match tokio::time::timeout(Duration::from_secs(1), read_status(&mut stream, &mut buf)).await
        {
            Ok(Some(status)) => return format!("refused_{status}"),
            Ok(None) => return "closed_without_answer".into(),
            Err(_) => {}
        }
        if stream.write_all(b" ").await.is_err() {
            return "closed_while_writing".into();
        }
    }
    "not_refused_in_60_s".into()
}

async fn misbehave(
    kind: &'static str,
    k: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let port = shared.port;
    let mut pair = Pair {
        alice: None,
        bob: None,
    };
    // Spread the starts out.
    if sleep_or_stop(Duration::from_secs(2 + 3 * k as u64), &mut stop).await {
        return;
    }
    let mut n = 0u64;
    loop {
        n += 1;
        let tally = match kind {
            "ping_flood" => &shared.ping_flood,
            "garbage" => &shared.garbage,
            "stalled_receiver" => &shared.stalled_receiver,
            _ => &shared.trickle,
        };
        let id = (k as u64) * 1_000_000 + n;
        let mut inner_stop = stop.clone();
        let outcome = tokio::select! {
            outcome = async {
                match kind {
                    "ping_flood" => ping_flood_once(port, id).await,
                    "garbage" => garbage_once(port, id, &shared, &mut inner_stop).await,
                    "stalled_receiver" => stalled_once(port, &mut pair, id).await,
                    _ => trickle_once(port).await,
                }
            } => outcome,
            _ = stop.changed() => return,
        };
        if outcome != "stopped" {
            tally.add(outcome);
        }
        let pause = if kind == "stalled_receiver" { 5 } else { 3 };
        if sleep_or_stop(Duration::from_secs(pause), &mut stop).await {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sampling and output

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok());
    let nproc = std::process::Command::new("nproc")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        });
    json!({
        "nproc": nproc,
        "model_name": model,
        "mem_total_gib": mem_kib.map(|k| k as f64 / 1048576.0),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "loadavg_at_start": loadavg(),
    })
}

fn loadavg() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// The node's `/api/admin/stats`, or `null` if it does not answer within 5 s.
async fn admin_stats(port: u16) -> Value {
    tokio::task::spawn_blocking(move || {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build()
            .get(&format!("http://127.0.0.1:{port}/api/admin/stats"))
            .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or(Value::Null)
    })
    .await
    .unwrap_or(Value::Null)
}

/// Busy and total jiffies of the whole machine (`/proc/stat`, first line).
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

struct Totals {
    machine: (u64, u64),
    sent: u64,
    acked: u64,
    delivered: u64,
    errors: u64,
    node_cpu: Duration,
    tool_cpu: Duration,
    at: Instant,
}

fn totals(shared: &Shared, node: &NodeProcess) -> Totals {
    Totals {
        machine: machine_jiffies(),
        sent: shared.chat_sent.load(Ordering::SeqCst),
        acked: shared.chat_acked.load(Ordering::SeqCst),
        delivered: shared.chat_delivered.load(Ordering::SeqCst),
        errors: shared.errors.load(Ordering::SeqCst),
        node_cpu: node.cpu(),
        tool_cpu: cpu_of("self"),
        at: Instant::now(),
    }
}

async fn sample(
    shared: &Shared,
    node: &NodeProcess,
    before: &Totals,
    t0: Instant,
) -> (Value, Totals) {
    let now = totals(shared, node);
    let secs = (now.at - before.at).as_secs_f64();
    let mut latencies = std::mem::take(&mut *shared.latencies.lock().unwrap());
    latencies.sort_unstable();
    let ms = |us: u32| us as f64 / 1000.0;
    let mb = std::mem::take(&mut *shared.transfer_mb_per_sec.lock().unwrap());
    let stats = admin_stats(shared.port).await;
    let rss_kib = common::status_kib(node.pid(), "VmRSS:");
    let value = json!({
        "elapsed_secs": (now.at - t0).as_secs_f64(),
        "rss_bytes": rss_kib.map(|k| k * 1024),
        "rss_mib": rss_kib.map(|k| k as f64 / 1024.0),
        "open_files": node.open_files(),
        "threads": node.threads(),
        "node_cpu_percent": 100.0 * (now.node_cpu - before.node_cpu).as_secs_f64() / secs,
        "tool_cpu_percent": 100.0 * (now.tool_cpu - before.tool_cpu).as_secs_f64() / secs,
        // Every process on the machine, as a share of all its cores.
        "machine_cpu_busy_percent": 100.0 * (now.machine.0 - before.machine.0) as f64
            / (now.machine.1 - before.machine.1).max(1) as f64,
        "chat": {
            "sent": now.sent - before.sent,
            "acknowledged": now.acked - before.acked,
            "delivered": now.delivered - before.delivered,
            "latency_ms": {
                "p50": ms(percentile(&latencies, 50.0)),
                "p99": ms(percentile(&latencies, 99.0)),
                "max": ms(latencies.last().copied().unwrap_or(0)),
            },
        },
        "transfers": shared.transfers.json(),
        "transfer_mb_per_sec": mb,
        "uploads": shared.uploads.json(),
        "unexpected_errors": now.errors - before.errors,
        "unexpected_errors_total": now.errors,
        "misbehaving": {
            "ping_flood": shared.ping_flood.json(),
            "garbage": shared.garbage.json(),
            "stalled_receiver": shared.stalled_receiver.json(),
            "trickle": shared.trickle.json(),
        },
        "node_stats": stats,
        "loadavg": loadavg(),
    });
    (value, now)
}

fn write_report(args: &Args, report: &Value) {
    let text = serde_json::to_string_pretty(report).expect("json");
    match &args.json {
        Some(path) => {
            let tmp = format!("{path}.tmp");
            std::fs::write(&tmp, text + "\n").expect("write the report");
            std::fs::rename(&tmp, path).expect("rename the report");
        }
        None => println!("{text}"),
    }
}

fn main() {
    let args = Arc::new(Args::parse());
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let node_log = std::fs::File::create(&args.node_log).expect("node log file");
    let mut node = NodeProcess::start(
        &args.node,
        &[
            // Every client comes from 127.0.0.1: lift the per-address limits on names and
            // WebSocket connections. Rate limits per user stay at the node's defaults.
            ("PEERLINK_SIGNUPS_PER_MINUTE", "1000000"),
            ("PEERLINK_CONNECTIONS_PER_ADDRESS", "100000"),
            ("PEERLINK_SQLITE_SYNC", &args.sqlite_sync),
            ("PEERLINK_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
        Stdio::from(node_log),
    );
    eprintln!(
        "peerlink-soak: node pid {} at http://127.0.0.1:{} for {} min",
        node.pid(),
        node.port,
        args.minutes
    );
    let settings = json!({
        "minutes": args.minutes,
        "sample_secs": args.sample_secs,
        "chat_connections": args.chat_connections,
        "rooms": args.rooms,
        "chat_messages_per_sec": args.rate,
        "transfer_size_bytes": args.transfer_size,
        "transfer_every_secs": args.transfer_every_secs,
        "upload_size_bytes": args.upload_size,
        "upload_every_secs": args.upload_every_secs,
        "misbehaving_of_each_kind": args.misbehaving,
        "sqlite_sync": args.sqlite_sync,
        "node": args.node,
        "node_env": "PEERLINK_SIGNUPS_PER_MINUTE=1000000 PEERLINK_CONNECTIONS_PER_ADDRESS=100000; other limits at their defaults",
        "note": args.note,
    });
    let machine = machine();
    let shared = Arc::new(Shared {
        start: Instant::now(),
        port: node.port,
        chat_sent: AtomicU64::new(0),
        chat_acked: AtomicU64::new(0),
        chat_delivered: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
        errors: AtomicU64::new(0),
        error_log: Mutex::new(BTreeMap::new()),
        digest_mismatches: AtomicU64::new(0),
        transfers: Tally::default(),
        transfer_mb_per_sec: Mutex::new(Vec::new()),
        uploads: Tally::default(),
        ping_flood: Tally::default(),
        garbage: Tally::default(),
        stalled_receiver: Tally::default(),
        trickle: Tally::default(),
    });
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let every = Duration::from_secs_f64(args.sample_secs);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut samples: Vec<Value> = Vec::new();
    let mut crashed: Option<String> = None;

    let build = |samples: &[Value], crashed: &Option<String>, complete: bool, shared: &Shared| {
        let errors = shared.errors.load(Ordering::SeqCst);
        let mismatches = shared.digest_mismatches.load(Ordering::SeqCst);
        let log: Vec<Value> = shared
            .error_log
            .lock()
            .unwrap()
            .iter()
            .map(|(k, (n, at))| json!({"error": k, "count": n, "first_at_secs": at}))
            .collect();
        json!({
            "tool": "peerlink-soak",
            "complete": complete,
            "settings": settings,
            "machine": machine,
            "node_exit": crashed,
            "unexpected_errors": errors,
            "digest_mismatches": mismatches,
            "errors": log,
            "chat_totals": {
                "sent": shared.chat_sent.load(Ordering::SeqCst),
                "acknowledged": shared.chat_acked.load(Ordering::SeqCst),
                "delivered": shared.chat_delivered.load(Ordering::SeqCst),
            },
            "samples": samples,
        })
    };

    runtime.block_on(async {
        // Connect the chat clients first, a few at a time (they start saying at once).
        let pace = Arc::new(ChatPace {
            interval: Duration::from_secs_f64(
                args.chat_connections as f64 / args.rate.max(0.001),
            ),
        });
        let mut tasks = Vec::new();
        for i in 0..args.chat_connections {
            let room = format!("soak-{}", i % args.rooms.max(1));
            tasks.push(tokio::spawn(chat_client(
                i,
                room,
                pace.clone(),
                shared.clone(),
                stop_rx.clone(),
            )));
            if i % 16 == 15 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tasks.push(tokio::spawn(transfer_loop(
            args.clone(),
            shared.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(upload_loop(
            args.clone(),
            shared.clone(),
            stop_rx.clone(),
        )));
        for kind in ["ping_flood", "garbage", "stalled_receiver", "trickle"] {
            for k in 0..args.misbehaving {
                tasks.push(tokio::spawn(misbehave(
                    kind,
                    k,
                    shared.clone(),
                    stop_rx.clone(),
                )));
            }
        }
        let t0 = Instant::now();
        let mut before = totals(&shared, &node);
        let mut next = tokio::time::Instant::now() + every;
        while t0.elapsed() < run_for {
            tokio::time::sleep_until(next).await;
            next += every;
            if let Some(status) = node.exited() {
                crashed = Some(format!("{status}"));
                eprintln!("peerlink-soak: THE NODE EXITED: {status}");
                break;
            }
            let (s, now) = sample(&shared, &node, &before, t0).await;
            before = now;
            eprintln!(
                "peerlink-soak: {:>6.0} s rss {:>6.1} MiB fds {:>4} cpu {:>5.1}% p50 {:.2} ms p99 {:.2} ms delivered {} errors {}",
                s["elapsed_secs"].as_f64().unwrap_or(0.0),
                s["rss_mib"].as_f64().unwrap_or(0.0),
                s["open_files"],
                s["node_cpu_percent"].as_f64().unwrap_or(0.0),
                s["chat"]["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                s["chat"]["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
                s["chat"]["delivered"],
                s["unexpected_errors_total"],
            );
            samples.push(s);
            if args.json.is_some() {
                write_report(&args, &build(&samples, &crashed, false, &shared));
            }
        }
        let _ = stop_tx.send(true);
        // Loops finish the round they are in (each is bounded by its own timeout).
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(Duration::from_secs(200), all).await.is_err() {
            eprintln!("peerlink-soak: some clients did not stop within 200 s");
        }
    });
    if crashed.is_none() {
        if let Some(status) = node.exited() {
            crashed = Some(format!("{status}"));
        }
    }
    let report = build(&samples, &crashed, crashed.is_none(), &shared);
    write_report(&args, &report);
    let errors = shared.errors.load(Ordering::SeqCst);
    let mismatches = shared.digest_mismatches.load(Ordering::SeqCst);
    drop(node);
    runtime.shutdown_timeout(Duration::from_secs(1));
    if errors > 0 || mismatches > 0 || crashed.is_some() {
        eprintln!(
            "peerlink-soak: FAILED: {errors} unexpected errors, {mismatches} digest mismatches, node exit {crashed:?}"
        );
        std::process::exit(1);
    }
}
