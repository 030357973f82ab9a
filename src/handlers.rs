//! Where the reactor keeps its connections' handlers: boxed, one
//! allocation each, any type per connection ([`Reactor::new`]); or inline,
//! all of one type, with no allocation and no pointer per connection
//! ([`Reactor::with_inline_handlers`]).
//!
//! The table is indexed by the connection's slot and kept beside the
//! slots rather than in them, so that the reactor's core stays free of the
//! handler type: a callback borrows the core mutably (its [`Conn`]) while
//! its handler is borrowed from the table, which the core lends out for the
//! call ([`Core::call`](crate::core::Core::call)). A handler made while the
//! table is lent (a connect from inside a callback) waits in the core and
//! moves in when the table comes back.
//!
//! [`Reactor::new`]: crate::Reactor::new
//! [`Reactor::with_inline_handlers`]: crate::Reactor::with_inline_handlers
//! [`Conn`]: crate::Conn

use std::any::{type_name, Any, TypeId};

use crate::handler::Handler;

/// The handlers of a reactor's connections, by slot.
pub(crate) trait Table {
    /// Run `f` on the handler of slot `key`; `false` if there is none.
    fn with(&mut self, key: usize, f: &mut dyn FnMut(&mut dyn Handler)) -> bool;

    /// Drop the handler of slot `key`.
    fn remove(&mut self, key: usize);

