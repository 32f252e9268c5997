//! The sending side of the link: for each peer incarnation a queue, and a task on the link
//! thread that dials the peer, authenticates, and writes the queue in batches.
//!
//! The task is the queue's only reader, which is what keeps frames in order. It must never
//! dial while its queue is empty, nor report `Up` before the handshake completed.

use super::handshake::{self, Identity};
use super::wire::{self, BatchWriter};
use super::{bump, lock, Frame, LinkError, LinkEvent, PeerNode, Shared, HANDSHAKE_TIMEOUT};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;

/// How long a TCP connect may take. Without it a dial to a host that is gone waits out the
/// kernel's SYN retries (over a minute); 5 s covers a loaded node's accept queue.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// First pause before dialing again after a failed dial or a broken connection: long
/// enough that a peer that refuses is not hammered, short enough that a restart is
/// noticed at once.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);

/// Longest pause between dials: a peer that comes back is reached within 2 s.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Frames waiting for one peer, shared by [`super::Links::send`] (any thread) and the
/// peer's task.
#[derive(Default)]
pub(super) struct PeerQueue {
    frames: Mutex<VecDeque<Frame>>,
    /// Wire bytes queued or being written. Only `push` adds, under the `frames` lock, so the
    /// limit holds exactly; the task subtracts once a batch has left.
    queued_bytes: AtomicUsize,
    /// Wakes the task when a frame arrives; `notify_one` keeps a permit if it is busy.
    wake: Notify,
}

impl PeerQueue {
    pub(super) fn push(&self, frame: Frame, max_queued_bytes: usize) -> Result<(), LinkError> {
        let len = wire::wire_len(&frame);
        {
            let mut frames = lock(&self.frames);
            let queued = self.queued_bytes.load(Ordering::Acquire);
            if queued.saturating_add(len) > max_queued_bytes {
                return Err(LinkError::Backpressure);
            }
            // An add, not a store: the task releases written bytes without the lock.
            self.queued_bytes.fetch_add(len, Ordering::AcqRel);
            frames.push_back(frame);
        }
        self.wake.notify_one();
        Ok(())
    }

    pub(super) fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Takes every frame still waiting (not yet handed to a connection).
    pub(super) fn drain(&self) -> Vec<Frame> {
        let frames: Vec<Frame> = lock(&self.frames).drain(..).collect();
        let bytes: usize = frames.iter().map(wire::wire_len).sum();
        self.release(bytes);
        frames
    }

    fn is_empty(&self) -> bool {
        lock(&self.frames).is_empty()
    }

    /// Moves the next batch into `batch` (at least one frame if any is queued); returns its
    /// wire bytes.
    fn take_batch(&self, batch: &mut Vec<Frame>) -> usize {
        let mut frames = lock(&self.frames);
        let mut bytes = 0;
        while let Some(next) = frames.front() {
            let len = wire::wire_len(next);
            let full = batch.len() >= wire::BATCH_MAX_FRAMES || bytes + len > wire::BATCH_MAX_BYTES;
            if !batch.is_empty() && full {
                break;
            }
            if let Some(frame) = frames.pop_front() {
                batch.push(frame);
                bytes += len;
            }
        }
        bytes
    }

    /// The batch left the queue: written, or lost with its connection.
    fn release(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A peer incarnation we send to.
pub(super) struct Outbound {
    pub(super) peer: PeerNode,
    pub(super) queue: Arc<PeerQueue>,
    /// Cancelled when the peer is forgotten or replaced by another incarnation.
    pub(super) cancel: CancellationToken,
    /// Awaited by the task of the next incarnation, so that this one's Down comes first.
    pub(super) task: JoinHandle<()>,
}

impl Outbound {
    /// Starts the task for `peer` on the link thread; it first waits for `previous`.
    pub(super) fn spawn(
        shared: &Arc<Shared>,
        peer: PeerNode,
        previous: Option<JoinHandle<()>>,
    ) -> Outbound {
        let queue = Arc::new(PeerQueue::default());
        let cancel = shared.root.child_token();
        let sender = Sender {
            shared: Arc::clone(shared),
            peer: peer.clone(),
            queue: Arc::clone(&queue),
            cancel: cancel.clone(),
        };
        let task = shared.runtime.spawn(sender.run(previous));
        Outbound {
            peer,
            queue,
            cancel,
            task,
        }
    }
}

/// Pauses between dials: doubling from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`], each drawn
/// between half and all of its step so that nodes restarted together do not dial in step.
struct Backoff {
    step: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            step: BACKOFF_FIRST,
        }
    }

    fn next_pause(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(BACKOFF_MAX);
        let millis = u64::try_from(step.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(millis / 2..=millis))
    }
}

/// How a connection ended.
enum Ended {
    /// Forgotten, replaced, or shut down: stop.
    Cancelled,
    /// Broken: dial again if frames are waiting.
    Broken(io::Error),
}

