//! Wiring: storage, the actor runtime and the HTTP server of one node, from start to a
//! clean stop.

use crate::cluster::node::NodeCluster;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::storage::blobs::{Blobs, DirBlobs};
use crate::storage::disk::DataVolume;
use crate::storage::{DbStore, StorageError, StoreConfig};
use crate::token;
use actix_web::{web, App, HttpServer};
use peerlink_actors::cluster_registry::ClusterPort;
use peerlink_actors::metrics::METRICS;
use peerlink_actors::runtime::{launch, RuntimeConfig};
use peerlink_actors::supervisor::ShutDown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Runtime(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Server(std::io::Error),
}

/// Pooled database connections: readers beside the one group-commit writer.
const POOL_SIZE: u32 = 8;

/// Runs a node until SIGINT or SIGTERM.
pub async fn serve(config: Config, faults: bool) -> Result<(), NodeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    raise_open_file_limit();
    let mut config = config;
    if config.cluster.is_some() && !config.node_id_given {
        config.node_id = stable_node_id(&config.data_dir)?;
    }
    log::info!("starting node: {}", config.describe());
    let store = DbStore::open(&StoreConfig {
        url: config.database.clone(),
        sqlite_sync: config.sqlite_sync,
        pool_size: POOL_SIZE,
        session_ttl: config.limits.session_ttl,
    })?;
    let cluster = match &config.cluster {
        Some(settings) => {
            let incarnation = store.register_node(&config.node_id)?;
            let cluster = NodeCluster::start(config.node_id.clone(), incarnation, settings.clone())
                .map_err(|source| NodeError::Bind {
                    addr: settings.link_bind.to_string(),
                    source,
                })?;
            log::info!(
                "cluster node {} incarnation {incarnation}; links on {}",
                config.node_id,
                cluster.link_addr()
            );
            Some(cluster)
        }
        None => None,
    };
    let runtime = launch(RuntimeConfig {
        node_id: config.node_id.clone(),
        cluster: cluster.as_ref().map(|c| {
            let port: Arc<dyn ClusterPort> = c.clone();
            (c.incarnation(), port)
        }),
        store: store.clone(),
        limits: config.limits.clone(),
        faults,
    })
    .map_err(NodeError::Runtime)?;
    if cluster.is_none() {
        // In a cluster a stored transfer is taken up by the node that next needs it.
        restore_transfers(&runtime.node).await;
    }
    let blobs: std::sync::Arc<dyn Blobs> =
        std::sync::Arc::new(DirBlobs::open(&config.blob_dir).map_err(|source| {
            NodeError::DataDir {
                path: config.blob_dir.display().to_string(),
                source,
            }
        })?);
    expire_uploads(store.clone(), blobs.clone(), config.upload_ttl);
    watch_disk(
        runtime.node.clone(),
        crate::storage::disk::DataVolume::new(&config.data_dir, config.disk_reserve),
    );
    let admin_token = config.admin_token.clone().unwrap_or_else(|| {
        let generated = token::generate();
        println!("peerlink: admin token (PEERLINK_ADMIN_TOKEN unset, generated for this run): {generated}");
        generated
    });
    let state = web::Data::new(AppState {
        node: runtime.node.clone(),
        store: store.clone(),
        allowed_origins: config.allowed_origins.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        admin_token_hash: token::hash(&admin_token),
        started: Instant::now(),
        blobs: blobs.clone(),
        volume: crate::storage::disk::DataVolume::new(&config.blob_dir, config.disk_reserve),
        upload_ttl: config.upload_ttl,
        upload_quota: config.upload_quota,
        bind: Default::default(),
        draining: Default::default(),
        cluster: cluster.clone(),
    });
    let listening = state.clone();
    let connections = std::sync::Arc::new(http::ConnectionLimits {
        http: std::sync::Arc::new(peerlink_actors::limits::AddressCounter::new(
            config.http_connections_per_address,
        )),
        trusted_proxies: config.trusted_proxies.clone(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .wrap(
                actix_web::middleware::ErrorHandlers::new()
                    .default_handler(http::json_for_empty_errors),
            )
            .wrap(actix_web::middleware::from_fn(http::limit_body_time))
            .wrap(actix_web::middleware::from_fn(http::refuse_over_limit))
            .app_data(state.clone())
            .configure(http::routes)
    })
    .on_connect(move |io, extensions| connections.on_connect(io, extensions))
    .workers(config.workers)
    // The node handles SIGTERM and SIGINT itself (see `stop_signal`).
    .disable_signals()
    // Chat frames are small and latency matters: no Nagle delay on our side.
    .tcp_nodelay(true)
    .backlog(4096)
    .max_connection_rate(1024)
    .bind(config.bind)
    .map_err(|source| NodeError::Bind {
        addr: config.bind.to_string(),
        source,
    })?;
    let addrs: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
    let _ = listening.bind.set(addrs.join(","));
    if let (Some(cluster), Some(registry), Some(http)) = (
        &cluster,
        runtime.cluster.clone(),
        server.addrs().first().copied(),
    ) {
        cluster
            .join(http, registry)
            .await
            .map_err(NodeError::Runtime)?;
    }
    for addr in server.addrs() {
        // Tests and scripts wait for this line to learn the port.
        println!("peerlink: listening on http://{addr}");
    }
    let server = server.run();
    let stopping = server.handle();
    let supervisor = runtime.supervisor.clone();
    let draining = listening.clone();
    actix_web::rt::spawn(async move {
        let signal = stop_signal().await;
        log::info!("{signal}: draining, then stopping");
        // Clients are asked to reconnect elsewhere (1012), so the graceful stop does not
        // wait on their connections; then the runtime learns that this is a shutdown, so
        // that nothing the stop ends is taken for a crash.
        http::drain_sessions(&draining);
        let _ = supervisor.send(ShutDown).await;
        stopping.stop(true).await;
    });
    server.await.map_err(NodeError::Server)?;
    log::info!("HTTP server stopped; flushing storage");
    let _ = runtime.supervisor.send(ShutDown).await;
    drop(runtime);
    Ok(())
}

