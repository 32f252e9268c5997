//! # peerlink
//!
//! A PeerLink node: configuration ([`config`]), storage over Diesel for SQLite and
//! PostgreSQL ([`storage`]), the HTTP and WebSocket surface ([`http`]) and the wiring that
//! starts them ([`node`]). Behaviour lives in the `peerlink-actors` crate; this crate
//! supplies what the actors must not contain: sockets, routes and SQL.

pub mod cluster;
pub mod config;
pub mod http;
pub mod node;
pub mod storage;
pub mod token;
