use super::*;
use crate::cluster::directory::{Directory, Kind};
use crate::cluster::presence::Presence;
use crate::cluster::test_redis::{
    exists, join, wait_for_event, wait_until, RedisServer, PREFIX, TEST_TIMINGS,
};
use uuid::Uuid;

fn ids(nodes: &[NodeRecord]) -> BTreeSet<String> {
    nodes.iter().map(|n| member(&n.id, n.incarnation)).collect()
}

fn is_down(id: &'static str) -> impl Fn(&MembershipEvent) -> bool {
    move |event| matches!(event, MembershipEvent::NodeDown { id: down, .. } if down == id)
}

#[tokio::test]
async fn two_nodes_see_each_other_and_a_silent_one_is_declared_dead() {
    let server = RedisServer::start().await;
    let (a, mut a_events) = join(&server, "a", 1).await;
    let (b, mut b_events) = join(&server, "b", 7).await;

    // b learns of a from its first sweep inside join; a from its next sweep.
    wait_for_event(
        &mut b_events,
        |e| matches!(e, MembershipEvent::NodeUp(r) if r.id == "a"),
    )
    .await;
    wait_for_event(
        &mut a_events,
        |e| matches!(e, MembershipEvent::NodeUp(r) if r.id == "b"),
    )
    .await;
    let both: BTreeSet<String> = ["a:1".to_owned(), "b:7".to_owned()].into();
    assert_eq!(ids(&a.live()), both);
    assert_eq!(ids(&b.live()), both);
    assert!(a.is_live("b", 7));
    assert!(!a.is_live("b", 6), "another incarnation of b is not live");

    // Dropping b without leave() stops its heartbeat: a crash, as far as a can tell.
    drop(b);
    let seen = wait_for_event(&mut a_events, is_down("b")).await;
    assert!(seen.contains(&MembershipEvent::NodeDown {
        id: "b".into(),
        incarnation: 7
    }));
    assert_eq!(ids(&a.live()), ["a:1".to_owned()].into());
    assert!(!a.is_live("b", 7));

    let mut redis = server.connection().await.expect("connect");
    assert!(
        exists(&mut redis, &format!("{PREFIX}dead:b:7")).await,
        "tombstone"
    );
    assert!(
        !exists(&mut redis, &format!("{PREFIX}node:b:7")).await,
        "record purged"
    );
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{PREFIX}nodes"))
        .query_async(&mut redis)
        .await
        .expect("SMEMBERS");
    assert_eq!(members, vec!["a:1".to_owned()]);
}

#[tokio::test]
async fn a_lapse_nobody_acted_on_ends_in_a_silent_reregistration() {
    let server = RedisServer::start().await;
    let (a, mut events) = join(&server, "a", 1).await;
    let mut redis = server.connection().await.expect("connect");
    let alive = format!("{PREFIX}alive:a:1");

    a.shared.hooks.stalled.store(true, Ordering::SeqCst);
    wait_until("a's alive key lapses", || {
        let mut redis = redis.clone();
        let alive = alive.clone();
        async move { !exists(&mut redis, &alive).await }
    })
    .await;
    a.shared.hooks.stalled.store(false, Ordering::SeqCst);
    wait_until("a's alive key is back", || {
        let mut redis = redis.clone();
        let alive = alive.clone();
        async move { exists(&mut redis, &alive).await }
    })
    .await;

    // Nothing to await for an event that must not come: give it a few more beats.
    let quiet = tokio::time::timeout(TEST_TIMINGS.heartbeat * 5, events.recv()).await;
    assert!(quiet.is_err(), "no event expected, got {quiet:?}");
    assert!(!exists(&mut redis, &format!("{PREFIX}dead:a:1")).await);
    assert!(a.is_live("a", 1));
    a.set_draining(true).await.expect("still a member");
}

#[tokio::test]
async fn leave_is_seen_at_once_as_node_down() {
    let server = RedisServer::start().await;
    let (a, mut a_events) = join(&server, "a", 1).await;
    let (b, _b_events) = join(&server, "b", 2).await;
    wait_for_event(
        &mut a_events,
        |e| matches!(e, MembershipEvent::NodeUp(r) if r.id == "b"),
    )
    .await;

    b.set_draining(true).await.expect("draining");
    wait_until("a sees b draining", || {
        let draining = a.live().iter().any(|n| n.id == "b" && n.draining);
        async move { draining }
    })
    .await;

    b.leave().await.expect("leave");
    wait_for_event(&mut a_events, is_down("b")).await;
    let mut redis = server.connection().await.expect("connect");
    assert!(!exists(&mut redis, &format!("{PREFIX}alive:b:2")).await);
    assert!(!exists(&mut redis, &format!("{PREFIX}node:b:2")).await);
    assert!(
        exists(&mut redis, &format!("{PREFIX}dead:b:2")).await,
        "tombstone, so a sees it now"
    );
}

