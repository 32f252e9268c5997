//! Test harness: starts the real `peerlink` binary on a free loopback port, on SQLite or on
//! a fresh database in the throwaway PostgreSQL that `tests/run.sh` starts, and drives it
//! over real WebSockets.
#![allow(dead_code, clippy::result_large_err)]

pub mod cluster;
pub mod raw;
pub mod transfer;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one expected event before failing.
pub const WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The admin URL of the throwaway PostgreSQL server. Its absence is a failure, not a skip:
/// a PostgreSQL test that silently passes would hide a broken backend.
pub fn postgres_admin_url() -> String {
    std::env::var("PEERLINK_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("PEERLINK_TEST_POSTGRES_URL is not set: run the tests with `bash tests/run.sh`, which starts a throwaway PostgreSQL")
    })
}

/// A new, empty database on the test PostgreSQL server; returns its URL.
pub fn fresh_postgres_database() -> String {
    use diesel::{Connection, RunQueryDsl};
    let admin = postgres_admin_url();
    let name = format!("pl_{}", uuid::Uuid::new_v4().simple());
    let mut conn = diesel::PgConnection::establish(&admin).expect("connect to the test PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create a test database");
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base)
        .expect("admin URL has a database part");
    format!("{base}/{name}")
}

/// Where a node keeps its data, so that a restart finds it again.
#[derive(Debug, Clone)]
pub struct NodeData {
    pub dir: PathBuf,
    pub database_url: String,
}

impl NodeData {
    pub fn fresh(backend: Backend) -> NodeData {
        let dir = tempfile::Builder::new()
            .prefix("peerlink-test-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}/peerlink.db", dir.display()),
            Backend::Postgres => fresh_postgres_database(),
        };
        NodeData { dir, database_url }
    }
}

/// A running `peerlink serve`. Killed when dropped.
pub struct Node {
    child: Child,
    pub port: u16,
    pub data: NodeData,
    pub admin_token: String,
    env: Vec<(String, String)>,
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

impl Node {
    pub async fn start(backend: Backend) -> Node {
        Node::start_with(NodeData::fresh(backend), &[]).await
    }

    /// Starts a node on `data` with extra environment variables.
    pub async fn start_with(data: NodeData, env: &[(&str, &str)]) -> Node {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || Node::spawn(data, env))
            .await
            .expect("spawn task")
    }

    fn spawn(data: NodeData, env: Vec<(String, String)>) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_peerlink"));
        command.arg("serve");
        for (key, _) in std::env::vars() {
            if key.starts_with("PEERLINK_") {
                command.env_remove(key);
            }
        }
        command
            .env("PEERLINK_BIND", "127.0.0.1:0")
            .env("PEERLINK_DATA_DIR", &data.dir)
            .env("PEERLINK_DATABASE_URL", &data.database_url)
            .env("PEERLINK_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PEERLINK_FAULTS", "1")
            // Tests make many names from 127.0.0.1; `bad_input` tests the limit itself.
            .env("PEERLINK_SIGNUPS_PER_MINUTE", "1000000")
            .env("PEERLINK_CONNECTIONS_PER_ADDRESS", "1000000")
            .env("PEERLINK_HTTP_CONNECTIONS_PER_ADDRESS", "1000000")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("start the peerlink binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .rsplit_once("listening on http://127.0.0.1:")
                    .map(|(_, p)| p.to_owned())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port.trim().parse().expect("port number"),
            Err(_) => {
                let _ = child.kill();
                panic!("the node did not say where it listens within 60 s");
            }
        };
        Node {
            child,
            port,
            data,
            admin_token: ADMIN_TOKEN.into(),
            env,
        }
    }

    /// The node's process id, to read its memory from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM; waits up to `within` for the node to exit and returns whether it exited
    /// cleanly (status 0) in time.
    pub fn sigterm(&mut self, within: Duration) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "send SIGTERM");
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Whether the process is still running (not exited, not a zombie).
    pub fn running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| rest.starts_with('Z'))
            })
            .is_some_and(|zombie| !zombie)
    }

    /// Sends a signal (`STOP`, `CONT`, …) to the node.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "send SIG{name}");
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill the node");
        self.child.wait().expect("reap the node");
    }

    /// Kills the node and starts it again on the same data.
    pub async fn restart_after_kill9(mut self) -> Node {
        self.kill9();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Node::start_with(self.data.clone(), &env).await
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// An HTTP GET, off the async runtime.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let url = self.url(path);
        tokio::task::spawn_blocking(move || http_result(ureq::get(&url).call()))
            .await
            .expect("http task")
    }

    /// An admin API call with the node's admin token.
    pub async fn admin(&self, method: &str, path: &str) -> (u16, Value) {
        let (url, token, method) = (self.url(path), self.admin_token.clone(), method.to_owned());
        tokio::task::spawn_blocking(move || {
            let request =
                ureq::request(&method, &url).set("Authorization", &format!("Bearer {token}"));
            let (status, body) = http_result(request.call());
            (status, serde_json::from_str(&body).unwrap_or(Value::Null))
        })
        .await
        .expect("http task")
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (u16, String) {
        let url = self.url(path);
        tokio::task::spawn_blocking(move || {
            http_result(
                ureq::post(&url)
                    .set("Content-Type", "application/json")
                    .send_string(&body.to_string()),
            )
        })
        .await
        .expect("http task")
    }
}

