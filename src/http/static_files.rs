//! The web page, embedded in the binary: no files to deploy, nothing fetched from elsewhere.

use super::ApiError;
use super::AppState;
use actix_web::{http::header, web, HttpResponse};
use peerlink_actors::protocol::ErrorCode;

const INDEX: &str = include_str!("../../static/index.html");
const ADMIN: &str = include_str!("../../static/admin.html");

/// One embedded file of `static/`: its name, content type and text.
macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        (
            $name,
            $content_type,
            include_str!(concat!("../../static/", $name)),
        )
    };
}

/// Every embedded asset: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("admin.css", "text/css; charset=utf-8"),
    asset!("base.css", "text/css; charset=utf-8"),
    asset!("chat.js", "text/javascript; charset=utf-8"),
    asset!("chat.css", "text/css; charset=utf-8"),
    asset!("util.js", "text/javascript; charset=utf-8"),
    asset!("uploads.js", "text/javascript; charset=utf-8"),
    asset!("uploads.css", "text/css; charset=utf-8"),
    asset!("transfers.js", "text/javascript; charset=utf-8"),
    asset!("sha256.js", "text/javascript; charset=utf-8"),
    asset!("files-worker.js", "text/javascript; charset=utf-8"),
];

/// Headers that keep the page from being framed or fed foreign scripts.
fn page(content_type: &str, body: &'static str) -> HttpResponse {
    page_connecting(content_type, body, "")
}

/// A page that may also connect to `other_origins` (space-separated): in a cluster, the
/// other nodes, which it moves to when its own node goes away.
fn page_connecting(content_type: &str, body: &'static str, other_origins: &str) -> HttpResponse {
    let policy = format!(
        "default-src 'self'; connect-src 'self' ws: wss:{other_origins}; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'"
    );
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy))
        .body(body)
}

pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let others: String = state
        .cluster
        .as_ref()
        .map(|cluster| {
            cluster
                .live()
                .iter()
                .map(|node| format!(" http://{0} https://{0}", node.http))
                .collect()
        })
        .unwrap_or_default();
    page_connecting("text/html; charset=utf-8", INDEX, &others)
}

/// The admin console; it asks for the admin token and uses the admin API.
pub async fn admin() -> HttpResponse {
    page("text/html; charset=utf-8", ADMIN)
}

pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .map(|(_, content_type, body)| page(content_type, body))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no static file {:?}", file.as_str()),
            )
        })
}
