//! The event queue: events ordered by `(time, sequence)`, the sequence
//! being the order in which they were scheduled.
//!
//! Virtual time is in whole milliseconds and a run has few distinct times
//! pending at once (link latencies span tens of milliseconds, timers a
//! node's phase), while a large run has tens of thousands of messages in
//! flight. So events are kept in one first-in-first-out bucket per time,
//! the buckets in a `BTreeMap`: scheduling appends to a bucket, and within
//! a bucket the order of scheduling is the sequence order. Emptied buckets
//! are kept for reuse. This pops in exactly the order a binary heap over
//! `(time, sequence)` does, without moving events around a heap.

use std::collections::{BTreeMap, VecDeque};

/// A queue of events of type `T`.
#[derive(Debug)]
pub struct EventQueue<T> {
    buckets: BTreeMap<u64, VecDeque<(u64, T)>>,
    spare: Vec<VecDeque<(u64, T)>>,
    seq: u64,
    len: usize,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue {
            buckets: BTreeMap::new(),
            spare: Vec::new(),
            seq: 0,
            len: 0,
        }
    }
}

/// Emptied buckets kept for reuse.
const SPARE_BUCKETS_MAX: usize = 4096;

impl<T> EventQueue<T> {
    /// Schedules `event` at `time`; returns its sequence number.
    pub fn push(&mut self, time: u64, event: T) -> u64 {
        self.seq += 1;
        self.len += 1;
        let spare = &mut self.spare;
        self.buckets
            .entry(time)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push_back((self.seq, event));
        self.seq
    }

    /// The earliest event, with its time and sequence number.
    pub fn pop(&mut self) -> Option<(u64, u64, T)> {
        let mut first = self.buckets.first_entry()?;
        let time = *first.key();
        let (seq, event) = first.get_mut().pop_front()?;
        if first.get().is_empty() {
            let bucket = first.remove();
            if self.spare.len() < SPARE_BUCKETS_MAX {
                self.spare.push(bucket);
            }
        }
        self.len -= 1;
        Some((time, seq, event))
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    proptest! {
        // Any interleaving of pushes and pops gives the order of a binary
        // heap over (time, sequence), as the simulator needs for its
        // traces to replay.
        #[test]
        fn pops_in_time_then_sequence_order(
            ops in proptest::collection::vec((any::<bool>(), 0u64..50), 1..400)
        ) {
            let mut queue = EventQueue::default();
            let mut heap = BinaryHeap::new();
            let mut now = 0;
            for (pop, delay) in ops {
                if pop {
                    let got = queue.pop();
                    let want = heap.pop().map(|Reverse((t, s, e))| (t, s, e));
                    prop_assert_eq!(got, want);
                    if let Some((t, ..)) = got {
                        now = t;
                    }
                } else {
                    let seq = queue.push(now + delay, delay);
                    heap.push(Reverse((now + delay, seq, delay)));
                }
                prop_assert_eq!(queue.len(), heap.len());
            }
            while let Some(want) = heap.pop() {
                prop_assert_eq!(queue.pop(), Some(want.0));
            }
            prop_assert!(queue.is_empty());
        }
    }
}