#[tokio::test]
async fn timings_that_kill_on_one_late_beat_are_refused() {
    let server = RedisServer::start().await;
    let timings = Timings {
        heartbeat: Duration::from_millis(100),
        dead_after: Duration::from_millis(150),
    };
    let joined = Membership::join(server.client(), PREFIX, test_record("a"), timings).await;
    assert!(matches!(joined, Err(ClusterError::Timings(_))));
}

fn test_record(id: &str) -> NodeRecord {
    crate::cluster::test_redis::record(id, 1)
}

/// The link events among `seen`, in order.
fn link_events(seen: Vec<MembershipEvent>) -> Vec<MembershipEvent> {
    seen.into_iter()
        .filter(|e| {
            matches!(
                e,
                MembershipEvent::RedisDown
                    | MembershipEvent::RedisUp
                    | MembershipEvent::RedisReset
                    | MembershipEvent::Evicted
            )
        })
        .collect()
}

#[tokio::test]
async fn an_empty_restart_of_redis_is_survived_and_ownership_reclaimed() {
    let mut server = RedisServer::start().await;
    let (a, mut a_events) = join(&server, "a", 1).await;
    let (b, mut b_events) = join(&server, "b", 2).await;
    wait_for_event(
        &mut a_events,
        |e| matches!(e, MembershipEvent::NodeUp(r) if r.id == "b"),
    )
    .await;
    let (a_dir, b_dir) = (Directory::new(&a), Directory::new(&b));
    assert_eq!(
        a_dir.claim(Kind::Room, "r1").await.expect("claim").node,
        "a"
    );
    assert_eq!(
        b_dir.claim(Kind::Room, "r2").await.expect("claim").node,
        "b"
    );
    let user = Uuid::new_v4();
    Presence::new(&a)
        .set_sessions(user, 1)
        .await
        .expect("presence");

    let port = server.port;
    server.kill();
    let a_down = wait_for_event(&mut a_events, |e| *e == MembershipEvent::RedisDown).await;
    let b_down = wait_for_event(&mut b_events, |e| *e == MembershipEvent::RedisDown).await;
    assert_eq!(
        a_dir.claim(Kind::Room, "r3").await,
        Err(ClusterError::Unavailable)
    );
    let _server = RedisServer::start_on(port)
        .await
        .expect("restart on the same port");

    for (mut seen, events) in [(a_down, &mut a_events), (b_down, &mut b_events)] {
        seen.extend(wait_for_event(events, |e| *e == MembershipEvent::RedisReset).await);
        assert_eq!(
            link_events(seen),
            [
                MembershipEvent::RedisDown,
                MembershipEvent::RedisUp,
                MembershipEvent::RedisReset
            ]
        );
    }
    let both: BTreeSet<String> = ["a:1".to_owned(), "b:2".to_owned()].into();
    wait_until("both registered again and live everywhere", || {
        let right = ids(&a.live()) == both && ids(&b.live()) == both;
        async move { right }
    })
    .await;

    // The directory was lost with the data: a reclaims first, b finds r1 taken.
    let a_lost = a_dir
        .reclaim(&[(Kind::Room, "r1".into())])
        .await
        .expect("reclaim");
    assert!(a_lost.is_empty());
    let b_lost = b_dir
        .reclaim(&[(Kind::Room, "r2".into()), (Kind::Room, "r1".into())])
        .await
        .expect("reclaim");
    assert_eq!(b_lost.len(), 1);
    assert_eq!((b_lost[0].0, b_lost[0].1.as_str()), (Kind::Room, "r1"));
    assert_eq!(b_lost[0].2.node, "a");
    assert_eq!(
        a_dir
            .lookup(Kind::Room, "r2")
            .await
            .expect("lookup")
            .map(|o| o.node),
        Some("b".to_owned())
    );

    let presence = Presence::new(&a);
    assert!(presence.nodes_of(user).await.expect("nodes_of").is_empty());
    presence
        .republish(vec![(user, 1)])
        .await
        .expect("republish");
    let nodes = Presence::new(&b).nodes_of(user).await.expect("nodes_of");
    assert_eq!(
        nodes.iter().map(|o| o.member()).collect::<Vec<_>>(),
        ["a:1"]
    );
}

#[test]
fn members_split_at_the_last_colon() {
    let owner = Owner::from_member("eu:west:42").expect("parse");
    assert_eq!(owner.node, "eu:west");
    assert_eq!(owner.incarnation, 42);
    assert_eq!(owner.member(), "eu:west:42");
    assert!(Owner::from_member("no-incarnation").is_err());
    assert!(Owner::from_member("a:b").is_err());
}
