use super::handshake::{self, Identity, NONCE_LEN, PROOF_LEN};
use super::wire::{self, BatchWriter, Decoded};
use super::*;
use bytes::BytesMut;
use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &[u8] = b"the cluster secret of the tests, 32+ bytes";
const OTHER_SECRET: &[u8] = b"another cluster's secret, also 32+ bytes..";

/// Bound on waiting for an event that should come: a working link takes milliseconds, and
/// a broken one fails the test instead of hanging it. Also covers the 5 s handshake timeout.
const EVENT_WAIT: Duration = Duration::from_secs(15);

/// How often [`eventually`] looks at a counter, for what reports no event.
const POLL_EVERY: Duration = Duration::from_millis(10);

fn loopback_any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A started link and the events it reported.
struct TestNode {
    links: Links,
    me: PeerNode,
    events: Receiver<LinkEvent>,
}

fn start_node(id: &str, incarnation: u64, secret: &[u8]) -> TestNode {
    start_with(LinkConfig::new(
        id,
        incarnation,
        Arc::from(secret),
        loopback_any_port(),
    ))
}

fn start_with(config: LinkConfig) -> TestNode {
    let (id, incarnation) = (config.node_id.clone(), config.incarnation);
    let (events_tx, events) = mpsc::channel();
    let (links, addr) = Links::start(config, move |event| {
        let _ = events_tx.send(event);
    })
    .expect("the link starts");
    TestNode {
        links,
        me: PeerNode {
            id,
            incarnation,
            addr,
        },
        events,
    }
}

fn frame(header: &[u8], body: &[u8]) -> Frame {
    Frame {
        header: Bytes::copy_from_slice(header),
        body: Bytes::copy_from_slice(body),
    }
}

impl TestNode {
    fn event(&self) -> LinkEvent {
        self.events
            .recv_timeout(EVENT_WAIT)
            .expect("an event in time")
    }

    /// The next `count` frames, all from `from`; Up events are skipped, a Down fails.
    fn frames_from(&self, from: &PeerNode, count: usize) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(count);
        while frames.len() < count {
            match self.event() {
                LinkEvent::Frame {
                    from: node,
                    incarnation,
                    frame,
                } => {
                    assert_eq!(
                        (node.as_str(), incarnation),
                        (from.id.as_str(), from.incarnation)
                    );
                    frames.push(frame);
                }
                LinkEvent::Up { .. } => {}
                down => panic!("{} got {down:?} after {} frames", self.me.id, frames.len()),
            }
        }
        frames
    }

    fn expect_up(&self, node: &PeerNode) {
        match self.event() {
            LinkEvent::Up {
                node: id,
                incarnation,
            } => assert_eq!((id, incarnation), (node.id.clone(), node.incarnation)),
            other => panic!("{} expected Up of {}, got {other:?}", self.me.id, node.id),
        }
    }

    fn expect_down(&self, node: &PeerNode) {
        match self.event() {
            LinkEvent::Down {
                node: id,
                incarnation,
            } => {
                assert_eq!((id, incarnation), (node.id.clone(), node.incarnation))
            }
            other => panic!("{} expected Down of {}, got {other:?}", self.me.id, node.id),
        }
    }

    fn expect_no_event(&self) {
        match self.events.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            other => panic!("{} expected no event, got {other:?}", self.me.id),
        }
    }

    fn stat(&self, counter: fn(&LinkStats) -> &AtomicU64) -> u64 {
        counter(self.links.stats()).load(Ordering::Relaxed)
    }
}

/// Waits for what reports no event (a counter); fails after [`EVENT_WAIT`].
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + EVENT_WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL_EVERY);
    }
}

/// An address nothing listens on: bound once by the OS, then released.
fn dead_address() -> SocketAddr {
    let listener = StdListener::bind(loopback_any_port()).expect("bind");
    listener.local_addr().expect("local address")
}

