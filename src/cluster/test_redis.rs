//! Test support: a real redis-server on a free loopback port, and helpers to join nodes
//! and wait for their events with a bound.

use super::membership::{Membership, MembershipEvent, NodeRecord, Timings};
use redis::aio::MultiplexedConnection;
use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// Short timings so that tests see deaths in well under a second.
pub(crate) const TEST_TIMINGS: Timings = Timings {
    heartbeat: Duration::from_millis(100),
    dead_after: Duration::from_millis(500),
};

/// Bound on any wait for something that should happen within a few beats; generous
/// because the machine running the tests may be busy compiling.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) const PREFIX: &str = "peerlink:";

/// A redis-server child process, killed (SIGKILL, by PID) on drop.
pub(crate) struct RedisServer {
    child: Option<Child>,
    pub(crate) port: u16,
}

impl RedisServer {
    /// Starts one on a free port (a few tries, since the port may be taken between
    /// finding it and redis binding it).
    pub(crate) async fn start() -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            if let Some(server) = Self::start_on(port).await {
                return server;
            }
        }
        panic!("could not start redis-server");
    }

    /// Starts one on `port`, empty (no RDB, no AOF); `None` if it exits at once.
    pub(crate) async fn start_on(port: u16) -> Option<RedisServer> {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server, at /usr/bin/redis-server)");
        let mut server = RedisServer {
            child: Some(child),
            port,
        };
        for _ in 0..100 {
            if server.has_exited() {
                return None;
            }
            if server.connection().await.is_ok() {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub(crate) fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("redis url")
    }

    /// A connection of the test's own, to look at keys directly.
    pub(crate) async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut connection = self.client().get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(connection)
    }

    /// kill -9, and reap it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

pub(crate) fn record(id: &str, incarnation: u64) -> NodeRecord {
    NodeRecord {
        id: id.to_owned(),
        incarnation,
        http: "127.0.0.1:8080".parse().expect("addr"),
        link: "127.0.0.1:9090".parse().expect("addr"),
        started_ms: 1_700_000_000_000,
        draining: false,
    }
}

pub(crate) async fn join(
    server: &RedisServer,
    id: &str,
    incarnation: u64,
) -> (Membership, UnboundedReceiver<MembershipEvent>) {
    Membership::join(
        server.client(),
        PREFIX,
        record(id, incarnation),
        TEST_TIMINGS,
    )
    .await
    .expect("join")
}

/// Waits (bounded by [`WAIT`]) for an event that `wanted` accepts; returns every event
/// received up to and including it.
pub(crate) async fn wait_for_event(
    events: &mut UnboundedReceiver<MembershipEvent>,
    wanted: impl Fn(&MembershipEvent) -> bool,
) -> Vec<MembershipEvent> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            let done = wanted(&event);
            seen.push(event);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "event not seen; saw {seen:?}");
    seen
}

/// Polls `check` every 20 ms until it is true, bounded by [`WAIT`]: for state that has
/// no event (keys appearing or expiring in Redis).
pub(crate) async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let reached = tokio::time::timeout(WAIT, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "timed out waiting until {what}");
}

/// Whether `key` exists, on the test's own connection.
pub(crate) async fn exists(connection: &mut MultiplexedConnection, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<bool>(connection)
        .await
        .expect("EXISTS")
}
