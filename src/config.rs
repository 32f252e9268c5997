//! Configuration: `PEERLINK_*` environment variables and matching flags, checked at start.
//!
//! Every value arrives as text and is checked here, so that a bad setting stops the node
//! with one line naming both the variable and the flag.

use crate::storage::connection::{DatabaseUrl, SqliteSync};
use clap::Args;
use peerlink_actors::limits::Limits;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `peerlink serve`; each also reads the environment variable named beside it.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PEERLINK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Directory for the SQLite database and stored files.
    #[arg(long, env = "PEERLINK_DATA_DIR", default_value = "./peerlink-data")]
    pub data_dir: PathBuf,
    /// A SQLite path, sqlite://PATH, or postgres://… (default: DATA_DIR/peerlink.db).
    #[arg(long, env = "PEERLINK_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for the bytes of uploads (default: DATA_DIR/blobs). In a cluster every
    /// node mounts the same one.
    #[arg(long, env = "PEERLINK_BLOB_DIR")]
    pub blob_dir: Option<PathBuf>,
    /// redis://… to join a cluster (unset: a single node).
    #[arg(long, env = "PEERLINK_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The secret every node of a cluster shares (at least 32 characters): it
    /// authenticates the node-to-node links. Required with PEERLINK_REDIS_URL.
    #[arg(long, env = "PEERLINK_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Where this node listens for other nodes of its cluster (unset: the IP of
    /// PEERLINK_BIND, any free port). It must be reachable from the other nodes.
    #[arg(long, env = "PEERLINK_CLUSTER_BIND")]
    pub cluster_bind: Option<String>,
    /// Prefix of every Redis key of this cluster, so that clusters can share a Redis.
    #[arg(long, env = "PEERLINK_REDIS_PREFIX", default_value = "peerlink:")]
    pub redis_prefix: String,
    /// Milliseconds between a cluster node's heartbeats.
    #[arg(long, env = "PEERLINK_CLUSTER_HEARTBEAT_MS", default_value = "500")]
    pub cluster_heartbeat_ms: String,
    /// Milliseconds of silence after which a node is declared dead.
    #[arg(long, env = "PEERLINK_CLUSTER_DEAD_AFTER_MS", default_value = "2500")]
    pub cluster_dead_after_ms: String,
    /// Bearer token for /api/admin (unset: a random one is printed at start).
    #[arg(long, env = "PEERLINK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Comma-separated origins allowed to open /ws (unset: the node's own origin).
    #[arg(long, env = "PEERLINK_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Comma-separated addresses of reverse proxies whose `X-Forwarded-For` names the
    /// client (unset: the connecting address is the client).
    #[arg(long, env = "PEERLINK_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// This node's id (unset: a random one).
    #[arg(long, env = "PEERLINK_NODE_ID")]
    pub node_id: Option<String>,
    /// HTTP worker threads (unset: one per core).
    #[arg(long, env = "PEERLINK_WORKERS")]
    pub workers: Option<String>,
    /// Seconds a token stays valid after its user's last activity.
    #[arg(long, env = "PEERLINK_SESSION_TTL_SECS", default_value = "3600")]
    pub session_ttl_secs: String,
    /// Sustained frames per second per user.
    #[arg(long, env = "PEERLINK_RATE_PER_SEC", default_value = "20")]
    pub rate_per_sec: String,
    /// Frames per user allowed in a burst above the sustained rate.
    #[arg(long, env = "PEERLINK_RATE_BURST", default_value = "40")]
    pub rate_burst: String,
    /// Largest text frame in bytes.
    #[arg(long, env = "PEERLINK_MAX_FRAME_BYTES", default_value = "65536")]
    pub max_frame_bytes: String,
    /// Longest chat text in characters.
    #[arg(long, env = "PEERLINK_MAX_TEXT_CHARS", default_value = "4000")]
    pub max_text_chars: String,
    /// Messages per room kept in memory for `join` with `since`.
    #[arg(long, env = "PEERLINK_ROOM_BACKLOG", default_value = "1000")]
    pub room_backlog: String,
    /// SQLite durability: `full` (survives power loss) or `normal` (survives a crash of
    /// the node process only).
    #[arg(long, env = "PEERLINK_SQLITE_SYNC", default_value = "full")]
    pub sqlite_sync: String,
    /// Largest file a transfer may carry, in bytes.
    #[arg(long, env = "PEERLINK_MAX_FILE_SIZE", default_value = "1073741824")]
    pub max_file_size: String,
    /// Seconds an unanswered offer waits before it is withdrawn.
    #[arg(long, env = "PEERLINK_OFFER_TTL_SECS", default_value = "600")]
    pub offer_ttl_secs: String,
    /// Seconds a paused transfer waits for its sides to come back.
    #[arg(long, env = "PEERLINK_TRANSFER_TTL_SECS", default_value = "7200")]
    pub transfer_ttl_secs: String,
    /// Transfers one user may have in progress at once.
    #[arg(long, env = "PEERLINK_TRANSFERS_PER_USER", default_value = "5")]
    pub transfers_per_user: String,
    /// Transfers the node runs at once.
    #[arg(long, env = "PEERLINK_TRANSFERS_PER_NODE", default_value = "1000")]
    pub transfers_per_node: String,
    /// Seconds a streaming transfer may go without an acknowledgement while data waits;
    /// then it pauses and frees that data.
    #[arg(long, env = "PEERLINK_TRANSFER_STALL_SECS", default_value = "30")]
    pub transfer_stall_secs: String,
    /// Bytes all streaming transfers may hold unacknowledged together (a window each);
    /// an accepted transfer past it waits, paused, until there is room.
    #[arg(
        long,
        env = "PEERLINK_TRANSFER_MEMORY_BYTES",
        default_value = "536870912"
    )]
    pub transfer_memory_bytes: String,
    /// Bytes of the data volume that uploads must leave free, for chat and the database.
    #[arg(long, env = "PEERLINK_DISK_RESERVE_BYTES", default_value = "268435456")]
    pub disk_reserve_bytes: String,
    /// Seconds an incomplete upload is kept before its bytes are removed.
    #[arg(long, env = "PEERLINK_UPLOAD_TTL_SECS", default_value = "7200")]
    pub upload_ttl_secs: String,
    /// Bytes one user's uploads (finished, and unfinished ones not yet expired) may take.
    #[arg(
        long,
        env = "PEERLINK_UPLOAD_QUOTA_BYTES",
        default_value = "10737418240"
    )]
    pub upload_quota_bytes: String,
    /// Uploads and share links one user may create per minute (and at once).
    #[arg(long, env = "PEERLINK_CREATIONS_PER_MINUTE", default_value = "60")]
    pub creations_per_minute: String,
    /// Offers one user may make per minute.
    #[arg(long, env = "PEERLINK_OFFERS_PER_MINUTE", default_value = "20")]
    pub offers_per_minute: String,
    /// New identities one client address may create per minute (and at once). Behind a
    /// reverse proxy every client has the proxy's address: raise it there.
    #[arg(long, env = "PEERLINK_SIGNUPS_PER_MINUTE", default_value = "60")]
    pub signups_per_minute: String,
    /// Seconds after which a room with no session, or a user with no session and no
    /// transfer, is taken out of memory (it is loaded again on its next use).
    #[arg(long, env = "PEERLINK_PASSIVATE_AFTER_SECS", default_value = "300")]
    pub passivate_after_secs: String,
    /// WebSocket connections one client address may hold open at once (behind a reverse
    /// proxy every client has the proxy's address: raise it there).
    #[arg(long, env = "PEERLINK_CONNECTIONS_PER_ADDRESS", default_value = "256")]
    pub connections_per_address: String,
    /// Plain HTTP connections (not yet WebSockets) one client address may hold open at
    /// once; requests on more get 429. Trusted proxies are not counted. By default the
    /// same as PEERLINK_CONNECTIONS_PER_ADDRESS: every WebSocket starts as one.
    #[arg(long, env = "PEERLINK_HTTP_CONNECTIONS_PER_ADDRESS")]
    pub http_connections_per_address: Option<String>,
}

