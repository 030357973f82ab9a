//! A pure timer queue: deadlines are plain millisecond ticks and `now` is
//! always an argument, so it is tested without a clock or sockets.
//!
//! A binary heap orders the deadlines; a slab holds the live entries. A
//! cancelled entry leaves a dead heap node behind that is skipped when it
//! surfaces, and the heap is rebuilt when dead nodes outnumber live ones, so
//! memory stays proportional to the number of live timers even when a busy
//! server cancels far-future timers at a high rate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use slab::Slab;

/// Names one scheduled timer of a [`TimerQueue`]; stale once it fired or was
/// cancelled, even if its slot is reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct TimerKey {
    slot: u32,
    seq: u32,
}

impl TimerKey {
    /// A key no timer has until 2^32 timers were inserted; a placeholder.
    pub(crate) const NULL: TimerKey = TimerKey {
        slot: u32::MAX,
        seq: u32::MAX,
    };

    /// The key as one integer, for public ids.
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.slot) << 32) | u64::from(self.seq)
    }

    pub(crate) fn from_bits(bits: u64) -> Self {
        TimerKey {
            slot: (bits >> 32) as u32,
            seq: bits as u32,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Node {
    deadline: u64,
    seq: u32,
    slot: u32,
}

#[derive(Debug)]
struct Entry<T> {
    seq: u32,
    value: T,
}

/// Timers ordered by deadline, then by insertion order.
#[derive(Debug)]
pub(crate) struct TimerQueue<T> {
    heap: BinaryHeap<Reverse<Node>>,
    entries: Slab<Entry<T>>,
    next_seq: u32,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerQueue<T> {
    pub(crate) fn new() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            entries: Slab::new(),
            next_seq: 0,
        }
    }

    /// Schedule `value` to expire at tick `deadline`.
    pub(crate) fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let slot = self.entries.insert(Entry { seq, value }) as u32;
        self.heap.push(Reverse(Node {
            deadline,
            seq,
            slot,
        }));
        self.compact_if_sparse();
        TimerKey { slot, seq }
    }

    /// Remove a timer that has not fired; `None` if it already fired or was
    /// cancelled.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        match self.entries.get(key.slot as usize) {
            Some(e) if e.seq == key.seq => Some(self.entries.remove(key.slot as usize).value),
            _ => None,
        }
    }

    /// The value of a scheduled timer.
    pub(crate) fn get(&self, key: TimerKey) -> Option<&T> {
        match self.entries.get(key.slot as usize) {
            Some(e) if e.seq == key.seq => Some(&e.value),
            _ => None,
        }
    }

    /// Whether `key` is still scheduled.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        matches!(self.entries.get(key.slot as usize), Some(e) if e.seq == key.seq)
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        self.prune_dead_top();
        self.heap.peek().map(|Reverse(n)| n.deadline)
    }

    /// A mark separating the timers inserted so far from later ones; see
    /// [`pop_expired_before`](TimerQueue::pop_expired_before).
    pub(crate) fn mark(&self) -> u32 {
        self.next_seq
    }

    /// Remove and return one timer whose deadline is at or before `now`.
    #[cfg(test)]
    pub(crate) fn pop_expired(&mut self, now: u64) -> Option<(TimerKey, T)> {
        self.pop_expired_before(now, None)
    }

    /// [`pop_expired`](TimerQueue::pop_expired), but only timers inserted
    /// before `mark`: a timer re-armed for `now` while expired ones are
    /// being handled waits for the next round instead of looping forever.
    pub(crate) fn pop_expired_before(
        &mut self,
        now: u64,
        mark: Option<u32>,
    ) -> Option<(TimerKey, T)> {
        self.prune_dead_top();
        let Reverse(top) = *self.heap.peek()?;
        if top.deadline > now {
            return None;
        }
        if let Some(mark) = mark {
            // Wrapping order: inserted at or after `mark`.
            if top.seq.wrapping_sub(mark) < 1 << 31 {
                return None;
            }
        }
        self.heap.pop();
        let entry = self.entries.remove(top.slot as usize);
        Some((
            TimerKey {
                slot: top.slot,
                seq: top.seq,
            },
            entry.value,
        ))
    }

    /// Number of live timers.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_live(&self, n: &Node) -> bool {
        matches!(self.entries.get(n.slot as usize), Some(e) if e.seq == n.seq)
    }

    fn prune_dead_top(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.is_live(top) {
                break;
            }
            self.heap.pop();
        }
    }

    fn compact_if_sparse(&mut self) {
        let live = self.entries.len();
        if self.heap.len() > 64 && self.heap.len() > live + live / 4 {
            let entries = &self.entries;
            self.heap.retain(
                |Reverse(n)| matches!(entries.get(n.slot as usize), Some(e) if e.seq == n.seq),
            );
        }
    }

    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut TimerQueue<&'static str>, now: u64) -> Vec<&'static str> {
        std::iter::from_fn(|| q.pop_expired(now).map(|(_, v)| v)).collect()
    }

    #[test]
    fn pops_in_deadline_order_then_insertion_order() {
        let mut q = TimerQueue::new();
        q.insert(30, "c");
        q.insert(10, "a1");
        q.insert(20, "b");
        q.insert(10, "a2");
        assert_eq!(q.next_deadline(), Some(10));
        assert_eq!(drain(&mut q, 25), vec!["a1", "a2", "b"]);
        assert_eq!(q.next_deadline(), Some(30));
        assert_eq!(drain(&mut q, 29), Vec::<&str>::new());
        assert_eq!(drain(&mut q, 30), vec!["c"]);
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn cancelled_timer_never_fires() {
        let mut q = TimerQueue::new();
        let a = q.insert(10, "a");
        q.insert(20, "b");
        assert_eq!(q.cancel(a), Some("a"));
        assert_eq!(q.cancel(a), None, "second cancel is a no-op");
        assert_eq!(q.next_deadline(), Some(20));
        assert_eq!(drain(&mut q, 100), vec!["b"]);
    }

    #[test]
    fn stale_key_cannot_cancel_a_reused_slot() {
        let mut q = TimerQueue::new();
        let a = q.insert(10, "a");
        assert_eq!(
            q.pop_expired(10).map(|(k, v)| (k == a, v)),
            Some((true, "a"))
        );
        let b = q.insert(50, "b");
        assert!(!q.contains(a));
        assert_eq!(q.cancel(a), None);
        assert!(q.contains(b));
        assert_eq!(drain(&mut q, 50), vec!["b"]);
    }

    #[test]
    fn heap_stays_proportional_to_live_timers_under_cancel_churn() {
        let mut q = TimerQueue::new();
        let keep = q.insert(1_000_000, "keep");
        for i in 0..100_000u64 {
            let k = q.insert(500_000 + i, "churn");
            q.cancel(k);
        }
        assert_eq!(q.len(), 1);
        assert!(q.heap_len() <= 130, "heap holds {} nodes", q.heap_len());
        assert!(q.contains(keep));
        assert_eq!(drain(&mut q, u64::MAX), vec!["keep"]);
    }

    #[test]
    fn timers_inserted_after_the_mark_wait_for_the_next_round() {
        let mut q = TimerQueue::new();
        q.insert(10, "old");
        let mark = q.mark();
        q.insert(10, "new");
        let mut round = Vec::new();
        while let Some((_, v)) = q.pop_expired_before(10, Some(mark)) {
            round.push(v);
        }
        assert_eq!(round, vec!["old"]);
        assert_eq!(drain(&mut q, 10), vec!["new"]);
    }

    #[test]
    fn empty_queue_has_no_deadline() {
        let mut q: TimerQueue<()> = TimerQueue::default();
        assert_eq!(q.next_deadline(), None);
        assert!(q.pop_expired(u64::MAX).is_none());
        assert_eq!(q.len(), 0);
    }
}
