//! A real cluster for tests: a throwaway `redis-server` on a free loopback port, one fresh
//! database in the throwaway PostgreSQL, and N `peerlink serve` processes that share it,
//! each with a stable node id. Everything is stopped by PID when dropped.

use super::{fresh_postgres_database, Node, NodeData, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CLUSTER_SECRET: &str = "test-cluster-secret-0123456789abcdef0123456789";

/// A throwaway Redis, without persistence: a restart starts it empty.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("peerlink-redis-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir,
        };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("redis-server is not installed: tests/run.sh installs it (apt-get install redis-server)");
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while !self.pings() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// SIGKILL, then a fresh start on the same port with nothing in it.
    pub fn kill9_and_restart_empty(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// N nodes on one Redis and one PostgreSQL database, sharing a data directory.
pub struct Cluster {
    pub redis: Redis,
    pub nodes: Vec<Node>,
    pub data: NodeData,
}

impl Cluster {
    pub async fn start(count: usize) -> Cluster {
        let redis = Redis::start();
        let dir = tempfile::Builder::new()
            .prefix("peerlink-cluster-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let data = NodeData {
            dir,
            database_url: fresh_postgres_database(),
        };
        let mut cluster = Cluster {
            redis,
            nodes: Vec::new(),
            data,
        };
        for i in 0..count {
            let node = cluster.start_node(i).await;
            cluster.nodes.push(node);
        }
        cluster.wait_for_nodes(count).await;
        cluster
    }

    fn env(&self, index: usize) -> Vec<(String, String)> {
        vec![
            ("PEERLINK_REDIS_URL".into(), self.redis.url()),
            ("PEERLINK_NODE_ID".into(), format!("node-{}", index + 1)),
            ("PEERLINK_CLUSTER_SECRET".into(), CLUSTER_SECRET.into()),
        ]
    }

    async fn start_node(&self, index: usize) -> Node {
        let env = self.env(index);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Node::start_with(self.data.clone(), &env).await
    }

    /// Starts node `index` again (after a kill) with the same id.
    pub async fn restart(&mut self, index: usize) {
        let node = self.start_node(index).await;
        self.nodes[index] = node;
    }

    /// Waits until every running node lists `count` live nodes.
    pub async fn wait_for_nodes(&self, count: usize) {
        for node in self.nodes.iter().filter(|n| n.running()) {
            let deadline = Instant::now() + WAIT;
            loop {
                let (status, body) = node.get("/api/cluster/nodes").await;
                let listed = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["nodes"].as_array().map(Vec::len));
                if status == 200 && listed == Some(count) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node on port {} lists {listed:?} live nodes, not {count}",
                    node.port
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The node whose runtime hosts `room` now (its admin API lists the room's sessions).
    pub async fn owner_of(&self, room: &str) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.running()) {
            let (_, rooms) = node.admin("GET", "/api/admin/rooms").await;
            let hosted = rooms["rooms"].as_array().is_some_and(|rooms| {
                rooms
                    .iter()
                    .any(|r| r["name"] == room && r["sessions"].as_u64().unwrap_or(0) > 0)
            });
            if hosted {
                return Some(i);
            }
        }
        None
    }
}
