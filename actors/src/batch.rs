//! Taking work in batches: block for the first item, then take whatever else is already
//! queued, up to a bound. The group-commit writer and the hash actor both work this way, so
//! that load makes batches bigger instead of queues longer.

use std::sync::mpsc::Receiver;

/// The next batch from `rx`: waits for one item, then adds up to `max - 1` more that are
/// already waiting. `None` once every sender is gone and the queue is empty.
pub fn next_batch<T>(rx: &Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = rx.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn takes_what_is_waiting_up_to_the_bound() {
        let (tx, rx) = channel();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        assert_eq!(next_batch(&rx, 3), Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&rx, 3), Some(vec![3, 4]));
        drop(tx);
        assert_eq!(next_batch(&rx, 3), None);
    }
}
