//! The node's Prometheus metrics. Counters on hot paths are resolved once per label value
//! (an array indexed by kind), so counting a delivered frame is one atomic add.

use crate::protocol::client::CLIENT_KINDS;
use crate::protocol::{ErrorCode, ServerKind};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};
use std::sync::LazyLock;

/// Every metric of the node, registered in one registry.
pub struct Metrics {
    pub registry: Registry,
    pub connections: IntGauge,
    frames_in: Vec<IntCounter>,
    frames_in_invalid: IntCounter,
    frames_out: Vec<IntCounter>,
    errors: Vec<IntCounter>,
    pub db_seconds: HistogramVec,
    pub commit_batch: Histogram,
    pub room_restarts: IntCounter,
    pub messages_stored: IntCounter,
    pub slow_clients_dropped: IntCounter,
    pub transfers_active: IntGauge,
    /// Free bytes on the data volume, as last measured.
    pub disk_free_bytes: IntGauge,
    /// Transfers paused because their receivers stopped acknowledging.
    pub transfers_stalled: IntCounter,
    /// Bytes of the node's transfer memory reserved by streaming transfers.
    pub transfer_memory_reserved: IntGauge,
    /// Room actors in memory (rooms with no session for a while are passivated).
    pub rooms_live: IntGauge,
    /// Peer (user) actors in memory.
    pub peers_live: IntGauge,
    /// File bytes relayed to receivers (each receiver's copy counted once).
    pub transfer_bytes: IntCounter,
    /// File bytes hashed by the hash actor.
    pub hashed_bytes: IntCounter,
    transfers_finished: Vec<IntCounter>,
}

/// How a transfer ended, for `peerlink_transfers_finished_total`.
pub const TRANSFER_OUTCOMES: [&str; 3] = ["complete", "failed", "cancelled"];

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::build);

