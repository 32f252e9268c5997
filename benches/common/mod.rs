//! What the load tool (`benches/load.rs`) and the soak benchmark (`benches/soak.rs`)
//! share: starting a release `peerlink` node on a scratch directory and reading its port,
//! opening authenticated WebSockets to it, and reading the node's CPU and memory from
//! `/proc`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The node under test, killed when dropped.
pub struct NodeProcess {
    child: Child,
    pub port: u16,
    _data: tempfile::TempDir,
}

impl NodeProcess {
    /// Starts `node serve` on 127.0.0.1 (a port of the kernel's choosing) with a scratch
    /// data directory, `RUST_LOG=warn`, and `env` on top; waits for it to say its port.
    pub fn start(node: &str, env: &[(&str, &str)], stderr: Stdio) -> NodeProcess {
        let data = tempfile::tempdir().expect("scratch dir");
        let mut child = Command::new(node)
            .arg("serve")
            .env("PEERLINK_BIND", "127.0.0.1:0")
            .env("PEERLINK_DATA_DIR", data.path())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {node} ({e}); run `cargo build --release` first")
            });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, port)) = line.rsplit_once("listening on http://127.0.0.1:") {
                    let _ = tx.send(port.trim().parse::<u16>().expect("port"));
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the node did not start");
        NodeProcess {
            child,
            port,
            _data: data,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// User plus system CPU time of the node so far.
    pub fn cpu(&self) -> Duration {
        cpu_of(&self.pid().to_string())
    }

    pub fn rss_bytes(&self) -> u64 {
        status_kib(self.pid(), "VmRSS:").expect("VmRSS") * 1024
    }

    /// Entries of `/proc/<pid>/fd`: sockets, files, pipes, eventfds.
    pub fn open_files(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .ok()
            .map(|entries| entries.count())
    }

    pub fn threads(&self) -> Option<u64> {
        status_kib(self.pid(), "Threads:")
    }
}

/// A number field of `/proc/<pid>/status` (`VmRSS:` is in KiB).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// User plus system CPU time of a process (`self` for this one) so far.
pub fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Who a `hello` speaks for: a new user with this name, or a returning one.
pub enum Identity<'a> {
    Name(&'a str),
    Token(&'a str),
}

/// Connects to `/ws` and says hello; returns the socket and the `welcome` frame. An
/// `error` frame (or anything else going wrong) is returned as `Err`.
pub async fn hello(port: u16, who: Identity<'_>) -> Result<(Socket, serde_json::Value), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://127.0.0.1:{port}/ws"),
        None,
        true,
    )
    .await
    .map_err(|e| format!("connect: {e}"))?;
    let frame = match who {
        Identity::Name(name) => json!({"type": "hello", "name": name}),
        Identity::Token(token) => json!({"type": "hello", "token": token}),
    };
    ws.send(Message::text(frame.to_string()))
        .await
        .map_err(|e| format!("hello: {e}"))?;
    let welcome = next_of(&mut ws, "welcome").await?;
    Ok((ws, welcome))
}

/// Joins `room` (replaying nothing); returns the `joined` frame.
pub async fn join(ws: &mut Socket, room: &str) -> Result<serde_json::Value, String> {
    ws.send(Message::text(
        json!({"type": "join", "room": room, "since": u64::MAX / 2}).to_string(),
    ))
    .await
    .map_err(|e| format!("join: {e}"))?;
    next_of(ws, "joined").await
}

/// The next text frame of type `kind`, skipping others; an `error` frame, a close or a
/// read failure is `Err`.
pub async fn next_of(ws: &mut Socket, kind: &str) -> Result<serde_json::Value, String> {
    while let Some(message) = ws.next().await {
        let message = message.map_err(|e| format!("read: {e}"))?;
        if let Message::Close(frame) = &message {
            return Err(format!("closed while waiting for {kind}: {frame:?}"));
        }
        if let Some(v) = text(&message) {
            if v["type"] == kind {
                return Ok(v);
            }
            if v["type"] == "error" {
                return Err(format!("the node refused: {v}"));
            }
        }
    }
    Err(format!("connection ended while waiting for {kind}"))
}

/// Connects, says hello and, when `room` is given, joins it. Panics on any failure.
pub async fn open(port: u16, name: &str, room: Option<&str>) -> Socket {
    let (mut ws, _) = hello(port, Identity::Name(name))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(room) = room {
        join(&mut ws, room).await.unwrap_or_else(|e| panic!("{e}"));
    }
    ws
}

/// Reads until a text frame contains `needle`; panics on an `error` frame or the end.
pub async fn wait_for(ws: &mut Socket, needle: &str) {
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message.expect("read") {
            if text.contains(needle) {
                return;
            }
            assert!(
                !text.contains("\"type\":\"error\""),
                "the node refused: {text}"
            );
        }
    }
    panic!("connection ended while waiting for {needle}");
}

/// A text frame as JSON.
pub fn text(message: &Message) -> Option<serde_json::Value> {
    match message {
        Message::Text(text) => serde_json::from_str(text).ok(),
        _ => None,
    }
}

/// The send time stamped into a message text (`t<microseconds>`).
pub fn stamp_of(text: &str) -> Option<u64> {
    let at = text.find("\"text\":\"t")? + 9;
    let digits = &text[at..];
    let end = digits.find('"')?;
    digits[..end].parse().ok()
}

pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Pseudo-random bytes (xorshift), cheap to make in bulk; `seed` picks the sequence.
pub fn file_bytes_seeded(len: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
    if x == 0 {
        x = 1;
    }
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// Pseudo-random bytes (xorshift), the load tool's sequence.
pub fn file_bytes(len: usize) -> Vec<u8> {
    file_bytes_seeded(len, 0)
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads and writes only the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
