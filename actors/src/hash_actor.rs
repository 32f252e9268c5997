//! `HashActor`: the node's one place where file bytes are hashed, off the network threads.
//!
//! Transfers (and uploads) send it a digest state and the bytes that follow; it answers
//! with the advanced state. It runs on its own thread and takes everything queued at once:
//! one job goes through the single-stream path (`sha2`, SHA-NI where the CPU has it), many
//! jobs from different streams go through the multi-buffer kernel, one stream per lane.
//! The state travels with the job, so the actor keeps nothing between jobs and a stream's
//! jobs are ordered by its owner (which sends the next only after the previous returned).

use crate::hash::{update_many, Job, Kernel, Sha256State};
use bytes::Bytes;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most jobs hashed together in one pass.
const MAX_BATCH: usize = 64;
/// Fewer jobs than this are hashed one by one (measured: see docs/benchmarks.md).
const SMALLEST_BATCH: usize = 4;

struct HashJob {
    state: Sha256State,
    data: Vec<Bytes>,
    reply: oneshot::Sender<Sha256State>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the hash actor has stopped")]
pub struct HashActorGone;

/// A handle on the node's hash actor. Cheap to clone.
#[derive(Clone)]
pub struct HashActor {
    tx: mpsc::Sender<HashJob>,
}

impl HashActor {
    /// Starts the actor's thread with the best multi-buffer kernel this CPU has.
    pub fn start() -> std::io::Result<HashActor> {
        let kernel = Kernel::detect();
        log::info!("hashing with the {kernel:?} multi-buffer kernel");
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("peerlink-hash".into())
            .spawn(move || run(kernel, rx))?;
        Ok(HashActor { tx })
    }

    /// Advances `state` over `data`, in order.
    pub async fn hash(
        &self,
        state: Sha256State,
        data: Vec<Bytes>,
    ) -> Result<Sha256State, HashActorGone> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(HashJob { state, data, reply })
            .map_err(|_| HashActorGone)?;
        answer.await.map_err(|_| HashActorGone)
    }
}

fn run(kernel: Kernel, rx: mpsc::Receiver<HashJob>) {
    while let Some(mut batch) = crate::batch::next_batch(&rx, MAX_BATCH) {
        hash_batch(kernel, &mut batch);
        let bytes: usize = batch
            .iter()
            .flat_map(|job| job.data.iter())
            .map(Bytes::len)
            .sum();
        crate::metrics::METRICS.hashed_bytes.inc_by(bytes as u64);
        for job in batch {
            let _ = job.reply.send(job.state);
        }
    }
}

/// Hashes every job's data into its state: alone on the single-stream path, together on
/// the multi-buffer kernel, round by round (the n-th chunk of every job in round n).
fn hash_batch(kernel: Kernel, batch: &mut [HashJob]) {
    // A lane left idle costs as much as a busy one: two or three streams go faster one
    // after another on the single-stream path.
    if batch.len() < SMALLEST_BATCH {
        for job in batch.iter_mut() {
            for chunk in &job.data {
                job.state.update(chunk);
            }
        }
        return;
    }
    let rounds = batch.iter().map(|job| job.data.len()).max().unwrap_or(0);
    for round in 0..rounds {
        let mut jobs: Vec<Job<'_>> = batch
            .iter_mut()
            .filter_map(|job| {
                let chunk = job.data.get(round)?;
                Some(Job {
                    state: &mut job.state,
                    data: chunk.as_ref(),
                })
            })
            .collect();
        update_many(kernel, &mut jobs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn batches_of_many_streams_hash_each_stream_exactly() {
        let streams: Vec<Vec<u8>> = (0..9)
            .map(|i| (0..(i * 997 + 13)).map(|b| (b * 31 + i) as u8).collect())
            .collect();
        let mut batch: Vec<HashJob> = streams
            .iter()
            .map(|data| {
                let (reply, _) = oneshot::channel();
                let chunks = data.chunks(700).map(Bytes::copy_from_slice).collect();
                HashJob {
                    state: Sha256State::new(),
                    data: chunks,
                    reply,
                }
            })
            .collect();
        for kernel in Kernel::available() {
            let mut jobs: Vec<HashJob> = batch
                .iter()
                .map(|job| {
                    let (reply, _) = oneshot::channel();
                    HashJob {
                        state: job.state.clone(),
                        data: job.data.clone(),
                        reply,
                    }
                })
                .collect();
            hash_batch(kernel, &mut jobs);
            for (job, data) in jobs.iter().zip(&streams) {
                let expected: [u8; 32] = Sha256::digest(data).into();
                assert_eq!(job.state.finalize(), expected, "{kernel:?}");
            }
        }
        hash_batch(Kernel::Portable, &mut batch[..1]);
        let expected: [u8; 32] = Sha256::digest(&streams[0]).into();
        assert_eq!(batch[0].state.finalize(), expected);
    }
}