/// A cluster node's id when none is configured: made up on its first start and kept in its
/// data directory, so that it is the same on every start of this node.
fn stable_node_id(data_dir: &std::path::Path) -> Result<String, NodeError> {
    let path = data_dir.join("node-id");
    let io = |source| NodeError::DataDir {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let id = format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    std::fs::write(&path, format!("{id}\n")).map_err(io)?;
    Ok(id)
}

/// Waits for SIGTERM or SIGINT; says which.
async fn stop_signal() -> &'static str {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot listen for SIGTERM and SIGINT; stop the node with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Starts the transfers that were in progress when the node last stopped; they wait,
/// paused, for their sides to reconnect.
async fn restore_transfers(node: &peerlink_actors::NodeContext) {
    let records = match node.store.load_transfers().await {
        Ok(records) => records,
        Err(e) => return log::error!("could not read the stored transfers: {e}"),
    };
    let count = records.len();
    for record in records {
        let id = record.id;
        if let Err(e) = node.host.restore_transfer(record) {
            log::error!("transfer {id} cannot resume: {e}");
            node.store.forget_transfer(id);
        }
    }
    if count > 0 {
        log::info!("{count} transfers restored, paused until their sides reconnect");
    }
}

/// Removes incomplete uploads whose time is up, and their bytes, now and then.
fn expire_uploads(
    store: std::sync::Arc<DbStore>,
    blobs: std::sync::Arc<dyn Blobs>,
    ttl: std::time::Duration,
) {
    let every = (ttl / 2).clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(60),
    );
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every);
        loop {
            ticks.tick().await;
            match store.expire_uploads().await {
                Ok(expired) => {
                    for id in expired {
                        log::info!("upload {id} expired incomplete; its bytes are removed");
                        blobs.remove(id);
                    }
                }
                Err(e) => log::warn!("could not expire uploads: {e}"),
            }
        }
    });
}

/// Measures the data volume's free space every [`DISK_WATCH_INTERVAL`]: exported as a
/// gauge, and below [`DISK_FULL_BELOW`] chat refuses messages at once instead of trying a
/// store that cannot write (which took 6 s per message and restarted rooms).
fn watch_disk(node: std::sync::Arc<peerlink_actors::NodeContext>, volume: DataVolume) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(DISK_WATCH_INTERVAL);
        loop {
            ticks.tick().await;
            let measured = volume.clone();
            let Ok(Ok(free)) = actix_web::web::block(move || measured.free_bytes()).await else {
                continue;
            };
            METRICS
                .disk_free_bytes
                .set(i64::try_from(free).unwrap_or(i64::MAX));
            let full = free < DISK_FULL_BELOW;
            if node.storage_full.swap(full, Ordering::Relaxed) != full {
                if full {
                    log::error!("the data volume is full ({free} bytes free): messages are refused until there is room");
                } else {
                    log::warn!("the data volume has room again ({free} bytes free)");
                }
            }
        }
    });
}

/// How often the free space is measured.
const DISK_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// Below this, the volume counts as full: a commit would fail.
const DISK_FULL_BELOW: u64 = 1024 * 1024;

/// Lets the node hold as many connections as the hard limit allows.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                log::warn!("could not raise the open-file limit");
            }
        }
    }
}
