//! Ownership fences in the database: a write carrying an epoch that a takeover has passed
//! is refused, in the same transaction that would have committed it, and its neighbours in
//! the batch still commit. Run against both backends, through the node's real store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, NodeData};
use peerlink::storage::connection::{DatabaseUrl, SqliteSync};
use peerlink::storage::{DbStore, StoreConfig};
use peerlink_actors::protocol::{RoomName, User};
use peerlink_actors::store::{Fence, OwnedKind, Store, StoreError, StoredMessage};
use std::sync::Arc;
use std::time::Duration;

fn open(backend: Backend) -> Arc<DbStore> {
    let data = NodeData::fresh(backend);
    let config = StoreConfig {
        url: DatabaseUrl::parse(&data.database_url).expect("database url"),
        sqlite_sync: SqliteSync::Normal,
        pool_size: 4,
        session_ttl: Duration::from_secs(3600),
    };
    DbStore::open(&config).expect("open the store")
}

fn message(room: &RoomName, seq: u64, from: &User, text: &str) -> StoredMessage {
    StoredMessage {
        room: room.clone(),
        seq,
        from: from.clone(),
        text: text.into(),
        at_ms: 0,
        file: None,
    }
}

fn fence(room: &RoomName, epoch: u64) -> Option<Fence> {
    Some(Fence {
        kind: OwnedKind::Room,
        key: room.to_string(),
        epoch,
    })
}

async fn a_stale_owner_cannot_commit(backend: Backend) {
    let store = open(backend);
    let user = store
        .create_identity("ann".into())
        .await
        .expect("identity")
        .user;
    let room = RoomName::parse("fenced").expect("room name");
    store.create_room(room.clone()).await.expect("room");
    let first = store
        .claim_ownership(OwnedKind::Room, room.to_string(), "n1".into(), 1)
        .await
        .expect("claim");
    store
        .append_message(message(&room, 1, &user, "one"), fence(&room, first))
        .await
        .expect("the owner commits");
    let second = store
        .claim_ownership(OwnedKind::Room, room.to_string(), "n2".into(), 1)
        .await
        .expect("takeover");
    assert_eq!(second, first + 1, "a takeover moves the epoch up by one");
    // The old owner, cut off, goes on: the same seq it would hand out next is refused.
    let stale = store
        .append_message(message(&room, 2, &user, "stale"), fence(&room, first))
        .await;
    assert_eq!(stale, Err(StoreError::Fenced(format!("room {room}"))));
    // In one batch with the new owner's write: only the stale one is left out.
    let (stale, fresh) = tokio::join!(
        store.append_message(message(&room, 3, &user, "stale again"), fence(&room, first)),
        store.append_message(message(&room, 2, &user, "two"), fence(&room, second)),
    );
    assert!(matches!(stale, Err(StoreError::Fenced(_))), "{stale:?}");
    fresh.expect("the new owner commits");
    let snapshot = store.load_room(room.clone(), 10).await.expect("load");
    let texts: Vec<(u64, String)> = snapshot
        .recent
        .iter()
        .map(|m| (m.seq, m.text.to_string()))
        .collect();
    assert_eq!(texts, vec![(1, "one".into()), (2, "two".into())]);
    // Without a fence (a single node) nothing is checked.
    store
        .append_message(message(&room, 3, &user, "three"), None)
        .await
        .expect("unfenced write");
}

async fn incarnations_grow_with_every_start(backend: Backend) {
    let store = open(backend);
    let first = store.register_node("node-a").expect("register");
    let second = store.register_node("node-a").expect("register again");
    let other = store.register_node("node-b").expect("register another");
    assert_eq!((first, second, other), (1, 2, 1));
}

on_both_backends!(
    a_stale_owner_cannot_commit,
    incarnations_grow_with_every_start
);

/// Nodes of a cluster start together on one empty database: each runs the migrations,
/// one at a time, and every one of them starts.
#[test]
fn nodes_starting_together_on_one_empty_database_all_start() {
    let url = common::fresh_postgres_database();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let config = StoreConfig {
                    url: DatabaseUrl::parse(&url).expect("database url"),
                    sqlite_sync: SqliteSync::Normal,
                    pool_size: 2,
                    session_ttl: Duration::from_secs(3600),
                };
                DbStore::open(&config).map(|_| ())
            })
        })
        .collect();
    for start in starts {
        start
            .join()
            .expect("start thread")
            .expect("the node's store opens");
    }
}
