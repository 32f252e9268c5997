//! The HTTP surface of a node. Every route is registered in [`routes`]; each handler lives
//! in the file of its area.

mod api;
mod error;
mod health;
mod static_files;
mod ws;

pub use error::{json_for_empty_errors, ApiError};

use crate::storage::DbStore;
use actix_web::web;
use peerlink_actors::NodeContext;
use std::sync::Arc;
use std::time::Instant;

/// Shared by every request handler.
pub struct AppState {
    pub node: Arc<NodeContext>,
    pub store: Arc<DbStore>,
    /// Origins allowed to open `/ws`; empty means the node's own origin only.
    pub allowed_origins: Vec<String>,
    /// SHA-256 of the admin token (compared by hash, never stored in clear).
    pub admin_token_hash: String,
    pub started: Instant,
}

/// Largest JSON body the API accepts.
const MAX_JSON_BODY: usize = 16 * 1024;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_JSON_BODY)
                .error_handler(error::json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .route("/", web::get().to(static_files::index))
        .route("/static/{file}", web::get().to(static_files::asset))
        .route("/ws", web::get().to(ws::upgrade))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/api/sessions", web::post().to(api::create_session))
        .route("/api/rooms", web::get().to(api::list_rooms))
        .route("/api/cluster/nodes", web::get().to(api::cluster_nodes))
        .route("/api/admin/stats", web::get().to(api::admin_stats))
        .default_service(web::to(error::not_found));
}