/// A setting that stops the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = self
            .setting
            .trim_start_matches("PEERLINK_")
            .to_lowercase()
            .replace('_', "-");
        write!(
            f,
            "invalid setting {} (--{flag}): {}",
            self.setting, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

/// The checked configuration of a node.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// Where upload bytes live (shared by every node of a cluster).
    pub blob_dir: PathBuf,
    pub database: DatabaseUrl,
    pub sqlite_sync: SqliteSync,
    pub admin_token: Option<String>,
    /// Empty: only the node's own origin (the request's Host).
    pub allowed_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub node_id: String,
    pub workers: usize,
    pub limits: Limits,
    pub upload_ttl: Duration,
    pub upload_quota: u64,
    pub http_connections_per_address: usize,
    pub disk_reserve: u64,
    /// Set when the node is one of a cluster.
    pub cluster: Option<ClusterConfig>,
    /// Whether PEERLINK_NODE_ID was set; a cluster node without it keeps the id it made up
    /// on its first start in its data directory.
    pub node_id_given: bool,
}

/// How a node takes part in a cluster.
#[derive(Clone)]
pub struct ClusterConfig {
    pub redis_url: String,
    pub redis_prefix: String,
    /// Authenticates the node-to-node links.
    pub secret: std::sync::Arc<[u8]>,
    /// Where the node listens for other nodes.
    pub link_bind: SocketAddr,
    pub heartbeat: Duration,
    pub dead_after: Duration,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "redis={} prefix={} link={} heartbeat={}ms dead_after={}ms secret=(set)",
            redact_url(&self.redis_url),
            self.redis_prefix,
            self.link_bind,
            self.heartbeat.as_millis(),
            self.dead_after.as_millis()
        )
    }
}

