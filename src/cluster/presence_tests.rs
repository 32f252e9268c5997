use super::*;
use crate::cluster::membership::MembershipEvent;
use crate::cluster::test_redis::{exists, join, wait_for_event, RedisServer, PREFIX};

fn members(owners: &[Owner]) -> Vec<String> {
    let mut members: Vec<String> = owners.iter().map(Owner::member).collect();
    members.sort();
    members
}

#[tokio::test]
async fn a_user_on_two_nodes_is_found_on_the_survivor_only_after_a_death() {
    let server = RedisServer::start().await;
    let (a, mut a_events) = join(&server, "a", 1).await;
    let (b, _b_events) = join(&server, "b", 2).await;
    let (a_presence, b_presence) = (Presence::new(&a), Presence::new(&b));
    let user = Uuid::new_v4();
    let alone = Uuid::new_v4();
    a_presence.set_sessions(user, 2).await.expect("set");
    b_presence.set_sessions(user, 1).await.expect("set");
    b_presence.set_sessions(alone, 1).await.expect("set");

    assert_eq!(
        members(&a_presence.nodes_of(user).await.expect("nodes_of")),
        ["a:1", "b:2"]
    );
    assert_eq!(
        members(&b_presence.nodes_of(user).await.expect("nodes_of")),
        ["a:1", "b:2"]
    );

    drop(b_presence);
    drop(b);
    wait_for_event(
        &mut a_events,
        |e| matches!(e, MembershipEvent::NodeDown { id, .. } if id == "b"),
    )
    .await;
    assert_eq!(
        members(&a_presence.nodes_of(user).await.expect("nodes_of")),
        ["a:1"]
    );
    assert!(a_presence
        .nodes_of(alone)
        .await
        .expect("nodes_of")
        .is_empty());

    // Purged from Redis, not merely filtered out.
    let mut redis = server.connection().await.expect("connect");
    assert!(!exists(&mut redis, &format!("{PREFIX}sessions:b:2")).await);
    assert!(!exists(&mut redis, &format!("{PREFIX}presence:{alone}")).await);
}

#[tokio::test]
async fn zero_sessions_removes_the_entry() {
    let server = RedisServer::start().await;
    let (a, _events) = join(&server, "a", 1).await;
    let presence = Presence::new(&a);
    let user = Uuid::new_v4();
    presence.set_sessions(user, 3).await.expect("set");
    assert_eq!(
        members(&presence.nodes_of(user).await.expect("nodes_of")),
        ["a:1"]
    );

    presence.set_sessions(user, 0).await.expect("set");
    assert!(presence.nodes_of(user).await.expect("nodes_of").is_empty());
    let mut redis = server.connection().await.expect("connect");
    assert!(!exists(&mut redis, &format!("{PREFIX}presence:{user}")).await);
    assert!(!exists(&mut redis, &format!("{PREFIX}sessions:a:1")).await);
}

#[tokio::test]
async fn sessions_of_a_stalled_node_are_hidden_before_it_is_declared() {
    let server = RedisServer::start().await;
    let (a, _a_events) = join(&server, "a", 1).await;
    let (b, _b_events) = join(&server, "b", 2).await;
    let user = Uuid::new_v4();
    Presence::new(&b).set_sessions(user, 1).await.expect("set");
    let a_presence = Presence::new(&a);
    a.shared()
        .hooks
        .sweep_off
        .store(true, std::sync::atomic::Ordering::SeqCst);
    b.shared()
        .hooks
        .stalled
        .store(true, std::sync::atomic::Ordering::SeqCst);

    let mut redis = server.connection().await.expect("connect");
    crate::cluster::test_redis::wait_until("b's alive key lapses", || {
        let mut redis = redis.clone();
        async move { !exists(&mut redis, &format!("{PREFIX}alive:b:2")).await }
    })
    .await;
    assert!(a_presence
        .nodes_of(user)
        .await
        .expect("nodes_of")
        .is_empty());
    assert!(
        exists(&mut redis, &format!("{PREFIX}sessions:b:2")).await,
        "kept until declared"
    );
}