/// The task of one peer incarnation.
struct Sender {
    shared: Arc<Shared>,
    peer: PeerNode,
    queue: Arc<PeerQueue>,
    cancel: CancellationToken,
}

impl Sender {
    async fn run(self, previous: Option<JoinHandle<()>>) {
        if let Some(previous) = previous {
            // Its result is only a panic report, which tokio has already logged.
            let _ = previous.await;
        }
        let mut backoff = Backoff::new();
        let mut pause = None;
        loop {
            if !self.wait_for_frames().await {
                return;
            }
            if let Some(pause) = pause.take() {
                tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    _ = sleep(pause) => {}
                }
            }
            let dialed = tokio::select! {
                _ = self.cancel.cancelled() => return,
                dialed = self.dial() => dialed,
            };
            let Some(stream) = dialed else {
                pause = Some(backoff.next_pause());
                continue;
            };
            backoff = Backoff::new();
            let (node, incarnation) = (self.peer.id.clone(), self.peer.incarnation);
            self.shared.emit(LinkEvent::Up {
                node: node.clone(),
                incarnation,
            });
            let ended = self.carry(stream).await;
            self.shared.emit(LinkEvent::Down { node, incarnation });
            match ended {
                Ended::Cancelled => return,
                Ended::Broken(error) => {
                    log::info!(
                        "cluster link to {} ({}) broke: {error}",
                        self.peer.id,
                        self.peer.addr
                    );
                    pause = Some(backoff.next_pause());
                }
            }
        }
    }

    /// Waits until a frame is queued; false if cancelled first.
    async fn wait_for_frames(&self) -> bool {
        while self.queue.is_empty() {
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                _ = self.queue.wake.notified() => {}
            }
        }
        true
    }

    /// Connects and authenticates; `None` (counted and logged) if either fails.
    async fn dial(&self) -> Option<TcpStream> {
        let stats = &self.shared.stats;
        let connected = timeout(CONNECT_TIMEOUT, TcpStream::connect(self.peer.addr)).await;
        let mut stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return self.dial_failed(&error.to_string()),
            Err(_) => return self.dial_failed("connect timed out"),
        };
        if let Err(error) = stream.set_nodelay(true) {
            return self.dial_failed(&error.to_string());
        }
        let config = &self.shared.config;
        let me = Identity {
            id: config.node_id.clone(),
            incarnation: config.incarnation,
        };
        let expected = Identity {
            id: self.peer.id.clone(),
            incarnation: self.peer.incarnation,
        };
        let outcome = timeout(
            HANDSHAKE_TIMEOUT,
            handshake::dial(&mut stream, &config.secret, &me, &expected),
        )
        .await;
        let failure = match outcome {
            Ok(Ok(())) => {
                bump(&stats.connections_dialed, 1);
                return Some(stream);
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "the handshake timed out".to_owned(),
        };
        bump(&stats.auth_failures, 1);
        log::warn!(
            "cluster link to {} ({}) refused: {failure}",
            self.peer.id,
            self.peer.addr
        );
        None
    }

    fn dial_failed(&self, why: &str) -> Option<TcpStream> {
        bump(&self.shared.stats.dial_failures, 1);
        log::debug!(
            "cluster link cannot reach {} ({}): {why}",
            self.peer.id,
            self.peer.addr
        );
        None
    }

    /// Writes the queue to an authenticated connection until it breaks or is cancelled.
    async fn carry(&self, stream: TcpStream) -> Ended {
        let (read_half, mut write_half) = stream.into_split();
        let closed = peer_closed(read_half);
        tokio::pin!(closed);
        let mut writer = BatchWriter::default();
        let mut batch = Vec::new();
        loop {
            let bytes = self.queue.take_batch(&mut batch);
            if batch.is_empty() {
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => return Ended::Cancelled,
                    error = &mut closed => return Ended::Broken(error),
                    _ = self.queue.wake.notified() => continue,
                }
            }
            let written = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => Err(None),
                error = &mut closed => Err(Some(error)),
                written = writer.write_all(&mut write_half, &batch) => written.map_err(Some),
            };
            self.queue.release(bytes);
            match written {
                Ok(()) => {
                    bump(&self.shared.stats.frames_sent, batch.len());
                    bump(&self.shared.stats.bytes_sent, bytes);
                }
                Err(None) => return Ended::Cancelled,
                Err(Some(error)) => return Ended::Broken(error),
            }
            batch.clear();
        }
    }
}

/// Resolves when the peer closes the connection. The acceptor never writes after the
/// handshake, so anything read is the end (or a protocol error, which ends it too).
async fn peer_closed(mut read_half: OwnedReadHalf) -> io::Error {
    let mut probe = [0; 1];
    match read_half.read(&mut probe).await {
        Ok(0) => io::ErrorKind::UnexpectedEof.into(),
        Ok(_) => io::Error::new(
            io::ErrorKind::InvalidData,
            "the acceptor wrote after the handshake",
        ),
        Err(error) => error,
    }
}
