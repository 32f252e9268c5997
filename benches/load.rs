//! `peerlink-load`: the load tool. It starts a release `peerlink` node on a scratch data
//! directory, opens N WebSocket connections in R rooms on loopback, and prints one JSON
//! object with what it measured.
//!
//! Modes:
//! - `rate`: every connection says something at a fixed total rate (`--rate` messages/s).
//! - `saturate`: every connection keeps `--in-flight` messages unacknowledged, as fast as
//!   the node takes them.
//! - `idle`: opens `--connections` authenticated connections that stay quiet and reports
//!   the node's resident memory per connection.
//! - `transfer`: relays one `--size` file from one connection to another and reports MB/s,
//!   the node's CPU, and `openssl speed -evp sha256` measured in the same run.
//!
//! Latency is from the moment a sender writes a `say` to the moment a member (the sender
//! included: its copy is the acknowledgement) reads the `message`. Node CPU comes from
//! `/proc/<pid>/stat` over the measured window only.
//!
//!     cargo build --release && cargo bench --bench load -- --mode rate --rate 2000
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use clap::{Parser, ValueEnum};
use common::{
    cpu_of, file_bytes, open, percentile, raise_open_file_limit, stamp_of, text, wait_for,
    NodeProcess, Socket,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Rate,
    Saturate,
    Idle,
    /// One file from one connection to another through the node.
    Transfer,
}

#[derive(Debug, Parser)]
#[command(about = "Load a PeerLink node over loopback WebSockets and report JSON figures")]
struct Args {
    #[arg(long, value_enum, default_value = "rate")]
    mode: Mode,
    /// The node binary (a release build).
    #[arg(long, default_value = "target/release/peerlink")]
    node: String,
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    #[arg(long, default_value_t = 50)]
    rooms: usize,
    /// Total messages per second (rate mode).
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Unacknowledged messages per connection (saturate mode).
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// SQLite durability of the node under test (full or normal).
    #[arg(long, default_value = "full")]
    sqlite_sync: String,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 64)]
    connect_parallelism: usize,
    /// File size for `transfer` mode, in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    size: u64,
    /// Hard stop for the whole run, in seconds.
    #[arg(long, default_value_t = 300.0)]
    deadline: f64,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

/// Starts the node under test with the rate limits lifted.
fn start_node(args: &Args) -> NodeProcess {
    NodeProcess::start(
        &args.node,
        &[
            ("PEERLINK_RATE_PER_SEC", "1000000"),
            ("PEERLINK_RATE_BURST", "1000000"),
            ("PEERLINK_SIGNUPS_PER_MINUTE", "1000000"),
            ("PEERLINK_CONNECTIONS_PER_ADDRESS", "10000000"),
            ("PEERLINK_SQLITE_SYNC", &args.sqlite_sync),
            ("PEERLINK_ADMIN_TOKEN", "load-tool-admin-token"),
        ],
        Stdio::inherit(),
    )
}

