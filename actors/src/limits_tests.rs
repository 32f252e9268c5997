use super::*;

#[test]
fn bucket_allows_a_burst_then_refills_at_the_rate() {
    let start = Instant::now();
    let mut bucket = TokenBucket::full(3.0, start);
    for _ in 0..3 {
        assert!(bucket.take(10.0, 3.0, start).is_ok());
    }
    let wait = bucket.take(10.0, 3.0, start).unwrap_err();
    assert!(
        wait <= Duration::from_millis(100) && wait > Duration::from_millis(90),
        "{wait:?}"
    );
    assert!(bucket
        .take(10.0, 3.0, start + Duration::from_millis(100))
        .is_ok());
    assert!(bucket
        .take(10.0, 3.0, start + Duration::from_millis(100))
        .is_err());
}

#[test]
fn bucket_never_holds_more_than_the_burst() {
    let start = Instant::now();
    let mut bucket = TokenBucket::full(2.0, start);
    let later = start + Duration::from_secs(3600);
    assert!(bucket.take(10.0, 2.0, later).is_ok());
    assert!(bucket.take(10.0, 2.0, later).is_ok());
    assert!(bucket.take(10.0, 2.0, later).is_err());
}

#[test]
fn users_share_nothing_but_their_own_sessions_share_one_bucket() {
    let limiter = UserRateLimiter::new(1.0, 2.0);
    let now = Instant::now();
    let (alice, bob) = (UserId::new_random(), UserId::new_random());
    assert!(limiter.check(alice, now).is_ok());
    assert!(limiter.check(alice, now).is_ok());
    let retry = limiter.check(alice, now).unwrap_err();
    assert_eq!(retry, Duration::from_secs(1));
    assert!(limiter.check(bob, now).is_ok());
}
