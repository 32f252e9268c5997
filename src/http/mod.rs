//! The HTTP surface of a node. Every route is registered in [`routes`]; each handler lives
//! in the file of its area.

mod admin;
mod api;
mod auth;
mod client_address;
mod connection;
mod error;
mod health;
mod shares;
mod slow_bodies;
mod static_files;
mod tus;
pub mod tus_headers;
mod upload_claims;
mod ws;

pub use connection::{refuse_over_limit, ConnectionLimits};
pub use error::{json_for_empty_errors, ApiError};
pub use shares::served_range_of;
pub use slow_bodies::limit_body_time;

use crate::storage::uploads::BlobStore;
use crate::storage::DbStore;
use actix_web::web;
use peerlink_actors::NodeContext;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

/// Shared by every request handler.
pub struct AppState {
    pub node: Arc<NodeContext>,
    pub store: Arc<DbStore>,
    /// Origins allowed to open `/ws`; empty means the node's own origin only.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// SHA-256 of the admin token (compared by hash, never stored in clear).
    pub admin_token_hash: String,
    pub started: Instant,
    /// Where upload bytes live.
    pub blobs: BlobStore,
    /// An incomplete upload is removed this long after it was created.
    pub upload_ttl: Duration,
    /// Bytes one user's uploads may take in all.
    pub upload_quota: u64,
    /// Uploads and share links each user may create per minute.
    pub creations: peerlink_actors::limits::UserRateLimiter,
    /// The address the node listens on, for the admin console.
    pub bind: std::sync::OnceLock<String>,
    /// Set by a drain: no new connections, not ready.
    pub draining: std::sync::atomic::AtomicBool,
    /// Uploads a request is writing right now: one writer at a time.
    pub upload_claims: upload_claims::UploadClaims,
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
        .route("/admin", web::get().to(static_files::admin))
        .route("/static/{file}", web::get().to(static_files::asset))
        .route("/ws", web::get().to(ws::upgrade))
        .service(
            web::resource("/files/")
                .route(web::method(actix_web::http::Method::OPTIONS).to(tus::options))
                .route(web::post().to(tus::create)),
        )
        .service(
            web::resource("/files/{id}")
                .route(web::method(actix_web::http::Method::OPTIONS).to(tus::options))
                .route(web::head().to(tus::head))
                .route(web::patch().to(tus::patch))
                .route(web::delete().to(tus::terminate)),
        )
        .route("/api/uploads/{id}", web::get().to(tus::describe))
        .route("/api/shares", web::post().to(shares::create))
        .route("/api/shares/{token}", web::delete().to(shares::revoke))
        .route("/s/{token}", web::get().to(shares::download))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/api/sessions", web::post().to(api::create_session))
        .route("/api/rooms", web::get().to(api::list_rooms))
        .route("/api/cluster/nodes", web::get().to(api::cluster_nodes))
        .route("/api/admin/stats", web::get().to(admin::admin_stats))
        .route("/api/admin/nodes", web::get().to(admin::nodes))
        .route("/api/admin/nodes/{id}/drain", web::post().to(admin::drain))
        .route("/api/admin/sessions", web::get().to(admin::sessions))
        .route("/api/admin/sessions/{id}/kick", web::post().to(admin::kick))
        .route("/api/admin/rooms", web::get().to(admin::rooms))
        .route("/api/admin/transfers", web::get().to(admin::transfers))
        .route(
            "/api/admin/transfers/{id}/cancel",
            web::post().to(admin::cancel_transfer),
        )
        .default_service(web::to(error::not_found));
}
