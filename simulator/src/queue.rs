//! The event queue: events ordered by `(time, sequence)`, the sequence
//! being the order in which they were scheduled.
//!
//! Virtual time is in whole milliseconds, and nearly every event is a
//! message due within a link latency (tens of milliseconds), while a large
//! run has tens of thousands of messages in flight. So the queue is a
//! timing wheel: one first-in-first-out bucket per millisecond over a
//! window of [`WHEEL_SPAN_MS`] from the time last popped, with a bit set of
//! the buckets in use, and a `BTreeMap` of buckets for the rare event due
//! later (a timer) or, which the simulator never does, earlier. Within a
//! bucket the order of scheduling is the sequence order; an event due at
//! the same time in the map was scheduled before any in the wheel. This
//! pops in exactly the order a binary heap over `(time, sequence)` does,
//! without moving events around a heap or searching a tree.

use std::collections::{BTreeMap, VecDeque};

/// Milliseconds the wheel covers (a power of two).
pub const WHEEL_SPAN_MS: usize = 4096;

/// A queue of events of type `T`.
#[derive(Debug)]
pub struct EventQueue<T> {
    wheel: Vec<VecDeque<(u64, T)>>,
    /// One bit per wheel bucket that holds events.
    occupied: Vec<u64>,
    in_wheel: usize,
    /// No event in the wheel is due before this time (the time last
    /// popped), nor at or after `start + wheel.len()`.
    start: u64,
    later: BTreeMap<u64, VecDeque<(u64, T)>>,
    seq: u64,
    len: usize,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue::with_span(WHEEL_SPAN_MS)
    }
}

impl<T> EventQueue<T> {
    /// A queue whose wheel covers `span` milliseconds (rounded up to a
    /// power of two, at least 64).
    pub fn with_span(span: usize) -> Self {
        let span = span.max(64).next_power_of_two();
        EventQueue {
            wheel: (0..span).map(|_| VecDeque::new()).collect(),
            occupied: vec![0; span / 64],
            in_wheel: 0,
            start: 0,
            later: BTreeMap::new(),
            seq: 0,
            len: 0,
        }
    }

    fn slot(&self, time: u64) -> usize {
        // The span is a power of two that fits in usize.
        (time as usize) & (self.wheel.len() - 1)
    }

    /// Schedules `event` at `time`; returns its sequence number.
    pub fn push(&mut self, time: u64, event: T) -> u64 {
        self.seq += 1;
        self.len += 1;
        let in_window = time
            .checked_sub(self.start)
            .is_some_and(|ahead| ahead < self.wheel.len() as u64);
        if in_window {
            let slot = self.slot(time);
            self.wheel[slot].push_back((self.seq, event));
            self.occupied[slot / 64] |= 1 << (slot % 64);
            self.in_wheel += 1;
        } else {
            self.later
                .entry(time)
                .or_default()
                .push_back((self.seq, event));
        }
        self.seq
    }

    /// The time of the earliest bucket in use in the wheel.
    fn wheel_next(&self) -> Option<u64> {
        if self.in_wheel == 0 {
            return None;
        }
        let from = self.slot(self.start);
        let words = self.occupied.len();
        let (first_word, first_bit) = (from / 64, from % 64);
        // The bucket of `start` first, then the wheel onwards, wrapping
        // round to the bits of the first word before `start`'s.
        for step in 0..=words {
            let word = (first_word + step) % words;
            let mut bits = self.occupied[word];
            if step == 0 {
                bits &= u64::MAX << first_bit;
            } else if step == words {
                bits &= !(u64::MAX << first_bit);
            }
            if bits != 0 {
                let slot = word * 64 + bits.trailing_zeros() as usize;
                let ahead = (slot + self.wheel.len() - from) % self.wheel.len();
                return Some(self.start + ahead as u64);
            }
        }
        None
    }

    /// The earliest event, with its time and sequence number.
    pub fn pop(&mut self) -> Option<(u64, u64, T)> {
        let wheel = self.wheel_next();
        let later = self.later.first_key_value().map(|(time, _)| *time);
        let (time, seq, event) = match (wheel, later) {
            (Some(w), Some(l)) if l <= w => self.pop_later()?,
            (Some(w), _) => {
                let slot = self.slot(w);
                let (seq, event) = self.wheel[slot].pop_front()?;
                if self.wheel[slot].is_empty() {
                    self.occupied[slot / 64] &= !(1 << (slot % 64));
                }
                self.in_wheel -= 1;
                (w, seq, event)
            }
            (None, Some(_)) => self.pop_later()?,
            (None, None) => return None,
        };
        self.start = self.start.max(time);
        self.len -= 1;
        Some((time, seq, event))
    }

    fn pop_later(&mut self) -> Option<(u64, u64, T)> {
        let mut first = self.later.first_entry()?;
        let time = *first.key();
        let (seq, event) = first.get_mut().pop_front()?;
        if first.get().is_empty() {
            first.remove();
        }
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
            ops in proptest::collection::vec((any::<bool>(), 0u64..300), 1..400),
            span in prop_oneof![Just(64usize), Just(WHEEL_SPAN_MS)],
        ) {
            // Times from 20 ms before the time last popped (which the
            // simulator never schedules) to well past a small wheel.
            let mut queue = EventQueue::with_span(span);
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
                    let time = (now + delay).saturating_sub(20);
                    let seq = queue.push(time, delay);
                    heap.push(Reverse((time, seq, delay)));
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
