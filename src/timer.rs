//! Pure timer queues: deadlines are plain millisecond ticks and `now` is
//! always an argument, so they are tested without a clock or sockets.
//!
//! [`TimerQueue`] takes any deadline: a binary heap orders the deadlines; a
//! slab holds the live entries. A cancelled entry leaves a dead heap node
//! behind that is skipped when it surfaces, and the heap is rebuilt when
//! dead nodes outnumber live ones, so memory stays proportional to the
//! number of live timers even when a busy server cancels far-future timers
//! at a high rate.
//!
//! [`Lanes`] takes the deadlines that are a fixed delay from `now`, as the
//! connections' timeouts are: every deadline of one delay comes in order,
//! so a FIFO per delay keeps them sorted at O(1) a push and a pop (the
//! kernel's and Netty's timer wheels rest on the same fact); the rare
//! deadline no lane can keep in order goes to a small heap beside them.
//! An entry is 16 bytes and has no key: its owner remembers the deadline
//! it armed and judges, when the entry comes out, whether it is still the
//! one ([`Lanes::abandon`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

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

    /// The deadline of the earliest timer due at `now` that was inserted
    /// before `mark`; see [`pop_expired_before`](TimerQueue::pop_expired_before).
    pub(crate) fn due_before(&mut self, now: u64, mark: u32) -> Option<u64> {
        self.prune_dead_top();
        let Reverse(top) = self.heap.peek()?;
        // Wrapping order: inserted before `mark`.
        (top.deadline <= now && top.seq.wrapping_sub(mark) >= 1 << 31).then_some(top.deadline)
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

/// How many distinct delays [`Lanes`] keeps a FIFO for; a deadline of
/// another delay goes to the overflow heap. Five timeouts of the
/// configuration and a few per-connection overrides fit.
const LANES: usize = 8;

/// Deadlines a fixed delay from `now`, one FIFO per delay, ordered by
/// construction, and a heap for the few that fit no lane. Entries cannot
/// be cancelled: the owner of a value keeps the deadline it armed, ignores
/// an entry that no longer matches it when it comes out, and calls
/// [`abandon`](Lanes::abandon) when it abandons one, which drops the
/// abandoned entries before they outnumber a quarter of the live ones.
#[derive(Debug)]
pub(crate) struct Lanes<T> {
    lanes: Vec<Lane<T>>,
    /// Deadlines of a ninth delay, or pushed behind a later one of their
    /// delay (a clock step): ordered by a heap.
    overflow: BinaryHeap<Reverse<(u64, T)>>,
    /// Entries abandoned by their owners and still queued.
    forgotten: usize,
}

#[derive(Debug)]
struct Lane<T> {
    delay: u64,
    q: VecDeque<(u64, T)>,
}

impl<T: Copy + Ord> Default for Lanes<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Ord> Lanes<T> {
    pub(crate) fn new() -> Self {
        Lanes {
            lanes: Vec::new(),
            overflow: BinaryHeap::new(),
            forgotten: 0,
        }
    }

    /// Queue `value` for tick `at`, or for `now + 1` if `at` is not in the
    /// future, so that nothing pushed while due entries are taken out is
    /// taken out in the same round. Returns the deadline queued: in the
    /// lane of its delay if that lane can keep it in order, else in the
    /// overflow heap.
    pub(crate) fn push(&mut self, now: u64, at: u64, value: T) -> u64 {
        let at = at.max(now + 1);
        if let Err(value) = self.push_lane(now, at, value) {
            self.overflow.push(Reverse((at, value)));
        }
        at
    }

    fn push_lane(&mut self, now: u64, at: u64, value: T) -> Result<(), T> {
        let delay = at - now;
        let lane = match self.lanes.iter().position(|l| l.delay == delay) {
            Some(i) => i,
            None => match self.lanes.iter().position(|l| l.q.is_empty()) {
                Some(i) => {
                    self.lanes[i].delay = delay;
                    i
                }
                None if self.lanes.len() < LANES => {
                    self.lanes.push(Lane {
                        delay,
                        q: VecDeque::new(),
                    });
                    self.lanes.len() - 1
                }
                None => return Err(value),
            },
        };
        let q = &mut self.lanes[lane].q;
        if q.back().is_some_and(|&(last, _)| last > at) {
            return Err(value);
        }
        q.push_back((at, value));
        Ok(())
    }

    /// The earliest deadline queued (possibly of an abandoned entry).
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        let heap = self.overflow.peek().map(|Reverse((at, _))| *at);
        self.lanes
            .iter()
            .filter_map(|l| l.q.front().map(|&(at, _)| at))
            .chain(heap)
            .min()
    }

    /// Remove and return one entry due at `now`, the earliest first.
    pub(crate) fn pop_expired(&mut self, now: u64) -> Option<(u64, T)> {
        let lane = self
            .lanes
            .iter_mut()
            .filter_map(|l| Some((l.q.front()?.0, l)))
            .filter(|&(at, _)| at <= now)
            .min_by_key(|&(at, _)| at);
        let heap = self
            .overflow
            .peek()
            .map(|Reverse((at, _))| *at)
            .filter(|&at| at <= now);
        if let Some((at, lane)) = lane {
            if heap.map_or(true, |h| at <= h) {
                return lane.q.pop_front();
            }
        }
        heap?;
        self.overflow.pop().map(|Reverse(e)| e)
    }

    /// An owner abandoned one queued entry (it armed another, or went
    /// away): it will ignore it when it comes out, and once abandoned
    /// entries pass a quarter of the live ones, only the entries `live`
    /// accepts are kept ([`retain`](Lanes::retain)).
    pub(crate) fn abandon(&mut self, live: impl FnMut(u64, T) -> bool) {
        self.forget();
        if self.is_sparse() {
            self.retain(live);
        }
    }

    /// Count one abandoned entry.
    fn forget(&mut self) {
        self.forgotten += 1;
    }

    /// An entry [`pop_expired`](Lanes::pop_expired) returned was an
    /// abandoned one.
    pub(crate) fn popped_forgotten(&mut self) {
        self.forgotten = self.forgotten.saturating_sub(1);
    }

    /// Whether abandoned entries passed a quarter of the live ones (and a
    /// small floor): time to [`retain`](Lanes::retain).
    fn is_sparse(&self) -> bool {
        self.forgotten > 64 && self.forgotten * 4 > self.len().saturating_sub(self.forgotten)
    }

    /// Keep only the entries `live` accepts, in order.
    fn retain(&mut self, mut live: impl FnMut(u64, T) -> bool) {
        for lane in &mut self.lanes {
            lane.q.retain(|&(at, v)| live(at, v));
            // A lane that held many more (the idle deadlines of a crowd
            // of connections that moved on to another timeout) gives the
            // memory back; a small or busy one keeps it, so that churn does
            // not make it grow and shrink again.
            if lane.q.capacity() > 4096 && lane.q.len() < lane.q.capacity() / 8 {
                lane.q.shrink_to(lane.q.len() * 2);
            }
        }
        self.overflow.retain(|&Reverse((at, v))| live(at, v));
        self.forgotten = 0;
    }

    /// Entries queued, abandoned ones included.
    pub(crate) fn len(&self) -> usize {
        self.lanes.iter().map(|l| l.q.len()).sum::<usize>() + self.overflow.len()
    }

    /// Entries in the overflow heap.
    #[cfg(test)]
    fn overflowed(&self) -> usize {
        self.overflow.len()
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

    fn drain_lanes(l: &mut Lanes<&'static str>, now: u64) -> Vec<(u64, &'static str)> {
        std::iter::from_fn(|| l.pop_expired(now)).collect()
    }

    #[test]
    fn lanes_pop_in_deadline_order_across_delays() {
        let mut l = Lanes::new();
        assert_eq!(l.push(0, 300, "idle a"), 300);
        assert_eq!(l.push(0, 60, "eof a"), 60);
        assert_eq!(l.push(10, 310, "idle b"), 310);
        assert_eq!(l.push(20, 80, "eof b"), 80);
        assert_eq!(l.overflowed(), 0);
        assert_eq!(l.next_deadline(), Some(60));
        assert_eq!(drain_lanes(&mut l, 100), vec![(60, "eof a"), (80, "eof b")]);
        assert_eq!(l.next_deadline(), Some(300));
        assert_eq!(
            drain_lanes(&mut l, 1000),
            vec![(300, "idle a"), (310, "idle b")]
        );
        assert_eq!((l.len(), l.next_deadline()), (0, None));
    }

    #[test]
    fn lanes_keep_what_no_lane_can_order_in_the_overflow_heap() {
        let mut l = Lanes::new();
        // Due now: queued for the next tick, not this round's.
        assert_eq!(l.push(5, 5, "due now"), 6);
        assert_eq!(drain_lanes(&mut l, 5), vec![]);
        assert_eq!(l.push(100, 200, "a"), 200);
        // The same delay from an earlier `now` would come out of order.
        assert_eq!(l.push(90, 190, "earlier"), 190);
        assert_eq!(l.overflowed(), 1);
        for d in 1..LANES as u64 - 1 {
            assert_eq!(l.push(100, 200 + d, "other delay"), 200 + d);
        }
        assert_eq!(l.overflowed(), 1);
        assert_eq!(l.push(100, 150, "ninth delay"), 150);
        assert_eq!(l.overflowed(), 2);
        // Lanes and heap come out as one queue, by deadline.
        let out = drain_lanes(&mut l, 201);
        let at: Vec<u64> = out.iter().map(|&(at, _)| at).collect();
        assert_eq!(at, [6, 150, 190, 200, 201]);
        // An emptied lane takes a new delay.
        assert_eq!(l.push(201, 701, "new delay"), 701);
        assert_eq!(l.overflowed(), 0);
        assert_eq!(l.len(), LANES - 2);
    }

    #[test]
    fn lanes_stay_proportional_to_live_entries_under_churn() {
        let mut l = Lanes::new();
        let mut live = std::collections::HashSet::new();
        for now in 0..100_000u64 {
            l.push(now, now + 300_000, now);
            live.insert(now);
            if now % 10 != 0 {
                // Nine in ten are abandoned at once, as a churned
                // connection abandons its idle deadline.
                live.remove(&now);
                l.abandon(|_, v| live.contains(&v));
            }
        }
        assert_eq!(live.len(), 10_000);
        assert!(l.len() <= 12_500 + 64, "{} entries queued", l.len());
        let fired: Vec<u64> = std::iter::from_fn(|| l.pop_expired(u64::MAX))
            .map(|(_, v)| v)
            .filter(|v| live.contains(v))
            .collect();
        assert_eq!(fired.len(), 10_000);
        assert!(fired.windows(2).all(|w| w[0] < w[1]), "in order");
    }
}
