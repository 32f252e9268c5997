use super::*;
use crate::cluster::membership::MembershipEvent;
use crate::cluster::test_redis::{exists, join, wait_for_event, wait_until, RedisServer, PREFIX};
use futures_util::future::join_all;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn racing_claims_agree_on_exactly_one_owner() {
    let server = RedisServer::start().await;
    let (a, _a_events) = join(&server, "a", 1).await;
    let (b, _b_events) = join(&server, "b", 1).await;
    let (a_dir, b_dir) = (Directory::new(&a), Directory::new(&b));

    let claims = (0..100).flat_map(|_| {
        [
            a_dir.claim(Kind::Room, "lobby"),
            b_dir.claim(Kind::Room, "lobby"),
        ]
    });
    let owners: Vec<Owner> = join_all(claims)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every claim answers");
    assert_eq!(owners.len(), 200);
    let first = owners[0].clone();
    assert!(
        owners.iter().all(|o| *o == first),
        "one owner for all: {owners:?}"
    );
    assert_eq!(
        a_dir.lookup(Kind::Room, "lobby").await.expect("lookup"),
        Some(first.clone())
    );
    assert_eq!(
        b_dir.lookup(Kind::Room, "lobby").await.expect("lookup"),
        Some(first)
    );
    // Kinds are separate namespaces.
    assert_eq!(a_dir.lookup(Kind::Dm, "lobby").await.expect("lookup"), None);
}

#[tokio::test]
async fn a_dead_owner_is_taken_over_with_a_tombstone_and_then_evicted() {
    let server = RedisServer::start().await;
    let (a, mut a_events) = join(&server, "a", 1).await;
    let (b, _b_events) = join(&server, "b", 1).await;
    let (a_dir, b_dir) = (Directory::new(&a), Directory::new(&b));
    assert_eq!(
        a_dir.claim(Kind::Transfer, "t1").await.expect("claim").node,
        "a"
    );
    assert_eq!(
        b_dir.claim(Kind::Transfer, "t1").await.expect("claim").node,
        "a"
    );

    // a stalls; b keeps beating but does not sweep, so the takeover is what declares a.
    b.shared().hooks.sweep_off.store(true, Ordering::SeqCst);
    a.shared().hooks.stalled.store(true, Ordering::SeqCst);
    let mut redis = server.connection().await.expect("connect");
    wait_until("a's alive key lapses", || {
        let mut redis = redis.clone();
        async move { !exists(&mut redis, &format!("{PREFIX}alive:a:1")).await }
    })
    .await;
    assert!(
        !exists(&mut redis, &format!("{PREFIX}dead:a:1")).await,
        "nobody acted yet"
    );

    let owner = b_dir.claim(Kind::Transfer, "t1").await.expect("takeover");
    assert_eq!((owner.node.as_str(), owner.incarnation), ("b", 1));
    assert!(
        exists(&mut redis, &format!("{PREFIX}dead:a:1")).await,
        "tombstone written"
    );
    assert!(
        !exists(&mut redis, &format!("{PREFIX}owned:a:1")).await,
        "a's entries purged"
    );

    a.shared().hooks.stalled.store(false, Ordering::SeqCst);
    wait_for_event(&mut a_events, |e| *e == MembershipEvent::Evicted).await;
    assert_eq!(
        a_dir.claim(Kind::Room, "r").await,
        Err(ClusterError::Evicted)
    );
    assert!(
        a.live().iter().all(|n| n.id != "a"),
        "an evicted node lists itself no more"
    );
    assert!(
        !exists(&mut redis, &format!("{PREFIX}alive:a:1")).await,
        "not resurrected"
    );
}

#[tokio::test]
async fn only_the_owner_releases_and_release_frees_the_entry() {
    let server = RedisServer::start().await;
    let (a, _a_events) = join(&server, "a", 1).await;
    let (b, _b_events) = join(&server, "b", 1).await;
    let (a_dir, b_dir) = (Directory::new(&a), Directory::new(&b));
    a_dir.claim(Kind::Dm, "u1:u2").await.expect("claim");

    assert!(!b_dir.release(Kind::Dm, "u1:u2").await.expect("release"));
    assert_eq!(
        b_dir
            .lookup(Kind::Dm, "u1:u2")
            .await
            .expect("lookup")
            .map(|o| o.node),
        Some("a".into())
    );
    assert!(a_dir.release(Kind::Dm, "u1:u2").await.expect("release"));
    b_dir.invalidate(Kind::Dm, "u1:u2");
    assert_eq!(b_dir.lookup(Kind::Dm, "u1:u2").await.expect("lookup"), None);
    assert_eq!(
        b_dir.claim(Kind::Dm, "u1:u2").await.expect("claim").node,
        "b"
    );
}

#[tokio::test]
async fn cached_owners_last_until_invalidated_or_their_node_dies() {
    let server = RedisServer::start().await;
    let (a, _a_events) = join(&server, "a", 1).await;
    let (b, mut b_events) = join(&server, "b", 1).await;
    let (a_dir, b_dir) = (Directory::new(&a), Directory::new(&b));
    a_dir.claim(Kind::Room, "cached").await.expect("claim");
    b_dir.claim(Kind::Room, "other").await.expect("claim");
    assert_eq!(
        b_dir
            .lookup(Kind::Room, "cached")
            .await
            .expect("lookup")
            .map(|o| o.node),
        Some("a".into())
    );

    // Rewrite the entry behind the cache's back: the cached answer stands...
    let mut redis = server.connection().await.expect("connect");
    let entry = format!("{PREFIX}dir:room:cached");
    let _: () = redis::cmd("SET")
        .arg(&entry)
        .arg("b:1")
        .query_async(&mut redis)
        .await
        .expect("SET");
    assert_eq!(
        b_dir
            .lookup(Kind::Room, "cached")
            .await
            .expect("lookup")
            .map(|o| o.node),
        Some("a".into())
    );
    // ...until invalidated.
    b_dir.invalidate(Kind::Room, "cached");
    assert_eq!(
        b_dir
            .lookup(Kind::Room, "cached")
            .await
            .expect("lookup")
            .map(|o| o.node),
        Some("b".into())
    );

    // An owner's death invalidates what names it. a owns "mine"; b caches it.
    a_dir.claim(Kind::Room, "mine").await.expect("claim");
    assert_eq!(
        b_dir
            .lookup(Kind::Room, "mine")
            .await
            .expect("lookup")
            .map(|o| o.node),
        Some("a".into())
    );
    drop(a_dir);
    drop(a);
    wait_for_event(
        &mut b_events,
        |e| matches!(e, MembershipEvent::NodeDown { id, .. } if id == "a"),
    )
    .await;
    assert_eq!(
        b_dir.lookup(Kind::Room, "mine").await.expect("lookup"),
        None
    );
    assert!(
        !exists(&mut redis, &format!("{PREFIX}dir:room:mine")).await,
        "purged at death"
    );
    assert_eq!(
        b_dir.claim(Kind::Room, "mine").await.expect("claim").node,
        "b"
    );
}