fn http_result(result: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match result {
        Ok(response) => (
            response.status(),
            response.into_string().unwrap_or_default(),
        ),
        Err(ureq::Error::Status(status, response)) => {
            (status, response.into_string().unwrap_or_default())
        }
        Err(e) => panic!("HTTP request failed: {e}"),
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What [`Client::next_or_end`] found.
#[derive(Debug)]
pub enum Next {
    Frame(Value),
    /// Nothing arrived in time.
    Quiet,
    /// The connection ended (the node went away).
    Ended,
}

/// One WebSocket connection to a node.
pub struct Client {
    ws: Socket,
    /// Frames read while waiting for another kind, in arrival order.
    held: VecDeque<Value>,
    /// Binary frames read while waiting for JSON, in arrival order.
    data: VecDeque<Vec<u8>>,
    pub user_id: String,
    pub name: String,
    pub token: String,
    /// This connection's session id, from `welcome`.
    pub session: String,
    next_id: u64,
}

impl Client {
    /// Connects without saying hello.
    pub async fn connect(node: &Node) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(node.ws_url())
            .await
            .expect("WebSocket connect");
        Client::over(ws)
    }

    /// A client on a connected socket that has said nothing yet.
    fn over(ws: Socket) -> Client {
        Client {
            ws,
            held: VecDeque::new(),
            data: VecDeque::new(),
            user_id: String::new(),
            name: String::new(),
            token: String::new(),
            session: String::new(),
            next_id: 0,
        }
    }

    /// Connects as a new user.
    pub async fn new_user(node: &Node, name: &str) -> Client {
        let mut client = Client::connect(node).await;
        client.send(json!({"type": "hello", "name": name})).await;
        client.welcome().await;
        client
    }

    /// Connects as an existing user (another session, or coming back).
    pub async fn returning(node: &Node, token: &str) -> Client {
        let mut client = Client::connect(node).await;
        client.send(json!({"type": "hello", "token": token})).await;
        client.welcome().await;
        client
    }

    /// Comes back as `token` through `ws_url`; `None` when that node does not answer.
    pub async fn try_returning(ws_url: &str, token: &str) -> Option<Client> {
        let connect = tokio_tungstenite::connect_async(ws_url);
        let (ws, _) = tokio::time::timeout(WAIT, connect).await.ok()?.ok()?;
        let mut client = Client::over(ws);
        if !client
            .try_send(json!({"type": "hello", "token": token}))
            .await
        {
            return None;
        }
        loop {
            match client.next_or_end(WAIT).await {
                Next::Frame(frame) if frame["type"] == "welcome" => {
                    client.held.push_front(frame);
                    client.welcome().await;
                    return Some(client);
                }
                Next::Frame(_) => continue,
                Next::Quiet | Next::Ended => return None,
            }
        }
    }

    async fn welcome(&mut self) {
        let welcome = self.next_of("welcome").await;
        self.user_id = welcome["user"]["id"].as_str().expect("user id").to_owned();
        self.name = welcome["user"]["name"]
            .as_str()
            .expect("user name")
            .to_owned();
        self.token = welcome["token"].as_str().expect("token").to_owned();
        self.session = welcome["session"].as_str().expect("session").to_owned();
    }

    pub fn request_id(&mut self) -> String {
        self.next_id += 1;
        format!("r-{}", self.next_id)
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("send a frame");
    }

    /// Sends several frames in one write, so the node reads them back to back.
    pub async fn send_together(&mut self, frames: &[Value]) {
        for frame in frames {
            self.ws
                .feed(Message::text(frame.to_string()))
                .await
                .expect("queue a frame");
        }
        self.ws.flush().await.expect("send the frames");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send a raw frame");
    }

    /// The next JSON frame from the socket (held frames first), or a panic after [`WAIT`].
    pub async fn next(&mut self) -> Value {
        if let Some(frame) = self.held.pop_front() {
            return frame;
        }
        self.read().await
    }

    async fn read(&mut self) -> Value {
        loop {
            match self.read_any().await {
                Ok(json) => return json,
                Err(data) => self.data.push_back(data),
            }
        }
    }

    /// The next frame off the socket: JSON, or a binary frame as `Err`.
    async fn read_any(&mut self) -> Result<Value, Vec<u8>> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame within {WAIT:?}", self.name))
                .unwrap_or_else(|| panic!("{}: connection ended", self.name))
                .unwrap_or_else(|e| panic!("{}: read failed: {e}", self.name));
            match message {
                Message::Text(text) => {
                    return Ok(serde_json::from_str(&text).expect("frames are JSON"))
                }
                Message::Binary(data) => return Err(data.to_vec()),
                Message::Close(frame) => panic!("{}: connection closed: {frame:?}", self.name),
                _ => continue,
            }
        }
    }

    /// The next binary frame; JSON frames before it are held.
    pub async fn next_data(&mut self) -> Vec<u8> {
        if let Some(data) = self.data.pop_front() {
            return data;
        }
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                match self.read_any().await {
                    Ok(json) => self.held.push_back(json),
                    Err(data) => return data,
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            panic!(
                "{}: no data frame within {WAIT:?}; received meanwhile: {:?}",
                self.name, self.held
            )
        })
    }

    /// The next binary frame or JSON frame, whichever comes first (held ones first).
    pub async fn next_any(&mut self) -> Result<Value, Vec<u8>> {
        if let Some(json) = self.held.pop_front() {
            return Ok(json);
        }
        if let Some(data) = self.data.pop_front() {
            return Err(data);
        }
        self.read_any().await
    }

    /// Drops binary frames received so far (a receiver that restarts from an offset).
    pub fn forget_data(&mut self) {
        self.data.clear();
    }

    pub async fn send_binary(&mut self, frame: Vec<u8>) {
        self.ws
            .send(Message::binary(frame))
            .await
            .expect("send a binary frame");
    }

    /// The first frame matching `wanted`; frames before it are held for later reads.
    /// Gives up after [`WAIT`] in all, however many other frames (or pings) arrive meanwhile.
    pub async fn next_matching(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.held.iter().position(&wanted) {
            return self.held.remove(i).expect("held frame");
        }
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                let frame = self.read().await;
                if wanted(&frame) {
                    return frame;
                }
                self.held.push_back(frame);
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            panic!(
                "{}: the expected frame did not come within {WAIT:?}; received meanwhile: {:?}",
                self.name, self.held
            )
        })
    }

    pub async fn next_of(&mut self, kind: &str) -> Value {
        self.next_matching(|f| f["type"] == kind).await
    }

    /// The reply to request `id` (a frame carrying `"re": id`).
    pub async fn reply_to(&mut self, id: &str) -> Value {
        let id = id.to_owned();
        self.next_matching(move |f| f["re"] == id.as_str()).await
    }

    /// The next JSON frame within `wait`, without panicking when the connection ends (for
    /// clients that must survive their node going away).
    pub async fn next_or_end(&mut self, wait: Duration) -> Next {
        if let Some(frame) = self.held.pop_front() {
            return Next::Frame(frame);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Next::Quiet,
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Next::Frame(serde_json::from_str(&text).expect("frames are JSON"))
                }
                Ok(Some(Ok(Message::Binary(data)))) => self.data.push_back(data.to_vec()),
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => {
                    return Next::Ended
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Sends a frame; false when the connection is gone.
    pub async fn try_send(&mut self, frame: Value) -> bool {
        self.ws.send(Message::text(frame.to_string())).await.is_ok()
    }

    /// Sends a frame with a fresh request id and returns the reply to it.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        let id = self.request_id();
        frame["id"] = json!(id);
        self.send(frame).await;
        self.reply_to(&id).await
    }

    /// Joins a room and returns `joined`.
    pub async fn join(&mut self, room: &str, since: Option<u64>) -> Value {
        let mut frame = json!({"type": "join", "room": room});
        if let Some(since) = since {
            frame["since"] = json!(since);
        }
        let joined = self.request(frame).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        joined
    }

    /// Says something in a room and returns the acknowledgement (the sender's copy).
    pub async fn say(&mut self, room: &str, text: &str) -> Value {
        let ack = self
            .request(json!({"type": "say", "room": room, "text": text}))
            .await;
        assert_eq!(ack["type"], "message", "{ack}");
        ack
    }

    /// The next `message` of `room`.
    pub async fn next_message(&mut self, room: &str) -> Value {
        let room = room.to_owned();
        self.next_matching(move |f| f["type"] == "message" && f["room"] == room.as_str())
            .await
    }

    /// The next `error`, asserting its code.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let error = self.next_of("error").await;
        assert_eq!(error["code"], code, "{error}");
        error
    }

    /// Waits for the server to close the connection; returns the close code.
    pub async fn closed(mut self) -> Option<CloseCode> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("close within the wait");
            match message {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Frames already received and held, for assertions that nothing else arrived.
    pub fn held(&self) -> &VecDeque<Value> {
        &self.held
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the server's close arrives so the node sees a clean end.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// A WebSocket handshake with an explicit `Origin`; returns the HTTP status on refusal.
pub async fn handshake_with_origin(node: &Node, origin: &str) -> Result<(), u16> {
    let mut request = node.ws_url().into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Origin", origin.parse().expect("header value"));
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("unexpected handshake failure: {e}"),
    }
}
