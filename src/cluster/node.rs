//! This node's place in the cluster: the [`ClusterPort`] the actors' registry uses, over
//! the Redis directory, presence and membership, and the node-to-node links; and the loop
//! that turns membership and link news into what the registry must do.
//!
//! What it never does: decide anything about a room or a transfer. It finds owners, carries
//! envelopes and reports nodes coming and going; the registry and the actors do the rest.

use super::directory::{Directory, Kind};
use super::link::{Frame, LinkConfig, LinkEvent, Links, PeerNode};
use super::membership::{Membership, MembershipEvent, NodeRecord, Owner, Timings};
use super::metrics::CLUSTER_METRICS;
use super::presence::Presence;
use crate::config::ClusterConfig;
use futures_util::future::BoxFuture;
use peerlink_actors::cluster_registry::{ClusterPort, ClusterRegistry};
use peerlink_actors::envelope::Envelope;
use peerlink_actors::protocol::{NodeTag, UserId};
use peerlink_actors::registry::RegistryError;
use peerlink_actors::store::OwnedKind;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// The parts that exist once the node has joined (after its HTTP listener is bound).
struct Joined {
    membership: Membership,
    directory: Arc<Directory>,
    presence: Arc<Presence>,
}

pub struct NodeCluster {
    id: String,
    incarnation: u64,
    config: ClusterConfig,
    links: Links,
    link_addr: SocketAddr,
    joined: OnceLock<Joined>,
    registry: OnceLock<Weak<ClusterRegistry>>,
    /// Live peers by tag: where their links are.
    peers: Mutex<HashMap<NodeTag, PeerNode>>,
    /// The HTTP address of every node seen since this one started, dead ones included: a
    /// page served by a node that died may open its WebSocket here.
    known_http: Mutex<HashSet<SocketAddr>>,
    /// Peers whose link broke and has not come back: when it does, envelopes may have been
    /// lost, and the registry heals.
    broken: Mutex<HashSet<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn kind_of(kind: OwnedKind) -> Kind {
    match kind {
        OwnedKind::Room => Kind::Room,
        OwnedKind::Conversation => Kind::Dm,
        OwnedKind::Transfer => Kind::Transfer,
    }
}

fn unavailable(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Unavailable(format!("the cluster ({e})"))
}

impl NodeCluster {
    /// Starts the node-to-node links. The node joins the cluster later, with
    /// [`NodeCluster::join`], once its HTTP address is known.
    pub fn start(
        id: String,
        incarnation: u64,
        config: ClusterConfig,
    ) -> std::io::Result<Arc<NodeCluster>> {
        let link_config = LinkConfig::new(
            id.clone(),
            incarnation,
            config.secret.clone(),
            config.link_bind,
        );
        let this: Arc<OnceLock<Weak<NodeCluster>>> = Arc::new(OnceLock::new());
        let events = this.clone();
        let (links, link_addr) = Links::start(link_config, move |event| {
            if let Some(cluster) = events.get().and_then(Weak::upgrade) {
                cluster.on_link(event);
            }
        })?;
        let cluster = Arc::new(NodeCluster {
            id,
            incarnation,
            config,
            links,
            link_addr,
            joined: OnceLock::new(),
            registry: OnceLock::new(),
            peers: Mutex::new(HashMap::new()),
            broken: Mutex::new(HashSet::new()),
            known_http: Mutex::new(HashSet::new()),
        });
        let _ = this.set(Arc::downgrade(&cluster));
        Ok(cluster)
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn link_addr(&self) -> SocketAddr {
        self.link_addr
    }

    /// Registers the node, learns the live ones, and starts following membership news.
    /// Call inside the actix system.
    pub async fn join(
        self: &Arc<Self>,
        http: SocketAddr,
        registry: Arc<ClusterRegistry>,
    ) -> Result<(), String> {
        let _ = self.registry.set(Arc::downgrade(&registry));
        let client = redis::Client::open(self.config.redis_url.as_str())
            .map_err(|e| format!("PEERLINK_REDIS_URL: {e}"))?;
        let me = NodeRecord {
            id: self.id.clone(),
            incarnation: self.incarnation,
            http,
            link: self.link_addr,
            started_ms: peerlink_actors::now_ms(),
            draining: false,
        };
        let timings = Timings {
            heartbeat: self.config.heartbeat,
            dead_after: self.config.dead_after,
        };
        let (membership, events) =
            Membership::join(client, self.config.redis_prefix.clone(), me, timings)
                .await
                .map_err(|e| format!("cannot join the cluster through Redis: {e}"))?;
        for record in membership.live() {
            self.node_up(&record);
        }
        let joined = Joined {
            directory: Arc::new(Directory::new(&membership)),
            presence: Arc::new(Presence::new(&membership)),
            membership,
        };
        if self.joined.set(joined).is_err() {
            return Err("joined the cluster twice".into());
        }
        let this = Arc::downgrade(self);
        actix::spawn(follow_membership(this, events));
        Ok(())
    }

    /// Live nodes, for `/api/cluster/nodes`.
    pub fn live(&self) -> Vec<NodeRecord> {
        let mut nodes = self
            .joined
            .get()
            .map(|j| j.membership.live())
            .unwrap_or_default();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn registry(&self) -> Option<Arc<ClusterRegistry>> {
        self.registry.get().and_then(Weak::upgrade)
    }

    /// Whether `authority` (`host:port`) is the HTTP address of a node of this cluster.
    pub fn is_node_address(&self, authority: &str) -> bool {
        authority
            .parse::<SocketAddr>()
            .is_ok_and(|addr| lock(&self.known_http).contains(&addr))
    }

    fn node_up(&self, record: &NodeRecord) {
        lock(&self.known_http).insert(record.http);
        if record.id == self.id {
            return;
        }
        let peer = PeerNode {
            id: record.id.clone(),
            incarnation: record.incarnation,
            addr: record.link,
        };
        lock(&self.peers).insert(NodeTag::of(&record.id), peer);
    }

    fn node_down(&self, id: &str, incarnation: u64) {
        let tag = NodeTag::of(id);
        {
            let mut peers = lock(&self.peers);
            match peers.get(&tag) {
                Some(peer) if peer.incarnation == incarnation => {
                    peers.remove(&tag);
                }
                // A newer incarnation already took its place: nothing of it is lost.
                Some(_) => return,
                None => {}
            }
        }
        let unsent = self.links.forget(id);
        log::warn!(
            "node {id} (incarnation {incarnation}) is gone; taking over what it owned as needed"
        );
        let Some(registry) = self.registry() else {
            return;
        };
        registry.node_down(tag);
        // What never left for the dead node goes to whoever takes its actors over, after
        // the rejoins that `node_down` started, so the order holds.
        for frame in unsent {
            if let Ok(envelope) = Envelope::decode(&frame.header, frame.body) {
                registry.reroute(envelope);
            }
        }
    }

    fn on_link(&self, event: LinkEvent) {
        match event {
            LinkEvent::Frame { frame, from, .. } => {
                match Envelope::decode(&frame.header, frame.body) {
                    Ok(envelope) => {
                        if let Some(registry) = self.registry() {
                            registry.receive(envelope);
                        }
                    }
                    Err(e) => log::warn!("an envelope from node {from} is unreadable: {e}"),
                }
            }
            LinkEvent::Down { node, .. } => {
                log::info!("the link with node {node} broke");
                lock(&self.broken).insert(node);
            }
            LinkEvent::Up { node, .. } => {
                if lock(&self.broken).remove(&node) {
                    log::info!("the link with node {node} is back; healing what it carried");
                    if let Some(registry) = self.registry() {
                        registry.link_restored(NodeTag::of(&node));
                    }
                }
            }
        }
    }

    /// Brings the cluster metrics up to date (before `/metrics` is read).
    pub fn export_metrics(&self) {
        let m = &*CLUSTER_METRICS;
        m.nodes_live
            .set(i64::try_from(self.live().len()).unwrap_or(i64::MAX));
        if let Some(registry) = self.registry() {
            super::metrics::export(self.links.stats(), &registry.stats);
        }
    }

    fn on_membership(&self, event: MembershipEvent) {
        match &event {
            MembershipEvent::NodeDown { .. } => CLUSTER_METRICS.nodes_declared_dead.inc(),
            MembershipEvent::RedisUp => CLUSTER_METRICS.redis_reconnects.inc(),
            _ => {}
        }
        match event {
            MembershipEvent::NodeUp(record) => {
                log::info!("node {} joined the cluster", record.id);
                self.node_up(&record);
            }
            MembershipEvent::NodeDown { id, incarnation } => self.node_down(&id, incarnation),
            MembershipEvent::Evicted => {
                // Declared dead while paused or cut off: others have taken over what this
                // node owned, and the database refuses its writes. Leave, so that its
                // clients reconnect to a live node (Orleans: a node declared dead stops).
                log::error!("this node was declared dead by the cluster; stopping");
                std::process::exit(3);
            }
            MembershipEvent::RedisReset => {
                log::warn!("Redis lost its data; registering again and re-placing rooms");
                self.republish();
                if let Some(registry) = self.registry() {
                    registry.directory_reset();
                }
            }
            MembershipEvent::RedisDown => log::warn!("Redis is unreachable; retrying"),
            MembershipEvent::RedisUp => log::info!("Redis is back"),
        }
    }

    /// Publishes this node's sessions per user again (Redis lost them).
    fn republish(&self) {
        let (Some(joined), Some(registry)) = (self.joined.get(), self.registry()) else {
            return;
        };
        let all: Vec<(uuid::Uuid, u32)> = registry
            .users_here()
            .into_iter()
            .map(|(user, count)| (user.0, u32::try_from(count).unwrap_or(u32::MAX)))
            .collect();
        let presence = joined.presence.clone();
        actix::spawn(async move {
            if let Err(e) = presence.republish(all).await {
                log::warn!("could not publish presence again: {e}");
            }
        });
    }
}

async fn follow_membership(
    cluster: Weak<NodeCluster>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<MembershipEvent>,
) {
    while let Some(event) = events.recv().await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        cluster.on_membership(event);
    }
}

impl ClusterPort for NodeCluster {
    fn place(
        &self,
        kind: OwnedKind,
        key: String,
    ) -> BoxFuture<'static, Result<NodeTag, RegistryError>> {
        let Some(joined) = self.joined.get() else {
            return Box::pin(async { Err(unavailable("not joined yet")) });
        };
        let directory = joined.directory.clone();
        Box::pin(async move {
            let owner: Owner = directory
                .claim(kind_of(kind), &key)
                .await
                .map_err(unavailable)?;
            Ok(NodeTag::of(&owner.node))
        })
    }

