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
mod ws;

pub use admin::drain_sessions;
pub use connection::{refuse_over_limit, ConnectionLimits};
pub use error::{json_for_empty_errors, ApiError};
pub use shares::served_range_of;
pub use slow_bodies::limit_body_time;

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
    pub blobs: Arc<dyn crate::storage::blobs::Blobs>,
    /// The volume of the blobs: uploads leave its reserve free.
    pub volume: crate::storage::disk::DataVolume,
    /// An incomplete upload is removed this long after it was created.
    pub upload_ttl: Duration,
    /// Bytes one user's uploads may take in all.
    pub upload_quota: u64,
    /// The address the node listens on, for the admin console.
    pub bind: std::sync::OnceLock<String>,
    /// Set by a drain: no new connections, not ready.
    pub draining: std::sync::atomic::AtomicBool,
    /// Set when the node is one of a cluster.
    pub cluster: Option<Arc<crate::cluster::node::NodeCluster>>,
}

/// Largest JSON body the API accepts.
const MAX_JSON_BODY: usize = 16 * 1024;

pub fn routes(config: &mut web::ServiceConfig) {
    use actix_web::http::Method;
    let options = || web::method(Method::OPTIONS);
    config
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_JSON_BODY)
                .error_handler(error::json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .service(resource("/", "GET").route(web::get().to(static_files::index)))
        .service(resource("/admin", "GET").route(web::get().to(static_files::admin)))
        .service(resource("/static/{file}", "GET").route(web::get().to(static_files::asset)))
        .service(resource("/ws", "GET").route(web::get().to(ws::upgrade)))
        .service(
            resource("/files/", "OPTIONS, POST")
                .route(options().to(tus::options))
                .route(web::post().to(tus::create)),
        )
        .service(
            resource("/files/{id}", "OPTIONS, HEAD, PATCH, DELETE")
                .route(options().to(tus::options))
                .route(web::head().to(tus::head))
                .route(web::patch().to(tus::patch))
                .route(web::delete().to(tus::terminate)),
        )
        .service(resource("/api/uploads/{id}", "GET").route(web::get().to(tus::describe)))
        .service(resource("/api/shares", "POST").route(web::post().to(shares::create)))
        .service(resource("/api/shares/{token}", "DELETE").route(web::delete().to(shares::revoke)))
        .service(resource("/s/{token}", "GET").route(web::get().to(shares::download)))
        .service(
            resource("/healthz", "GET, HEAD")
                .route(web::get().to(health::healthz))
                .route(web::head().to(health::healthz)),
        )
        .service(
            resource("/readyz", "GET, HEAD")
                .route(web::get().to(health::readyz))
                .route(web::head().to(health::readyz)),
        )
        .service(resource("/metrics", "GET").route(web::get().to(health::metrics)))
        .service(resource("/api/sessions", "POST").route(web::post().to(api::create_session)))
        .service(resource("/api/rooms", "GET").route(web::get().to(api::list_rooms)))
        .service(resource("/api/cluster/nodes", "GET").route(web::get().to(api::cluster_nodes)))
        .service(resource("/api/admin/stats", "GET").route(web::get().to(admin::admin_stats)))
        .service(resource("/api/admin/nodes", "GET").route(web::get().to(admin::nodes)))
        .service(
            resource("/api/admin/nodes/{id}/drain", "POST").route(web::post().to(admin::drain)),
        )
        .service(resource("/api/admin/sessions", "GET").route(web::get().to(admin::sessions)))
        .service(
            resource("/api/admin/sessions/{id}/kick", "POST").route(web::post().to(admin::kick)),
        )
        .service(resource("/api/admin/rooms", "GET").route(web::get().to(admin::rooms)))
        .service(resource("/api/admin/transfers", "GET").route(web::get().to(admin::transfers)))
        .service(
            resource("/api/admin/transfers/{id}/cancel", "POST")
                .route(web::post().to(admin::cancel_transfer)),
        )
        .default_service(web::to(error::not_found));
}

/// A route's resource: a method it does not take answers 405 with `Allow: <allow>`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: actix_web::HttpRequest| {
        error::method_not_allowed(req, allow)
    }))
}