/// A URL with its password (if any) hidden.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://(redacted){}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl ServeArgs {
    pub fn check(&self) -> Result<Config, ConfigError> {
        let bind: SocketAddr = self.bind.trim().parse().map_err(|_| {
            invalid(
                "PEERLINK_BIND",
                format!("{:?} is not an address like 127.0.0.1:8080", self.bind),
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("PEERLINK_DATA_DIR", "is empty"));
        }
        let database = match &self.database_url {
            Some(raw) => {
                DatabaseUrl::parse(raw).map_err(|e| invalid("PEERLINK_DATABASE_URL", e))?
            }
            None => DatabaseUrl::Sqlite(
                self.data_dir
                    .join("peerlink.db")
                    .to_string_lossy()
                    .into_owned(),
            ),
        };
        if let Some(redis) = self.redis_url.as_deref().filter(|r| !r.trim().is_empty()) {
            if !(redis.starts_with("redis://") || redis.starts_with("rediss://")) {
                return Err(invalid(
                    "PEERLINK_REDIS_URL",
                    "must start with redis:// or rediss://",
                ));
            }
            if let DatabaseUrl::Sqlite(_) = database {
                return Err(invalid(
                    "PEERLINK_REDIS_URL",
                    "a cluster shares one PostgreSQL: set PEERLINK_DATABASE_URL=postgres://… too",
                ));
            }
        }
        let admin_token = match self.admin_token.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(token) if token.len() < 16 => {
                return Err(invalid(
                    "PEERLINK_ADMIN_TOKEN",
                    "must be at least 16 characters",
                ))
            }
            Some(token) => Some(token.to_owned()),
        };
        let allowed_origins = match self.allowed_origins.as_deref() {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(check_origin)
                .collect::<Result<_, _>>()?,
        };
        let trusted_proxies = self
            .trusted_proxies
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse().map_err(|_| {
                    invalid(
                        "PEERLINK_TRUSTED_PROXIES",
                        format!("{p:?} is not an IP address (list the proxies' addresses, e.g. 127.0.0.1)"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let node_id_given = self
            .node_id
            .as_deref()
            .is_some_and(|id| !id.trim().is_empty());
        let node_id = match self.node_id.as_deref().map(str::trim) {
            None | Some("") => format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            Some(id)
                if id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                id.to_owned()
            }
            Some(_) => {
                return Err(invalid(
                    "PEERLINK_NODE_ID",
                    "use 1-64 characters of A-Z a-z 0-9 - _",
                ))
            }
        };
        let workers = match &self.workers {
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
            Some(raw) => number("PEERLINK_WORKERS", raw, 1, 256)?,
        };
        let sqlite_sync = match self.sqlite_sync.trim() {
            "full" => SqliteSync::Full,
            "normal" => SqliteSync::Normal,
            other => {
                return Err(invalid(
                    "PEERLINK_SQLITE_SYNC",
                    format!("{other:?} is neither full nor normal"),
                ))
            }
        };
        let defaults = Limits::default();
        let limits = Limits {
            session_ttl: Duration::from_secs(number(
                "PEERLINK_SESSION_TTL_SECS",
                &self.session_ttl_secs,
                60,
                365 * 24 * 3600,
            )?),
            rate_per_sec: number::<u32>("PEERLINK_RATE_PER_SEC", &self.rate_per_sec, 1, 1_000_000)?
                .into(),
            rate_burst: number::<u32>("PEERLINK_RATE_BURST", &self.rate_burst, 1, 1_000_000)?
                .into(),
            max_text_frame: number(
                "PEERLINK_MAX_FRAME_BYTES",
                &self.max_frame_bytes,
                1024,
                16 * 1024 * 1024,
            )?,
            max_text_chars: number(
                "PEERLINK_MAX_TEXT_CHARS",
                &self.max_text_chars,
                1,
                1_000_000,
            )?,
            room_backlog: number("PEERLINK_ROOM_BACKLOG", &self.room_backlog, 1, 100_000)?,
            max_file_size: number("PEERLINK_MAX_FILE_SIZE", &self.max_file_size, 0, 1 << 50)?,
            offer_ttl: Duration::from_secs(number(
                "PEERLINK_OFFER_TTL_SECS",
                &self.offer_ttl_secs,
                1,
                7 * 24 * 3600,
            )?),
            transfer_ttl: Duration::from_secs(number(
                "PEERLINK_TRANSFER_TTL_SECS",
                &self.transfer_ttl_secs,
                1,
                30 * 24 * 3600,
            )?),
            transfers_per_user: number(
                "PEERLINK_TRANSFERS_PER_USER",
                &self.transfers_per_user,
                1,
                10_000,
            )?,
            transfers_per_node: number(
                "PEERLINK_TRANSFERS_PER_NODE",
                &self.transfers_per_node,
                1,
                1_000_000,
            )?,
            creations_per_minute: number(
                "PEERLINK_CREATIONS_PER_MINUTE",
                &self.creations_per_minute,
                1,
                1_000_000,
            )?,
            transfer_stall: Duration::from_secs(number(
                "PEERLINK_TRANSFER_STALL_SECS",
                &self.transfer_stall_secs,
                1,
                24 * 3600,
            )?),
            transfer_memory: number(
                "PEERLINK_TRANSFER_MEMORY_BYTES",
                &self.transfer_memory_bytes,
                1,
                1 << 50,
            )?,
            offers_per_minute: number(
                "PEERLINK_OFFERS_PER_MINUTE",
                &self.offers_per_minute,
                1,
                100_000,
            )?,
            signups_per_minute: number(
                "PEERLINK_SIGNUPS_PER_MINUTE",
                &self.signups_per_minute,
                1,
                1_000_000,
            )?,
            connections_per_address: number(
                "PEERLINK_CONNECTIONS_PER_ADDRESS",
                &self.connections_per_address,
                1,
                10_000_000,
            )?,
            idle_actor_ttl: Duration::from_secs(number(
                "PEERLINK_PASSIVATE_AFTER_SECS",
                &self.passivate_after_secs,
                1,
                24 * 3600,
            )?),
            ..defaults
        };
        if limits.max_text_chars * 4 + 1024 > limits.max_text_frame {
            return Err(invalid(
                "PEERLINK_MAX_TEXT_CHARS",
                format!(
                    "{} characters may not fit in a {}-byte frame (PEERLINK_MAX_FRAME_BYTES)",
                    limits.max_text_chars, limits.max_text_frame
                ),
            ));
        }
        if limits.transfer_memory < limits.window {
            return Err(invalid(
                "PEERLINK_TRANSFER_MEMORY_BYTES",
                format!(
                    "{} bytes do not hold one transfer window ({} bytes)",
                    limits.transfer_memory, limits.window
                ),
            ));
        }
        Ok(Config {
            bind,
            data_dir: self.data_dir.clone(),
            blob_dir: match &self.blob_dir {
                Some(dir) if dir.as_os_str().is_empty() => {
                    return Err(invalid("PEERLINK_BLOB_DIR", "is empty"))
                }
                Some(dir) => dir.clone(),
                None => self.data_dir.join("blobs"),
            },
            database,
            sqlite_sync,
            admin_token,
            allowed_origins,
            trusted_proxies,
            cluster: self.cluster(bind)?,
            node_id_given,
            node_id,
            workers,
            limits,
            upload_ttl: Duration::from_secs(number(
                "PEERLINK_UPLOAD_TTL_SECS",
                &self.upload_ttl_secs,
                1,
                30 * 24 * 3600,
            )?),
            upload_quota: number(
                "PEERLINK_UPLOAD_QUOTA_BYTES",
                &self.upload_quota_bytes,
                0,
                1 << 50,
            )?,
            http_connections_per_address: number(
                "PEERLINK_HTTP_CONNECTIONS_PER_ADDRESS",
                self.http_connections_per_address
                    .as_deref()
                    .unwrap_or(&self.connections_per_address),
                1,
                10_000_000,
            )?,
            disk_reserve: number(
                "PEERLINK_DISK_RESERVE_BYTES",
                &self.disk_reserve_bytes,
                0,
                1 << 50,
            )?,
        })
    }
}

fn number<T>(setting: &'static str, raw: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let value: T = raw
        .trim()
        .parse()
        .map_err(|_| invalid(setting, format!("{raw:?} is not a whole number")))?;
    if value < min || value > max {
        return Err(invalid(
            setting,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(value)
}

/// An origin is `http(s)://host[:port]` with nothing after it.
fn check_origin(origin: &str) -> Result<String, ConfigError> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains('/') => Ok(origin.to_ascii_lowercase()),
        _ => Err(invalid(
            "PEERLINK_ALLOWED_ORIGINS",
            format!("{origin:?} is not an origin like https://chat.example.com"),
        )),
    }
}

impl ServeArgs {
    /// The cluster settings, when PEERLINK_REDIS_URL is set.
    fn cluster(&self, bind: SocketAddr) -> Result<Option<ClusterConfig>, ConfigError> {
        let Some(redis_url) = self
            .redis_url
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        else {
            return Ok(None);
        };
        let secret = match self.cluster_secret.as_deref().map(str::trim) {
            Some(secret) if secret.len() >= 32 => secret.as_bytes().into(),
            _ => {
                return Err(invalid(
                    "PEERLINK_CLUSTER_SECRET",
                    "a cluster needs a shared secret of at least 32 characters (e.g. `openssl rand -hex 32`)",
                ))
            }
        };
        let link_bind = match self.cluster_bind.as_deref().map(str::trim) {
            None | Some("") => SocketAddr::new(bind.ip(), 0),
            Some(raw) => raw.parse().map_err(|_| {
                invalid(
                    "PEERLINK_CLUSTER_BIND",
                    format!("{raw:?} is not an address like 127.0.0.1:7000"),
                )
            })?,
        };
        if link_bind.ip().is_unspecified() {
            return Err(invalid(
                "PEERLINK_CLUSTER_BIND",
                "must name the address other nodes reach this one at, not 0.0.0.0 or ::",
            ));
        }
        let heartbeat_ms: u64 = number(
            "PEERLINK_CLUSTER_HEARTBEAT_MS",
            &self.cluster_heartbeat_ms,
            50,
            60_000,
        )?;
        let dead_after_ms: u64 = number(
            "PEERLINK_CLUSTER_DEAD_AFTER_MS",
            &self.cluster_dead_after_ms,
            100,
            600_000,
        )?;
        if dead_after_ms < 2 * heartbeat_ms {
            return Err(invalid(
                "PEERLINK_CLUSTER_DEAD_AFTER_MS",
                "must be at least twice PEERLINK_CLUSTER_HEARTBEAT_MS, or one late beat kills a node",
            ));
        }
        let prefix = self.redis_prefix.trim();
        if prefix.is_empty() || prefix.len() > 64 {
            return Err(invalid("PEERLINK_REDIS_PREFIX", "use 1-64 characters"));
        }
        Ok(Some(ClusterConfig {
            redis_url: redis_url.to_owned(),
            redis_prefix: prefix.to_owned(),
            secret,
            link_bind,
            heartbeat: Duration::from_millis(heartbeat_ms),
            dead_after: Duration::from_millis(dead_after_ms),
        }))
    }
}

impl Config {
    /// The effective configuration, secrets redacted, for the start-up log.
    pub fn describe(&self) -> String {
        format!(
            "bind={} data_dir={} database={} sqlite_sync={:?} node_id={} workers={} allowed_origins={} admin_token={} rate={}/s burst {} session_ttl={}s",
            self.bind,
            self.data_dir.display(),
            self.database.redacted(),
            self.sqlite_sync,
            self.node_id,
            self.workers,
            if self.allowed_origins.is_empty() { "(same origin)".to_owned() } else { self.allowed_origins.join(",") },
            if self.admin_token.is_some() { "(set)" } else { "(generated)" },
            self.limits.rate_per_sec,
            self.limits.rate_burst,
            self.limits.session_ttl.as_secs(),
        ) + &match &self.cluster {
            Some(cluster) => format!(" cluster=({cluster:?})"),
            None => " cluster=(single node)".to_owned(),
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