#[test]
fn ten_thousand_frames_each_way_arrive_in_order() {
    let a = start_node("a", 1, SECRET);
    let b = start_node("b", 2, SECRET);
    const COUNT: u32 = 10_000;
    for seq in 0..COUNT {
        a.links
            .send(&b.me, frame(&seq.to_be_bytes(), b"from a"))
            .expect("queued");
        b.links
            .send(&a.me, frame(&seq.to_be_bytes(), b"from b"))
            .expect("queued");
    }
    let at_b = b.frames_from(&a.me, COUNT as usize);
    let at_a = a.frames_from(&b.me, COUNT as usize);
    for (seq, (at_b, at_a)) in (0..COUNT).zip(at_b.iter().zip(&at_a)) {
        assert_eq!(at_b, &frame(&seq.to_be_bytes(), b"from a"));
        assert_eq!(at_a, &frame(&seq.to_be_bytes(), b"from b"));
    }
    assert_eq!(a.stat(|s| &s.frames_sent), u64::from(COUNT));
    assert_eq!(b.stat(|s| &s.frames_received), u64::from(COUNT));
    assert_eq!(a.stat(|s| &s.connections_dialed), 1);
    eventually("a's queue to drain", || a.links.queued_bytes("b") == 0);
}

#[test]
fn a_sixteen_mib_body_arrives_intact_between_small_frames() {
    let a = start_node("a", 1, SECRET);
    let b = start_node("b", 1, SECRET);
    let body: Vec<u8> = (0..MAX_BODY_LEN).map(|i| (i % 251) as u8).collect();
    a.links.send(&b.me, frame(b"before", b"")).expect("queued");
    a.links.send(&b.me, frame(b"chunk", &body)).expect("queued");
    a.links.send(&b.me, frame(b"after", b"x")).expect("queued");
    let frames = b.frames_from(&a.me, 3);
    assert_eq!(frames[0], frame(b"before", b""));
    assert_eq!(&frames[1].header[..], b"chunk");
    assert!(frames[1].body[..] == body[..], "the 16 MiB body differs");
    assert_eq!(frames[2], frame(b"after", b"x"));
}

#[test]
fn bodies_either_side_of_the_copy_threshold_keep_their_order() {
    let a = start_node("a", 1, SECRET);
    let b = start_node("b", 1, SECRET);
    let sizes = [0, 1, 4096, 4097, 300_000, 7, 1 << 20, 0, 4095];
    let sent: Vec<Frame> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| frame(&[i as u8], &vec![i as u8; size]))
        .collect();
    for frame in &sent {
        a.links.send(&b.me, frame.clone()).expect("queued");
    }
    assert_eq!(b.frames_from(&a.me, sent.len()), sent);
}

#[test]
fn a_wrong_secret_delivers_nothing_and_is_counted() {
    let a = start_node("a", 1, SECRET);
    let b = start_node("b", 1, OTHER_SECRET);
    a.links
        .send(&b.me, frame(b"hello", b"secret stuff"))
        .expect("queued");
    // Two attempts each way: the redial after the first failure fails too.
    eventually("two failed handshakes on each side", || {
        a.stat(|s| &s.auth_failures) >= 2 && b.stat(|s| &s.auth_failures) >= 2
    });
    a.expect_no_event();
    b.expect_no_event();
    assert_eq!(b.stat(|s| &s.frames_received), 0);
    assert_eq!(a.stat(|s| &s.connections_dialed), 0);
    assert_eq!(b.stat(|s| &s.connections_accepted), 0);
    assert!(a.links.queued_bytes("b") > 0, "the frame stays queued");
}