    /// The one type this table holds, with its name; `None`: any type.
    fn holds(&self) -> Option<(TypeId, &'static str)>;

    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Any handler type, each in its own box.
#[derive(Default)]
pub(crate) struct Boxed(Vec<Option<Box<dyn Handler>>>);

/// Handlers of one type `H`, stored in the table itself.
pub(crate) struct Inline<H>(Vec<Option<H>>);

impl<H> Default for Inline<H> {
    fn default() -> Self {
        Inline(Vec::new())
    }
}

fn put<T>(slots: &mut Vec<Option<T>>, key: usize, value: T) {
    if key >= slots.len() {
        slots.resize_with(key + 1, || None);
    }
    slots[key] = Some(value);
}

fn take<T>(slots: &mut [Option<T>], key: usize) -> Option<T> {
    slots.get_mut(key).and_then(Option::take)
}

impl Table for Boxed {
    fn with(&mut self, key: usize, f: &mut dyn FnMut(&mut dyn Handler)) -> bool {
        match self.0.get_mut(key).and_then(Option::as_mut) {
            Some(h) => {
                f(&mut **h);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, key: usize) {
        drop(take(&mut self.0, key));
    }

    fn holds(&self) -> Option<(TypeId, &'static str)> {
        None
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl<H: Handler + 'static> Table for Inline<H> {
    fn with(&mut self, key: usize, f: &mut dyn FnMut(&mut dyn Handler)) -> bool {
        match self.0.get_mut(key).and_then(Option::as_mut) {
            Some(h) => {
                f(h);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, key: usize) {
        drop(take(&mut self.0, key));
    }

    fn holds(&self) -> Option<(TypeId, &'static str)> {
        Some((TypeId::of::<H>(), type_name::<H>()))
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A table of one type `H`, for [`Reactor::with_inline_handlers`](crate::Reactor::with_inline_handlers).
pub(crate) fn inline<H: Handler + 'static>() -> Box<dyn Table> {
    Box::new(Inline::<H>::default())
}

/// A table of any type, for [`Reactor::new`](crate::Reactor::new).
pub(crate) fn boxed() -> Box<dyn Table> {
    Box::new(Boxed::default())
}

/// A handler made while the table was lent to a callback, for slot `key`:
/// it moves in when the table comes back.
pub(crate) enum Waiting {
    /// For a table of any type: already in its box.
    Boxed(usize, Box<dyn Handler>),
    /// For a table of one type: puts itself in.
    Inline(Box<dyn FnOnce(&mut dyn Table)>),
}

impl Waiting {
    /// `handler` for slot `key` of a table holding `holds`.
    pub(crate) fn new<T: Handler + 'static>(
        holds: Option<(TypeId, &'static str)>,
        key: usize,
        handler: T,
    ) -> Self {
        match holds {
            None => Waiting::Boxed(key, Box::new(handler)),
            Some(_) => Waiting::Inline(Box::new(move |table: &mut dyn Table| {
                // The type was admitted before the slot was made.
                let placed = place(table, key, handler);
                debug_assert!(placed.is_ok());
            })),
        }
    }

    /// Move in.
    pub(crate) fn settle(self, table: &mut dyn Table) {
        match self {
            Waiting::Boxed(key, handler) => {
                if let Some(Boxed(slots)) = table.as_any_mut().downcast_mut::<Boxed>() {
                    put(slots, key, handler);
                }
            }
            Waiting::Inline(place) => place(table),
        }
    }
}

/// Put `handler` in slot `key` of `table`: inline if the table holds `T`,
/// boxed if it holds any type. `Err` gives it back if the table holds
/// another type (checked before the slot was made: see
/// [`admits`]).
pub(crate) fn place<T: Handler + 'static>(
    table: &mut dyn Table,
    key: usize,
    handler: T,
) -> Result<(), T> {
    let table = table.as_any_mut();
    if let Some(Inline(slots)) = table.downcast_mut::<Inline<T>>() {
        put(slots, key, handler);
        Ok(())
    } else if let Some(Boxed(slots)) = table.downcast_mut::<Boxed>() {
        put(slots, key, Box::new(handler));
        Ok(())
    } else {
        Err(handler)
    }
}

/// Whether handlers of type `T` may join a table holding `holds`; the
/// error names both types.
pub(crate) fn admits<T: 'static>(holds: Option<(TypeId, &'static str)>) -> Result<(), String> {
    match holds {
        Some((id, name)) if id != TypeId::of::<T>() => Err(format!(
            "this reactor keeps handlers of type {name} inline; a handler of type {} cannot join it",
            type_name::<T>()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conn;

    struct Counter(u32);

    impl Handler for Counter {
        fn handle_read(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    }

    struct Other;

    impl Handler for Other {
        fn handle_read(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    }

    fn count(table: &mut dyn Table, key: usize) -> usize {
        let mut n = 0;
        table.with(key, &mut |_| n += 1);
        n
    }

    #[test]
    fn an_inline_table_takes_its_own_type_only() {
        let mut table = inline::<Counter>();
        assert!(place(&mut *table, 3, Counter(1)).is_ok());
        assert!(place(&mut *table, 0, Other).is_err());
        assert_eq!(count(&mut *table, 3), 1);
        assert_eq!(count(&mut *table, 0), 0);
        assert_eq!(count(&mut *table, 9), 0);
        table.remove(3);
        assert_eq!(count(&mut *table, 3), 0);
        assert!(admits::<Counter>(table.holds()).is_ok());
        let refused = admits::<Other>(table.holds()).unwrap_err();
        assert!(refused.contains("Counter") && refused.contains("Other"), "{refused}");
    }

    #[test]
    fn a_boxed_table_takes_any_type() {
        let mut table = boxed();
        assert!(place(&mut *table, 0, Counter(1)).is_ok());
        assert!(place(&mut *table, 1, Other).is_ok());
        assert_eq!(count(&mut *table, 0) + count(&mut *table, 1), 2);
        assert!(admits::<Other>(table.holds()).is_ok());
    }

    #[test]
    fn an_inline_slot_costs_the_handler_alone() {
        // A handler with a niche (a Vec inside) needs no tag.
        struct Held {
            _request: Vec<u8>,
            _hold_ms: u32,
            _since: u32,
        }
        assert_eq!(std::mem::size_of::<Option<Held>>(), 32);
        assert_eq!(std::mem::size_of::<Option<Box<dyn Handler>>>(), 16);
    }
}