/// Counters shared by every connection task.
struct Shared {
    start: Instant,
    measuring: AtomicBool,
    sent: AtomicU64,
    delivered: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

/// How a connection sends: on a timer (`rate`) or keeping messages in flight (`saturate`).
#[derive(Clone, Copy)]
struct Pace {
    mode: Mode,
    interval: Duration,
    in_flight: usize,
}

/// One connection's life under load; returns its latency samples (µs).
async fn drive(
    ws: Socket,
    room: String,
    Pace {
        mode,
        interval,
        in_flight,
    }: Pace,
    shared: Arc<Shared>,
    go: Arc<Barrier>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<u32> {
    let (mut sink, mut stream) = ws.split();
    let mut samples = Vec::new();
    go.wait().await;
    let phase = Duration::from_micros(rand::random_range(0..interval.as_micros().max(1) as u64));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + phase, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut outstanding = 0usize;
    let mut next_id = 0u64;
    loop {
        let can_send = mode == Mode::Saturate && outstanding < in_flight;
        if can_send {
            send_say(&mut sink, &room, &mut next_id, &shared).await;
            outstanding += 1;
            continue;
        }
        tokio::select! {
            _ = ticker.tick(), if mode == Mode::Rate => send_say(&mut sink, &room, &mut next_id, &shared).await,
            message = stream.next() => {
                let Some(Ok(Message::Text(text))) = message else {
                    if message.is_none() { break } else { continue }
                };
                if let Some(sent_us) = stamp_of(&text) {
                    if text.contains("\"re\":") {
                        outstanding = outstanding.saturating_sub(1);
                    }
                    if shared.measuring.load(Ordering::Relaxed) {
                        shared.delivered.fetch_add(1, Ordering::Relaxed);
                        samples.push(shared.now_us().saturating_sub(sent_us).min(u32::MAX as u64) as u32);
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
    samples
}

async fn send_say(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    room: &str,
    next_id: &mut u64,
    shared: &Shared,
) {
    *next_id += 1;
    let frame = format!(
        r#"{{"type":"say","id":"{}","room":"{}","text":"t{}"}}"#,
        next_id,
        room,
        shared.now_us()
    );
    if sink.send(Message::text(frame)).await.is_ok() && shared.measuring.load(Ordering::Relaxed) {
        shared.sent.fetch_add(1, Ordering::Relaxed);
    }
}

async fn connect_all(args: &Args, port: u16, join: bool) -> Vec<(Socket, String)> {
    let gate = Arc::new(Semaphore::new(args.connect_parallelism));
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| {
            let gate = gate.clone();
            let room = format!("load-{}", i % args.rooms.max(1));
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                let ws = open(port, &format!("u{i}"), join.then_some(room.as_str())).await;
                (ws, room)
            })
        })
        .collect();
    let mut sockets = Vec::with_capacity(tasks.len());
    for task in tasks {
        sockets.push(task.await.expect("connect task"));
    }
    sockets
}

async fn run_traffic(args: &Args, node: &NodeProcess) -> serde_json::Value {
    let sockets = connect_all(args, node.port, true).await;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        measuring: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    let per_connection = args.rate / args.connections as f64;
    let interval = Duration::from_secs_f64(1.0 / per_connection.max(0.001));
    let go = Arc::new(Barrier::new(sockets.len() + 1));
    let pace = Pace {
        mode: args.mode,
        interval,
        in_flight: args.in_flight,
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|(ws, room)| {
            tokio::spawn(drive(
                ws,
                room,
                pace,
                shared.clone(),
                go.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    go.wait().await;
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let (cpu_before, tool_before, started) = (node.cpu(), cpu_of("self"), Instant::now());
    shared.measuring.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    shared.measuring.store(false, Ordering::SeqCst);
    let (cpu_after, elapsed) = (node.cpu(), started.elapsed().as_secs_f64());
    let tool_cpu = (cpu_of("self") - tool_before).as_secs_f64();
    let _ = stop.send(true);
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("load task"));
    }
    samples.sort_unstable();
    let delivered = shared.delivered.load(Ordering::SeqCst);
    let sent = shared.sent.load(Ordering::SeqCst);
    let cpu = (cpu_after - cpu_before).as_secs_f64();
    json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "connections": args.connections,
        "rooms": args.rooms,
        "target_messages_per_sec": if args.mode == Mode::Rate { json!(args.rate) } else { json!(null) },
        "in_flight_per_connection": if args.mode == Mode::Saturate { json!(args.in_flight) } else { json!(null) },
        "sqlite_sync": args.sqlite_sync,
        "measured_secs": elapsed,
        "messages_sent_per_sec": sent as f64 / elapsed,
        "deliveries_per_sec": delivered as f64 / elapsed,
        "latency_us": {"p50": percentile(&samples, 50.0), "p99": percentile(&samples, 99.0), "max": samples.last().copied().unwrap_or(0)},
        "node_cpu_secs": cpu,
        "node_cpu_us_per_delivery": if delivered > 0 { cpu * 1e6 / delivered as f64 } else { 0.0 },
        "node_cpu_cores_busy": cpu / elapsed,
        "load_tool_cpu_cores_busy": tool_cpu / elapsed,
    })
}

async fn run_idle(args: &Args, node: &NodeProcess) -> serde_json::Value {
    // Warm the node up (allocator arenas, pools) with a few connections before the baseline.
    let warm = {
        let mut a = Args::parse_from(["load"]);
        a.connections = 16;
        a.rooms = 1;
        connect_all(&a, node.port, false).await
    };
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = node.rss_bytes();
    let started = Instant::now();
    let sockets = connect_all(args, node.port, false).await;
    let connect_secs = started.elapsed().as_secs_f64();
    // Let the node settle: every hello answered is already awaited above.
    let after = node.rss_bytes();
    let per_connection = after.saturating_sub(before) as f64 / sockets.len() as f64;
    drop(sockets);
    json!({
        "mode": "idle",
        "connections": args.connections,
        "connect_secs": connect_secs,
        "node_rss_before_bytes": before,
        "node_rss_after_bytes": after,
        "node_rss_bytes_per_connection": per_connection,
    })
}

/// `openssl speed -evp sha256` on 64 KiB blocks, in bytes per second, if openssl is here.
fn openssl_sha256_rate() -> Option<f64> {
    let output = Command::new("openssl")
        .args([
            "speed", "-evp", "sha256", "-bytes", "65536", "-seconds", "3",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().rev().find(|l| l.starts_with("sha256"))?;
    let kbytes: f64 = line
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(kbytes * 1000.0)
}

async fn run_transfer(args: &Args, node: &NodeProcess) -> serde_json::Value {
    use sha2::Digest;
    let openssl = openssl_sha256_rate();
    let size = usize::try_from(args.size).expect("size fits in memory");
    let data = Arc::new(file_bytes(size));
    let expected: String = sha2::Sha256::digest(&data[..])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut alice = open(node.port, "alice", None).await;
    let (mut bob, bob_id) = {
        let (ws, welcome) = common::hello(node.port, common::Identity::Name("bob"))
            .await
            .expect("bob's hello");
        (ws, welcome["user"]["id"].as_str().expect("id").to_owned())
    };
    let offer =
        json!({"type": "offer", "id": "o", "to": bob_id, "name": "big.bin", "size": args.size});
    alice
        .send(Message::text(offer.to_string()))
        .await
        .expect("offer");
    let transfer = loop {
        let message = alice.next().await.expect("offered").expect("read");
        if let Some(v) = text(&message).filter(|v| v["type"] == "offered") {
            break uuid::Uuid::parse_str(v["transfer"].as_str().expect("id")).expect("uuid");
        }
    };
    wait_for(&mut bob, "\"type\":\"offer\"").await;
    bob.send(Message::text(
        json!({"type": "accept", "transfer": transfer, "offset": 0}).to_string(),
    ))
    .await
    .expect("accept");
    wait_for(&mut alice, "\"type\":\"accepted\"").await;

    let (cpu_before, started) = (node.cpu(), Instant::now());
    let receiving = tokio::spawn(async move {
        let mut got = 0u64;
        let mut done = None;
        while let Some(Ok(message)) = bob.next().await {
            match message {
                Message::Binary(frame) => {
                    got += (frame.len() - 24) as u64;
                    let ack = json!({"type": "ack", "transfer": transfer, "offset": got});
                    bob.send(Message::text(ack.to_string())).await.expect("ack");
                }
                other => {
                    if let Some(v) =
                        text(&other).filter(|v| v["type"] == "complete" || v["type"] == "failed")
                    {
                        done = Some(v);
                        break;
                    }
                }
            }
        }
        (got, done)
    });
    const CHUNK: usize = 256 * 1024;
    const WINDOW: u64 = 4 * 1024 * 1024;
    let (mut sent, mut acked) = (0usize, 0u64);
    let mut frame = Vec::with_capacity(24 + CHUNK);
    while sent < size {
        let len = CHUNK.min(size - sent);
        while (sent + len) as u64 - acked > WINDOW {
            let message = alice.next().await.expect("progress").expect("read");
            if let Some(v) = text(&message).filter(|v| v["type"] == "progress") {
                acked = v["offset"].as_u64().expect("offset");
            }
        }
        frame.clear();
        frame.extend_from_slice(transfer.as_bytes());
        frame.extend_from_slice(&(sent as u64).to_be_bytes());
        frame.extend_from_slice(&data[sent..sent + len]);
        alice
            .send(Message::binary(frame.clone()))
            .await
            .expect("data");
        sent += len;
    }
    alice
        .send(Message::text(
            json!({"type": "end", "transfer": transfer}).to_string(),
        ))
        .await
        .expect("end");
    let (received, done) = receiving.await.expect("receiver");
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (node.cpu() - cpu_before).as_secs_f64();
    let done = done.unwrap_or_default();
    let rate = args.size as f64 / elapsed;
    json!({
        "mode": "transfer",
        "size_bytes": args.size,
        "received_bytes": received,
        "outcome": done["type"],
        "sha256_matches": done["sha256"].as_str() == Some(expected.as_str()),
        "secs": elapsed,
        "mb_per_sec": rate / 1e6,
        "node_cpu_secs": cpu,
        "node_cpu_cores_busy": cpu / elapsed,
        "openssl_sha256_mb_per_sec": openssl.map(|r| r / 1e6),
        "ratio_to_openssl": openssl.map(|r| rate / r),
    })
}

fn main() {
    let args = Args::parse();
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let node = start_node(&args);
    eprintln!(
        "peerlink-load: node pid {} at http://127.0.0.1:{}",
        node.pid(),
        node.port
    );
    let deadline = Duration::from_secs_f64(args.deadline);
    let result = runtime.block_on(async {
        let work = async {
            match args.mode {
                Mode::Idle => run_idle(&args, &node).await,
                Mode::Transfer => run_transfer(&args, &node).await,
                Mode::Rate | Mode::Saturate => run_traffic(&args, &node).await,
            }
        };
        tokio::time::timeout(deadline, work).await
    });
    match result {
        Ok(report) => println!("{report}"),
        Err(_) => {
            eprintln!(
                "peerlink-load: gave up after the {} s deadline",
                args.deadline
            );
            std::process::exit(1);
        }
    }
    drop(node);
    runtime.shutdown_timeout(Duration::from_secs(1));
}