#[tokio::test]
async fn a_reflected_proof_is_refused() {
    let b = start_node("b", 7, SECRET);
    let mut raw = tokio::net::TcpStream::connect(b.me.addr)
        .await
        .expect("connect");
    let mallory = Identity {
        id: "mallory".to_owned(),
        incarnation: 1,
    };
    raw.write_all(&handshake::greeting(&mallory, &[7; NONCE_LEN]))
        .await
        .expect("greeting");
    let (acceptor, _) = handshake::read_greeting(&mut raw)
        .await
        .expect("b's greeting");
    assert_eq!(
        acceptor,
        Identity {
            id: "b".to_owned(),
            incarnation: 7
        }
    );
    let mut proof = [0; PROOF_LEN];
    raw.read_exact(&mut proof).await.expect("b's proof");
    // B's own proof, sent back as ours: same nonces, same identities, other direction.
    raw.write_all(&proof).await.expect("reflect");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(EVENT_WAIT, raw.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(rest.is_empty(), "b accepted a reflected proof");
    eventually("b counts the failure", || b.stat(|s| &s.auth_failures) == 1);
    b.expect_no_event();
}

#[test]
fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    use std::io::Read;
    let b = start_node("b", 1, SECRET);
    let mut raw = std::net::TcpStream::connect(b.me.addr).expect("connect");
    raw.set_read_timeout(Some(EVENT_WAIT))
        .expect("read timeout");
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).expect("b closes the connection");
    assert!(
        rest.is_empty(),
        "b wrote to a connection that never greeted it"
    );
    eventually("b counts the failure", || b.stat(|s| &s.auth_failures) == 1);
    b.expect_no_event();
}

#[test]
fn a_restarted_peer_is_reached_at_its_new_incarnation_only() {
    let a = start_node("a", 1, SECRET);
    let old_b = start_node("b", 1, SECRET);
    a.links.send(&old_b.me, frame(b"one", b"")).expect("queued");
    assert_eq!(old_b.frames_from(&a.me, 1), [frame(b"one", b"")]);
    a.expect_up(&old_b.me);

    old_b.links.shutdown();
    a.expect_down(&old_b.me);
    let new_b = start_with(LinkConfig::new("b", 2, Arc::from(SECRET), old_b.me.addr));
    assert_eq!(new_b.me.addr, old_b.me.addr);

    // Membership has not caught up: a dials the old incarnation and must refuse the new one.
    a.links
        .send(&old_b.me, frame(b"stale", b""))
        .expect("queued");
    eventually("a refuses the wrong incarnation", || {
        a.stat(|s| &s.auth_failures) >= 1
    });
    a.expect_no_event();

    a.links.send(&new_b.me, frame(b"two", b"")).expect("queued");
    a.expect_up(&new_b.me);
    // The stale frame was dropped with the old incarnation's queue.
    assert_eq!(new_b.frames_from(&a.me, 1), [frame(b"two", b"")]);
    eventually("a's queue to drain", || a.links.queued_bytes("b") == 0);
    new_b.expect_no_event();
}

#[test]
fn a_new_incarnation_drops_the_old_connection_and_queue() {
    let a = start_node("a", 1, SECRET);
    let old_b = start_node("b", 1, SECRET);
    let new_b = start_node("b", 2, SECRET);
    a.links
        .send(&old_b.me, frame(b"to old", b""))
        .expect("queued");
    a.expect_up(&old_b.me);
    assert_eq!(old_b.frames_from(&a.me, 1), [frame(b"to old", b"")]);

    a.links
        .send(&new_b.me, frame(b"to new", b""))
        .expect("queued");
    a.expect_down(&old_b.me);
    a.expect_up(&new_b.me);
    assert_eq!(new_b.frames_from(&a.me, 1), [frame(b"to new", b"")]);
    old_b.expect_down(&a.me);

    // Queued for an incarnation that cannot be reached, then replaced: the queue goes.
    let unreachable = PeerNode {
        id: "c".to_owned(),
        incarnation: 1,
        addr: dead_address(),
    };
    a.links
        .send(&unreachable, frame(b"lost", &[0; 1000]))
        .expect("queued");
    assert_eq!(a.links.queued_bytes("c"), 8 + 4 + 1000);
    let c = start_node("c", 2, SECRET);
    a.links.send(&c.me, frame(b"kept", b"")).expect("queued");
    assert_eq!(c.frames_from(&a.me, 1), [frame(b"kept", b"")]);
}

