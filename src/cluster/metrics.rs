//! The cluster's Prometheus metrics, registered beside the node's own: how many nodes this
//! one sees alive, deaths it saw declared, Redis reconnects, what the node-to-node links
//! carried, and what the registry healed or took over. Counters kept elsewhere as plain
//! atomics (the links', the registry's) are brought up to date when `/metrics` is read.

use peerlink_actors::metrics::METRICS;
use prometheus::{IntCounter, IntGauge};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

pub struct ClusterMetrics {
    pub nodes_live: IntGauge,
    pub nodes_declared_dead: IntCounter,
    pub redis_reconnects: IntCounter,
    link_bytes_sent: IntCounter,
    link_bytes_received: IntCounter,
    link_frames_sent: IntCounter,
    link_frames_received: IntCounter,
    link_auth_failures: IntCounter,
    rooms_healed: IntCounter,
    transfers_taken_over: IntCounter,
}

pub static CLUSTER_METRICS: LazyLock<ClusterMetrics> = LazyLock::new(ClusterMetrics::build);

fn gauge(name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).unwrap_or_else(|_| unreachable_metric());
    if let Err(e) = METRICS.registry.register(Box::new(gauge.clone())) {
        log::error!("metric {name} not registered: {e}");
    }
    gauge
}

fn counter(name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).unwrap_or_else(|_| unreachable_metric());
    if let Err(e) = METRICS.registry.register(Box::new(counter.clone())) {
        log::error!("metric {name} not registered: {e}");
    }
    counter
}

/// The names and help texts above are constants that prometheus accepts.
fn unreachable_metric<T>() -> T {
    unreachable!("a constant metric definition was refused")
}

impl ClusterMetrics {
    fn build() -> ClusterMetrics {
        ClusterMetrics {
            nodes_live: gauge("cluster_nodes_live", "Live nodes this node sees, itself included"),
            nodes_declared_dead: counter(
                "cluster_nodes_declared_dead_total",
                "Nodes this node saw declared dead",
            ),
            redis_reconnects: counter(
                "cluster_redis_reconnects_total",
                "Times Redis came back after being unreachable",
            ),
            link_bytes_sent: counter("cluster_link_bytes_sent_total", "Bytes sent to other nodes"),
            link_bytes_received: counter(
                "cluster_link_bytes_received_total",
                "Bytes received from other nodes",
            ),
            link_frames_sent: counter(
                "cluster_link_envelopes_sent_total",
                "Envelopes sent to other nodes",
            ),
            link_frames_received: counter(
                "cluster_link_envelopes_received_total",
                "Envelopes received from other nodes",
            ),
            link_auth_failures: counter(
                "cluster_link_auth_failures_total",
                "Node-to-node connections refused during the handshake",
            ),
            rooms_healed: counter(
                "cluster_rooms_healed_total",
                "Times this node handed its members of a room to the room's owner again (a gap, a death, a link back, a takeover)",
            ),
            transfers_taken_over: counter(
                "cluster_transfers_taken_over_total",
                "Transfers this node took over from the database after their node died",
            ),
        }
    }
}

/// Raises `counter` to `value` (both only grow).
fn catch_up(counter: &IntCounter, value: &AtomicU64) {
    let value = value.load(Ordering::Relaxed);
    let shown = counter.get();
    if value > shown {
        counter.inc_by(value - shown);
    }
}

/// Brings the counters kept as atomics up to date, before a scrape.
pub fn export(
    links: &super::link::LinkStats,
    registry: &peerlink_actors::cluster_registry::RegistryStats,
) {
    let m = &*CLUSTER_METRICS;
    catch_up(&m.link_bytes_sent, &links.bytes_sent);
    catch_up(&m.link_bytes_received, &links.bytes_received);
    catch_up(&m.link_frames_sent, &links.frames_sent);
    catch_up(&m.link_frames_received, &links.frames_received);
    catch_up(&m.link_auth_failures, &links.auth_failures);
    catch_up(&m.rooms_healed, &registry.rooms_healed);
    catch_up(&m.transfers_taken_over, &registry.transfers_taken_over);
}
