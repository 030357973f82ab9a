//! Ids: connections (with generations), listeners, timers; and their
//! mapping to `mio::Token`.
//!
//! A slab slot is reused as soon as its connection closes. An event already
//! collected for the old connection, or an id a handler kept, must never
//! reach the new one: every id carries the slot's generation, which is bumped
//! each time the slot is freed.

use std::fmt;

use mio::Token;

/// Identifies one connection for its whole life, and the reactor it
/// belongs to.
///
/// Ids are not reused while the reactor lives (a slot's generation wraps
/// only after 2^30 reuses): once the connection closes, looking it up
/// through an old id finds nothing, even when another connection occupies
/// the same slot. An id used with another reactor than its own finds
/// nothing either.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
    pub(crate) reactor: u32,
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConnId(r{}:{}v{})",
            self.reactor, self.index, self.generation
        )
    }
}

impl fmt::Display for ConnId {
    /// `#3.0` for slot 3, generation 0; `#3.0@2` when it belongs to reactor
    /// 2 (the first reactor of a process is 0).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)?;
        if self.reactor != 0 {
            write!(f, "@{}", self.reactor)?;
        }
        Ok(())
    }
}

impl ConnId {
    #[cfg(test)]
    pub(crate) fn new_for_test(index: u32, generation: u32) -> ConnId {
        ConnId {
            index,
            generation,
            reactor: 0,
        }
    }

    /// The reactor this connection belongs to; see
    /// [`Reactor::id`](crate::Reactor::id).
    pub fn reactor(&self) -> u32 {
        self.reactor
    }
}

/// Identifies one listening socket of a reactor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ListenerId(pub(crate) u32);

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener {}", self.0)
    }
}

/// Names a timer set with [`Conn::set_timer`](crate::Conn::set_timer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerId(pub(crate) u64);

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer {:x}", self.0)
    }
}

const KIND_SHIFT: u32 = 62;
const GEN_MASK: u64 = (1 << 30) - 1;
const KIND_CONN: u64 = 0;
const KIND_LISTENER: u64 = 1;

/// The token of the reactor's waker; never produced by [`encode_conn`].
pub(crate) const WAKER: Token = Token(usize::MAX);

/// The token of the reactor's timer descriptor; never produced by
/// [`encode_conn`].
pub(crate) const ALARM: Token = Token(usize::MAX - 1);

/// What an event's token refers to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Target {
    /// A connection's slot index and generation.
    Conn(u32, u32),
    Listener(ListenerId),
    Waker,
    Alarm,
}

pub(crate) fn encode_conn(id: ConnId) -> Token {
    let g = u64::from(id.generation) & GEN_MASK;
    Token(((KIND_CONN << KIND_SHIFT) | (g << 32) | u64::from(id.index)) as usize)
}

pub(crate) fn encode_listener(id: ListenerId) -> Token {
    Token(((KIND_LISTENER << KIND_SHIFT) | u64::from(id.0)) as usize)
}

pub(crate) fn decode(token: Token) -> Target {
    match token {
        WAKER => return Target::Waker,
        ALARM => return Target::Alarm,
        _ => {}
    }
    let raw = token.0 as u64;
    let index = raw as u32;
    match raw >> KIND_SHIFT {
        KIND_LISTENER => Target::Listener(ListenerId(index)),
        _ => Target::Conn(index, ((raw >> 32) & GEN_MASK) as u32),
    }
}

/// The generation of every slot index ever used, for one reactor.
#[derive(Debug, Default)]
pub(crate) struct Generations {
    gens: Vec<u32>,
    reactor: u32,
}

impl Generations {
    pub(crate) fn new(reactor: u32) -> Self {
        Generations {
            gens: Vec::new(),
            reactor,
        }
    }

    /// The id that a connection inserted at `index` gets.
    pub(crate) fn id_for(&mut self, index: usize) -> ConnId {
        if index >= self.gens.len() {
            self.gens.resize(index + 1, 0);
        }
        self.current(index)
    }

    /// The id of the connection in slot `index` (which must have been
    /// handed out by [`id_for`](Generations::id_for)).
    pub(crate) fn current(&self, index: usize) -> ConnId {
        self.id(index as u32, self.gens[index])
    }

    /// The id a token's slot and generation make in this reactor.
    pub(crate) fn id(&self, index: u32, generation: u32) -> ConnId {
        ConnId {
            index,
            generation,
            reactor: self.reactor,
        }
    }

    /// Whether `id` names the connection that currently holds its slot in
    /// this reactor.
    pub(crate) fn is_current(&self, id: ConnId) -> bool {
        id.reactor == self.reactor && self.gens.get(id.index as usize) == Some(&id.generation)
    }

    /// Retire the generation of a freed slot.
    pub(crate) fn retire(&mut self, index: usize) {
        let g = &mut self.gens[index];
        *g = (*g + 1) & GEN_MASK as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_token_round_trips() {
        for (index, generation) in [(0, 0), (1, 7), (u32::MAX - 1, GEN_MASK as u32)] {
            let id = ConnId::new_for_test(index, generation);
            assert_eq!(decode(encode_conn(id)), Target::Conn(index, generation));
        }
    }

    #[test]
    fn listener_waker_and_alarm_tokens_are_distinct_from_conns() {
        let l = ListenerId(3);
        assert_eq!(decode(encode_listener(l)), Target::Listener(l));
        assert_eq!(decode(WAKER), Target::Waker);
        assert_eq!(decode(ALARM), Target::Alarm);
        let c = ConnId::new_for_test(3, 0);
        assert_ne!(encode_conn(c), encode_listener(l));
    }

    #[test]
    fn an_id_of_another_reactor_is_never_current() {
        let mut mine = Generations::new(1);
        let theirs = Generations::new(2);
        let id = mine.id_for(0);
        assert!(mine.is_current(id));
        let foreign = theirs.id(0, 0);
        assert!(
            !mine.is_current(foreign),
            "same slot and generation, other reactor"
        );
    }

    #[test]
    fn retired_slot_makes_old_id_stale() {
        let mut g = Generations::default();
        let old = g.id_for(5);
        assert!(g.is_current(old));
        g.retire(5);
        let new = g.id_for(5);
        assert_ne!(old, new);
        assert!(!g.is_current(old));
        assert!(g.is_current(new));
    }

    #[test]
    fn generation_wraps_within_token_bits() {
        let mut g = Generations::default();
        g.id_for(0);
        g.gens[0] = GEN_MASK as u32;
        g.retire(0);
        let id = g.id_for(0);
        assert_eq!(id.generation, 0);
        assert_eq!(
            decode(encode_conn(id)),
            Target::Conn(id.index, id.generation)
        );
    }
}