#[test]
fn a_peer_that_shuts_down_is_reported_down() {
    let a = start_node("a", 1, SECRET);
    let b = start_node("b", 1, SECRET);
    a.links.send(&b.me, frame(b"hi", b"")).expect("queued");
    a.expect_up(&b.me);
    b.links.shutdown();
    a.expect_down(&b.me);
    assert_eq!(
        b.links.send(&a.me, frame(b"late", b"")),
        Err(LinkError::Closed)
    );
}

#[test]
fn backpressure_once_the_queue_of_an_unreachable_peer_is_full() {
    let mut config = LinkConfig::new("a", 1, Arc::from(SECRET), loopback_any_port());
    config.max_queued_bytes = 1024 * 1024;
    let a = start_with(config);
    let nobody = PeerNode {
        id: "nobody".to_owned(),
        incarnation: 1,
        addr: dead_address(),
    };
    let chunk = frame(b"", &[0; 100 * 1024]);
    let wire_len = 8 + 100 * 1024;
    // Ten fit in 1 MiB with their prefixes, the eleventh does not.
    for _ in 0..10 {
        a.links.send(&nobody, chunk.clone()).expect("queued");
    }
    assert_eq!(
        a.links.send(&nobody, chunk.clone()),
        Err(LinkError::Backpressure)
    );
    assert_eq!(a.links.queued_bytes("nobody"), 10 * wire_len);
    eventually("a redials", || a.stat(|s| &s.dial_failures) >= 2);
    assert_eq!(a.links.send(&nobody, chunk), Err(LinkError::Backpressure));
    a.expect_no_event();
}

