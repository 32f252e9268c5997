//! Starting a node's actor runtime: the core arbiter where rooms, peers and transfers run,
//! the registry, the hash actor and the supervisor, wired into one [`NodeContext`].

use crate::cluster_registry::{ClusterPort, ClusterRegistry};
use crate::limits::{AddressCounter, ByteBudget, Limits, SignupLimiter, UserRateLimiter};
use crate::local_registry::LocalRegistry;
use crate::registry::{ClusterView, Host, Router};
use crate::store::Store;
use crate::supervisor::NodeSupervisor;
use crate::transfer::book::{TransferBook, TransferLimits};
use crate::NodeContext;
use actix::prelude::*;
use std::sync::Arc;

/// What starting the runtime gives the node.
pub struct Runtime {
    pub node: Arc<NodeContext>,
    pub supervisor: Addr<NodeSupervisor>,
    /// In a cluster: the registry, which takes envelopes and membership news from the node.
    pub cluster: Option<Arc<ClusterRegistry>>,
}

/// How to build a node's runtime.
pub struct RuntimeConfig {
    pub node_id: String,
    /// Set in a cluster (see [`NodeContext::incarnation`]), with the cluster layer.
    pub cluster: Option<(u64, Arc<dyn ClusterPort>)>,
    pub store: Arc<dyn Store>,
    pub limits: Limits,
    pub faults: bool,
}

/// Starts the core arbiter, the registry and the supervisor. Call inside a running actix
/// system.
pub fn launch(config: RuntimeConfig) -> Result<Runtime, String> {
    let core = Arbiter::new();
    let local = Arc::new(LocalRegistry::new(core.handle()));
    let node_tag = crate::protocol::NodeTag::of(&config.node_id);
    let (incarnation, cluster) = match config.cluster {
        Some((incarnation, port)) => {
            let store = config.store.clone();
            let registry =
                ClusterRegistry::new(node_tag, local.clone(), port, store, core.handle());
            (Some(incarnation), Some(registry))
        }
        None => (None, None),
    };
    let (router, host, view): (Arc<dyn Router>, Arc<dyn Host>, Arc<dyn ClusterView>) =
        match &cluster {
            Some(c) => (c.clone(), c.clone(), c.clone()),
            None => (local.clone(), local.clone(), local.clone()),
        };
    let hasher = crate::hash_actor::HashActor::start()
        .map_err(|e| format!("cannot start the hash actor: {e}"))?;
    let limits = config.limits;
    let transfers = TransferBook::new(TransferLimits {
        per_user: limits.transfers_per_user,
        per_node: limits.transfers_per_node,
        offers_per_minute: limits.offers_per_minute,
    });
    let node = Arc::new(NodeContext {
        node_tag,
        node_id: config.node_id,
        incarnation,
        router,
        host,
        view,
        store: config.store,
        rate: UserRateLimiter::new(limits.rate_per_sec, limits.rate_burst),
        addresses: Arc::new(AddressCounter::new(limits.connections_per_address)),
        creations: UserRateLimiter::new(
            f64::from(limits.creations_per_minute) / 60.0,
            f64::from(limits.creations_per_minute),
        ),
        signups: SignupLimiter::new(
            limits.signups_per_minute as f64 / 60.0,
            limits.signups_per_minute as f64,
        ),
        transfers,
        transfer_memory: ByteBudget::new(limits.transfer_memory),
        storage_full: Default::default(),
        hasher,
        limits,
        faults: config.faults,
    });
    let supervisor = NodeSupervisor::new(node.clone(), core).start();
    local.attach(&node, supervisor.clone().recipient());
    Ok(Runtime {
        node,
        supervisor,
        cluster,
    })
}