impl Metrics {
    fn build() -> Metrics {
        let registry = Registry::new_custom(Some("peerlink".into()), None).unwrap_or_default();
        let connections = IntGauge::new("connections", "Open WebSocket connections")
            .unwrap_or_else(|_| unreachable_metric());
        let frames_in_vec = IntCounterVec::new(
            Opts::new("frames_in_total", "Frames received, by type"),
            &["type"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let frames_out_vec = IntCounterVec::new(
            Opts::new("frames_out_total", "Frames sent, by type"),
            &["type"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let errors_vec = IntCounterVec::new(
            Opts::new("errors_total", "Error frames sent, by code"),
            &["code"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5,
        ];
        let db_seconds = HistogramVec::new(
            HistogramOpts::new("db_seconds", "Database operation latency, by operation")
                .buckets(buckets),
            &["op"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let commit_batch = Histogram::with_opts(
            HistogramOpts::new("commit_batch_messages", "Messages per group commit")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )
        .unwrap_or_else(|_| unreachable_metric());
        let room_restarts = IntCounter::new(
            "room_restarts_total",
            "Rooms restarted by the supervisor after a crash",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let messages_stored = IntCounter::new("messages_stored_total", "Chat messages committed")
            .unwrap_or_else(|_| unreachable_metric());
        let transfers_active = IntGauge::new("transfers_active", "Transfers in progress")
            .unwrap_or_else(|_| unreachable_metric());
        let disk_free_bytes = IntGauge::new(
            "disk_free_bytes",
            "Free bytes on the data volume (uploads keep PEERLINK_DISK_RESERVE_BYTES of them)",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let transfers_stalled = IntCounter::new(
            "transfers_stalled_total",
            "Transfers paused because nothing was acknowledged for PEERLINK_TRANSFER_STALL_SECS",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let transfer_memory_reserved = IntGauge::new(
            "transfer_memory_reserved_bytes",
            "Transfer memory reserved by streaming transfers (a window each)",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let rooms_live = IntGauge::new("rooms_live", "Room actors in memory")
            .unwrap_or_else(|_| unreachable_metric());
        let peers_live = IntGauge::new("peers_live", "Peer (user) actors in memory")
            .unwrap_or_else(|_| unreachable_metric());
        let transfer_bytes =
            IntCounter::new("transfer_bytes_total", "File bytes relayed to receivers")
                .unwrap_or_else(|_| unreachable_metric());
        let hashed_bytes = IntCounter::new("hashed_bytes_total", "File bytes hashed")
            .unwrap_or_else(|_| unreachable_metric());
        let finished_vec = IntCounterVec::new(
            Opts::new("transfers_finished_total", "Transfers ended, by outcome"),
            &["outcome"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let slow_clients_dropped = IntCounter::new(
            "slow_clients_dropped_total",
            "Connections closed because their outbound queue overflowed",
        )
        .unwrap_or_else(|_| unreachable_metric());

        for collector in [
            Box::new(connections.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(frames_in_vec.clone()),
            Box::new(frames_out_vec.clone()),
            Box::new(errors_vec.clone()),
            Box::new(db_seconds.clone()),
            Box::new(commit_batch.clone()),
            Box::new(room_restarts.clone()),
            Box::new(messages_stored.clone()),
            Box::new(slow_clients_dropped.clone()),
            Box::new(transfers_active.clone()),
            Box::new(transfers_stalled.clone()),
            Box::new(disk_free_bytes.clone()),
            Box::new(transfer_memory_reserved.clone()),
            Box::new(rooms_live.clone()),
            Box::new(peers_live.clone()),
            Box::new(transfer_bytes.clone()),
            Box::new(hashed_bytes.clone()),
            Box::new(finished_vec.clone()),
        ] {
            if let Err(e) = registry.register(collector) {
                log::error!("metric registration failed: {e}");
            }
        }
        Metrics {
            frames_in: CLIENT_KINDS
                .iter()
                .map(|k| frames_in_vec.with_label_values(&[k]))
                .collect(),
            frames_in_invalid: frames_in_vec.with_label_values(&["invalid"]),
            frames_out: ServerKind::ALL
                .iter()
                .map(|k| frames_out_vec.with_label_values(&[k.as_str()]))
                .collect(),
            errors: ErrorCode::ALL
                .iter()
                .map(|c| errors_vec.with_label_values(&[c.as_str()]))
                .collect(),
            registry,
            connections,
            db_seconds,
            commit_batch,
            room_restarts,
            messages_stored,
            slow_clients_dropped,
            transfers_active,
            transfers_stalled,
            transfer_memory_reserved,
            disk_free_bytes,
            rooms_live,
            peers_live,
            transfer_bytes,
            hashed_bytes,
            transfers_finished: TRANSFER_OUTCOMES
                .iter()
                .map(|o| finished_vec.with_label_values(&[o]))
                .collect(),
        }
    }

    pub fn frame_in(&self, kind: &str) {
        match CLIENT_KINDS.iter().position(|k| *k == kind) {
            Some(i) => self.frames_in[i].inc(),
            None => self.frames_in_invalid.inc(),
        }
    }

    pub fn frame_in_invalid(&self) {
        self.frames_in_invalid.inc();
    }

    /// Counts a finished transfer; `outcome` is one of [`TRANSFER_OUTCOMES`].
    pub fn transfer_finished(&self, outcome: &str) {
        if let Some(i) = TRANSFER_OUTCOMES.iter().position(|o| *o == outcome) {
            self.transfers_finished[i].inc();
        }
    }

    pub fn frame_out(&self, kind: ServerKind) {
        if let Some(i) = ServerKind::ALL.iter().position(|k| *k == kind) {
            self.frames_out[i].inc();
        }
    }

    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].inc();
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buffer)
        {
            log::error!("metrics encoding failed: {e}");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Metric definitions above are constants; constructing them can only fail on an invalid
/// name, which the unit test below would catch.
#[cold]
fn unreachable_metric<T>() -> T {
    log::error!("invalid metric definition");
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed() {
        METRICS.connections.set(0);
        METRICS.frame_in("say");
        METRICS.frame_out(ServerKind::Message);
        METRICS.error(ErrorCode::RateLimited);
        METRICS
            .db_seconds
            .with_label_values(&["test"])
            .observe(0.001);
        let text = METRICS.render();
        for needle in [
            "peerlink_connections",
            "peerlink_frames_in_total{type=\"say\"} 1",
            "peerlink_frames_out_total{type=\"message\"} 1",
            "peerlink_errors_total{code=\"rate_limited\"} 1",
            "peerlink_db_seconds_bucket",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