#[test]
fn forget_closes_both_directions_and_drops_the_queue() {
    let a = start_node("a", 1, SECRET);
    let b = start_node("b", 1, SECRET);
    a.links.send(&b.me, frame(b"a to b", b"")).expect("queued");
    b.links.send(&a.me, frame(b"b to a", b"")).expect("queued");
    assert_eq!(a.frames_from(&b.me, 1), [frame(b"b to a", b"")]);
    b.frames_from(&a.me, 1);
    // a has seen both Ups (outbound, and the inbound that carried the frame) or has one left.
    let _ = a.links.forget("b");
    let mut downs = 0;
    while downs < 2 {
        match a.event() {
            LinkEvent::Down { node, incarnation } => {
                assert_eq!((node.as_str(), incarnation), ("b", 1));
                downs += 1;
            }
            LinkEvent::Up { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(a.links.queued_bytes("b"), 0);
}

#[test]
fn frames_over_the_limits_are_refused_at_send() {
    let a = start_node("a", 1, SECRET);
    let b = start_node("b", 1, SECRET);
    let big_header = Frame {
        header: Bytes::from(vec![0; MAX_HEADER_LEN + 1]),
        body: Bytes::new(),
    };
    assert!(matches!(
        a.links.send(&b.me, big_header),
        Err(LinkError::FrameTooLarge { .. })
    ));
    let big_body = Frame {
        header: Bytes::new(),
        body: Bytes::from(vec![0; MAX_BODY_LEN + 1]),
    };
    assert!(matches!(
        a.links.send(&b.me, big_body),
        Err(LinkError::FrameTooLarge { .. })
    ));
    assert_eq!(a.links.queued_bytes("b"), 0);
}

#[test]
fn links_can_be_shared_between_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Links>();
    let a = start_node("a", 1, SECRET);
    let b = start_node("b", 1, SECRET);
    let senders: Vec<_> = (0..4u8)
        .map(|thread| {
            let (links, to) = (a.links.clone(), b.me.clone());
            std::thread::spawn(move || links.send(&to, frame(&[thread], b"")))
        })
        .collect();
    for sender in senders {
        sender.join().expect("no panic").expect("queued");
    }
    let mut from_threads: Vec<u8> = b
        .frames_from(&a.me, 4)
        .iter()
        .map(|f| f.header[0])
        .collect();
    from_threads.sort_unstable();
    assert_eq!(from_threads, [0, 1, 2, 3]);
}

#[test]
fn start_refuses_a_short_secret_and_a_bad_node_id() {
    let short = LinkConfig::new("a", 1, Arc::from(&b"too short"[..]), loopback_any_port());
    assert!(Links::start(short, |_| {}).is_err());
    let empty_id = LinkConfig::new("", 1, Arc::from(SECRET), loopback_any_port());
    assert!(Links::start(empty_id, |_| {}).is_err());
    let long_id = LinkConfig::new(
        "x".repeat(NODE_ID_MAX_LEN + 1),
        1,
        Arc::from(SECRET),
        loopback_any_port(),
    );
    assert!(Links::start(long_id, |_| {}).is_err());
}

/// Authenticates a raw connection to `b` as node "raw", sends `prefix`, and checks that `b`
/// closes the connection without delivering anything.
async fn send_raw_prefix_after_handshake(header_len: u32, body_len: u32) {
    let b = start_node("b", 1, SECRET);
    let raw_node = PeerNode {
        id: "raw".to_owned(),
        incarnation: 1,
        addr: dead_address(),
    };
    let mut raw = tokio::net::TcpStream::connect(b.me.addr)
        .await
        .expect("connect");
    let me = Identity {
        id: "raw".to_owned(),
        incarnation: 1,
    };
    let expected = Identity {
        id: "b".to_owned(),
        incarnation: 1,
    };
    handshake::dial(&mut raw, SECRET, &me, &expected)
        .await
        .expect("the handshake");
    b.expect_up(&raw_node);
    let mut prefix = header_len.to_be_bytes().to_vec();
    prefix.extend_from_slice(&body_len.to_be_bytes());
    raw.write_all(&prefix).await.expect("prefix");
    let mut rest = Vec::new();
    // EOF or a reset: either way closed, and b never wrote a byte after the handshake.
    let _ = tokio::time::timeout(EVENT_WAIT, raw.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(rest.is_empty());
    b.expect_down(&raw_node);
    assert_eq!(b.stat(|s| &s.protocol_errors), 1);
    assert_eq!(b.stat(|s| &s.frames_received), 0);
}

#[tokio::test]
async fn an_oversize_header_length_closes_the_connection() {
    send_raw_prefix_after_handshake(u32::MAX, 0).await;
}

#[tokio::test]
async fn an_oversize_body_length_closes_the_connection() {
    send_raw_prefix_after_handshake(0, (MAX_BODY_LEN + 1) as u32).await;
}

#[test]
fn the_decoder_refuses_oversize_lengths_before_reserving_room() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&0u32.to_be_bytes());
    buf.extend_from_slice(&((MAX_BODY_LEN + 1) as u32).to_be_bytes());
    let capacity = buf.capacity();
    assert!(matches!(
        wire::decode(&mut buf),
        Err(wire::ReadError::Oversize { header: 0, .. })
    ));
    assert_eq!(buf.capacity(), capacity);
}

#[tokio::test]
async fn a_batch_decodes_back_to_its_frames_byte_by_byte() {
    let sent = vec![
        frame(b"h1", b""),
        frame(b"", &[1; 5000]),
        frame(b"h3", &[3; 10]),
        frame(&[4; 300], &[4; 70_000]),
        frame(b"", b""),
    ];
    let mut wire_bytes = Vec::new();
    BatchWriter::default()
        .write_all(&mut wire_bytes, &sent)
        .await
        .expect("written");
    assert_eq!(
        wire_bytes.len(),
        sent.iter().map(wire::wire_len).sum::<usize>()
    );
    // Fed one byte at a time, the decoder waits, then yields each frame once it is whole.
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    for byte in wire_bytes {
        buf.extend_from_slice(&[byte]);
        while let Decoded::Frame(frame) = wire::decode(&mut buf).expect("valid") {
            decoded.push(frame);
        }
    }
    assert_eq!(decoded, sent);
    assert!(buf.is_empty());
}

#[tokio::test]
async fn the_reader_returns_frames_of_every_size_through_short_reads() {
    // Around the large-frame threshold, a whole read, and more than an empty buffer's room.
    let sizes = [0, 65_535, 65_536, 65_537, 10, 262_144, 3, 600_000, 0, 1];
    let sent: Vec<Frame> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| frame(&[i as u8; 3], &vec![i as u8; size]))
        .collect();
    // A pipe of 4 KiB hands the reader a few KiB per read.
    let (mut writing, reading) = tokio::io::duplex(4096);
    let to_write = sent.clone();
    let writer = tokio::spawn(async move {
        BatchWriter::default()
            .write_all(&mut writing, &to_write)
            .await
            .expect("written");
        // A frame cut short: its prefix promises a body that never comes.
        writing
            .write_all(&[0, 0, 0, 0, 0, 0, 0, 9, 1])
            .await
            .expect("written");
    });
    let mut reader = wire::FrameReader::new(reading);
    for expected in &sent {
        let frame = reader.next().await.expect("readable").expect("a frame");
        assert!(
            frame == *expected,
            "frame of {} bytes differs",
            expected.body.len()
        );
    }
    writer.await.expect("the writer finished");
    assert!(matches!(
        reader.next().await,
        Err(wire::ReadError::Truncated)
    ));
}

