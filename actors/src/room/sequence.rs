//! `seq` for one room: handed out in order, released in order.
//!
//! A room assigns `seq` before a message is stored and may see the commits finish in any
//! order. [`Sequencer`] holds each committed message until every lower `seq` has been
//! released, so members see one gapless, ascending order whatever the store does.

use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Sequencer<T> {
    /// Highest `seq` handed out.
    assigned: u64,
    /// Highest `seq` released; everything up to here has gone out.
    released: u64,
    /// Committed, waiting for a lower `seq`.
    waiting: BTreeMap<u64, T>,
}

impl<T> Sequencer<T> {
    /// A room whose store holds messages up to `last_seq`.
    pub fn starting_after(last_seq: u64) -> Self {
        Sequencer {
            assigned: last_seq,
            released: last_seq,
            waiting: BTreeMap::new(),
        }
    }

    /// The next `seq`.
    pub fn assign(&mut self) -> u64 {
        self.assigned += 1;
        self.assigned
    }

    /// Records that `seq` is committed and returns every message that may go out now,
    /// in `seq` order.
    pub fn committed(&mut self, seq: u64, item: T) -> Vec<T> {
        self.waiting.insert(seq, item);
        let mut ready = Vec::new();
        while let Some(item) = self.waiting.remove(&(self.released + 1)) {
            self.released += 1;
            ready.push(item);
        }
        ready
    }

    /// Highest `seq` released to members.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Every `seq` handed out is committed and released: nothing is in flight.
    pub fn settled(&self) -> bool {
        self.assigned == self.released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_starts_after_what_the_store_holds_and_counts_up_by_one() {
        let mut seq = Sequencer::<()>::starting_after(0);
        assert_eq!((seq.assign(), seq.assign(), seq.assign()), (1, 2, 3));
        let mut resumed = Sequencer::<()>::starting_after(41);
        assert_eq!(resumed.assign(), 42);
        assert_eq!(resumed.released(), 41);
    }

    #[test]
    fn out_of_order_commits_are_released_in_order_without_gaps() {
        let mut seq = Sequencer::starting_after(10);
        let (a, b, c, d) = (seq.assign(), seq.assign(), seq.assign(), seq.assign());
        assert_eq!(
            seq.committed(c, "c"),
            Vec::<&str>::new(),
            "13 waits for 11 and 12"
        );
        assert_eq!(seq.committed(b, "b"), Vec::<&str>::new(), "12 waits for 11");
        assert_eq!(seq.released(), 10);
        assert_eq!(seq.committed(a, "a"), vec!["a", "b", "c"]);
        assert_eq!(seq.released(), 13);
        assert_eq!(seq.committed(d, "d"), vec!["d"]);
        assert_eq!(seq.released(), 14);
    }

    #[test]
    fn every_permutation_of_commits_releases_the_same_order() {
        // All 120 orders in which five commits can finish.
        let mut orders = vec![vec![]];
        for n in 1..=5u64 {
            orders = orders
                .into_iter()
                .flat_map(|order: Vec<u64>| {
                    (0..=order.len()).map(move |i| {
                        let mut next = order.clone();
                        next.insert(i, n);
                        next
                    })
                })
                .collect();
        }
        assert_eq!(orders.len(), 120);
        for order in orders {
            let mut seq = Sequencer::starting_after(0);
            (0..5).for_each(|_| {
                seq.assign();
            });
            let released: Vec<u64> = order.iter().flat_map(|&s| seq.committed(s, s)).collect();
            assert_eq!(released, vec![1, 2, 3, 4, 5], "commit order {order:?}");
        }
    }
}