    fn locate(
        &self,
        kind: OwnedKind,
        key: String,
    ) -> BoxFuture<'static, Result<Option<NodeTag>, RegistryError>> {
        let Some(joined) = self.joined.get() else {
            return Box::pin(async { Err(unavailable("not joined yet")) });
        };
        let directory = joined.directory.clone();
        Box::pin(async move {
            let owner = directory
                .lookup(kind_of(kind), &key)
                .await
                .map_err(unavailable)?;
            Ok(owner.map(|owner| NodeTag::of(&owner.node)))
        })
    }

    fn invalidate(&self, kind: OwnedKind, key: &str) {
        if let Some(joined) = self.joined.get() {
            joined.directory.invalidate(kind_of(kind), key);
        }
    }

    fn release(&self, kind: OwnedKind, key: String) {
        if let Some(joined) = self.joined.get() {
            let directory = joined.directory.clone();
            actix::spawn(async move {
                if let Err(e) = directory.release(kind_of(kind), &key).await {
                    log::debug!("could not release a directory entry: {e}");
                }
            });
        }
    }

    fn send(&self, to: NodeTag, envelope: Envelope) -> Result<(), (RegistryError, Box<Envelope>)> {
        let Some(peer) = lock(&self.peers).get(&to).cloned() else {
            let error = RegistryError::Unavailable(format!("node {to} is not live"));
            return Err((error, Box::new(envelope)));
        };
        let (header, body) = match envelope.encode() {
            Ok(encoded) => encoded,
            Err(e) => return Err((unavailable(e), Box::new(envelope))),
        };
        self.links.send(&peer, Frame { header, body }).map_err(|e| {
            (
                RegistryError::Unavailable(format!("node {to}: {e}")),
                Box::new(envelope),
            )
        })
    }

    fn user_nodes(&self, user: UserId) -> BoxFuture<'static, Result<Vec<NodeTag>, RegistryError>> {
        let Some(joined) = self.joined.get() else {
            return Box::pin(async { Err(unavailable("not joined yet")) });
        };
        let presence = joined.presence.clone();
        Box::pin(async move {
            let owners = presence.nodes_of(user.0).await.map_err(unavailable)?;
            Ok(owners.iter().map(|o| NodeTag::of(&o.node)).collect())
        })
    }

    fn live_nodes(&self) -> Vec<NodeTag> {
        let mut nodes: Vec<NodeTag> = lock(&self.peers).keys().copied().collect();
        nodes.push(NodeTag::of(&self.id));
        nodes
    }

    fn set_sessions(&self, user: UserId, count: usize) {
        if let Some(joined) = self.joined.get() {
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            let presence = joined.presence.clone();
            actix::spawn(async move {
                if let Err(e) = presence.set_sessions(user.0, count).await {
                    log::debug!("could not publish presence: {e}");
                }
            });
        }
    }
}