#[tokio::test]
async fn the_reader_ends_cleanly_when_the_peer_closes_between_frames() {
    let (mut writing, reading) = tokio::io::duplex(4096);
    BatchWriter::default()
        .write_all(&mut writing, &[frame(b"last", b"one")])
        .await
        .expect("written");
    drop(writing);
    let mut reader = wire::FrameReader::new(reading);
    assert_eq!(
        reader.next().await.expect("readable"),
        Some(frame(b"last", b"one"))
    );
    assert_eq!(reader.next().await.expect("readable"), None);
}

#[test]
fn incomplete_frames_wait_for_more_bytes() {
    let mut buf = BytesMut::from(&[0, 0, 0, 2, 0, 0, 0, 3, b'h'][..]);
    assert!(matches!(
        wire::decode(&mut buf),
        Ok(Decoded::Incomplete { frame_len: 13 })
    ));
    assert_eq!(buf.len(), 9, "nothing consumed");
}

/// 1 GiB in 256 KiB frames between two links in this process. Prints MB/s; asserts only
/// that every byte arrived. Run by hand:
/// `cargo test --release --lib cluster::link::tests::link_throughput -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, run by hand"]
fn link_throughput() {
    const TOTAL: usize = 1 << 30;
    const CHUNK: usize = 256 * 1024;
    /// Frames in flight at most: 32 MiB, under the 64 MiB queue limit.
    const WINDOW: usize = 128;
    let a = start_node("a", 1, SECRET);
    let (arrived_tx, arrived) = mpsc::channel();
    let (links, addr) = Links::start(
        LinkConfig::new("b", 1, Arc::from(SECRET), loopback_any_port()),
        move |event| {
            if let LinkEvent::Frame { frame, .. } = event {
                let _ = arrived_tx.send(frame.body.len());
            }
        },
    )
    .expect("b starts");
    let b = PeerNode {
        id: "b".to_owned(),
        incarnation: 1,
        addr,
    };
    let body = Bytes::from(vec![0x5a; CHUNK]);
    let frames = TOTAL / CHUNK;
    let started = Instant::now();
    let (mut sent, mut received_bytes, mut outstanding) = (0, 0, 0);
    while sent < frames || outstanding > 0 {
        if sent < frames && outstanding < WINDOW {
            a.links
                .send(
                    &b,
                    Frame {
                        header: Bytes::from_static(b"chunk"),
                        body: body.clone(),
                    },
                )
                .expect("queued");
            sent += 1;
            outstanding += 1;
        } else {
            received_bytes += arrived.recv_timeout(EVENT_WAIT).expect("a frame in time");
            outstanding -= 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(received_bytes, TOTAL);
    eprintln!(
        "link_throughput: {} MiB in {} frames of {} KiB: {seconds:.2} s, {:.0} MB/s",
        TOTAL >> 20,
        frames,
        CHUNK >> 10,
        TOTAL as f64 / seconds / 1e6
    );
    links.shutdown();
}
