//! Where the reactor keeps its connections' handlers ([`Handlers`]):
//! boxed, one allocation each, any type per connection ([`Reactor::new`]);
//! or inline, all of one type, with no allocation and no pointer per
//! connection ([`Reactor::with_inline_handlers`]).
//!
//! The table is indexed by the connection's slot and kept beside the
//! slots rather than in them, so that the reactor's core stays free of the
//! handler type: a callback borrows the core mutably (its [`Conn`]) while
//! its handler is borrowed from the table, which the core lends out for the
//! call ([`Core::call`](crate::core::Core::call)). A handler made while the
//! table is lent (a connect from inside a callback) waits in the core
//! ([`Waiting`]) and moves in when the table comes back.
//!
//! [`Reactor::new`]: crate::Reactor::new
//! [`Reactor::with_inline_handlers`]: crate::Reactor::with_inline_handlers
//! [`Conn`]: crate::Conn

use std::any::{type_name, Any, TypeId};

use crate::handler::Handler;

/// The handlers of a reactor's connections, by slot.
pub(crate) enum Handlers {
    /// Any type, each in its own box: the default, dispatched without a
    /// second indirection.
    Boxed(Vec<Option<Box<dyn Handler>>>),
    /// One type, stored in the table ([`Inline`]), behind the one interface
    /// a table of any type offers.
    Inline(Box<dyn Table>),
}

/// A table of handlers of one type, whatever the type.
pub(crate) trait Table {
    /// The handler of slot `key`, if there is one.
    fn get(&mut self, key: usize) -> Option<&mut dyn Handler>;

    /// Drop the handler of slot `key`.
    fn remove(&mut self, key: usize);

    /// The type it holds and the type's name.
    fn holds(&self) -> (TypeId, &'static str);

    /// For [`Handlers::place`] to reach the typed table.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Handlers of one type `H`, in the table itself.
struct Inline<H>(Vec<Option<H>>);

impl<H: Handler + 'static> Table for Inline<H> {
    fn get(&mut self, key: usize) -> Option<&mut dyn Handler> {
        match self.0.get_mut(key) {
            Some(Some(h)) => Some(h),
            _ => None,
        }
    }

    fn remove(&mut self, key: usize) {
        drop(take(&mut self.0, key));
    }

    fn holds(&self) -> (TypeId, &'static str) {
        (TypeId::of::<H>(), type_name::<H>())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[inline]
fn put<T>(slots: &mut Vec<Option<T>>, key: usize, value: T) {
    if key >= slots.len() {
        slots.resize_with(key + 1, || None);
    }
    slots[key] = Some(value);
}

fn take<T>(slots: &mut [Option<T>], key: usize) -> Option<T> {
    slots.get_mut(key).and_then(Option::take)
}

impl Handlers {
    /// A table of any type, for [`Reactor::new`](crate::Reactor::new).
    pub(crate) fn boxed() -> Self {
        Handlers::Boxed(Vec::new())
    }

    /// A table of one type `H`, for
    /// [`Reactor::with_inline_handlers`](crate::Reactor::with_inline_handlers).
    pub(crate) fn inline<H: Handler + 'static>() -> Self {
        Handlers::Inline(Box::new(Inline::<H>(Vec::new())))
    }

    /// The one type this table takes, with its name; `None`: any type.
    pub(crate) fn holds(&self) -> Option<(TypeId, &'static str)> {
        match self {
            Handlers::Inline(table) => Some(table.holds()),
            Handlers::Boxed(_) => None,
        }
    }

    /// The handler of slot `key`, if there is one.
    #[inline]
    pub(crate) fn get(&mut self, key: usize) -> Option<&mut dyn Handler> {
        match self {
            Handlers::Boxed(slots) => match slots.get_mut(key) {
                Some(Some(h)) => Some(&mut **h),
                _ => None,
            },
            Handlers::Inline(table) => table.get(key),
        }
    }

    /// Drop the handler of slot `key`.
    pub(crate) fn remove(&mut self, key: usize) {
        match self {
            Handlers::Boxed(slots) => drop(take(slots, key)),
            Handlers::Inline(table) => table.remove(key),
        }
    }

    /// Put `handler` in slot `key`. `Err` if the table keeps another type
    /// inline (a type checked before the slot was made: see
    /// [`admits`]).
    #[inline]
    pub(crate) fn place<T: Handler + 'static>(&mut self, key: usize, handler: T) -> Result<(), ()> {
        match self {
            Handlers::Boxed(slots) => {
                put(slots, key, Box::new(handler));
                Ok(())
            }
            Handlers::Inline(table) => match table.as_any_mut().downcast_mut::<Inline<T>>() {
                Some(Inline(slots)) => {
                    put(slots, key, handler);
                    Ok(())
                }
                None => Err(()),
            },
        }
    }
}

/// A handler made while the table was lent to a callback, for slot `key`:
/// it moves in when the table comes back.
pub(crate) enum Waiting {
    /// For a table of any type: already in its box.
    Boxed(usize, Box<dyn Handler>),
    /// For a table of one type: puts itself in.
    Inline(Box<dyn FnOnce(&mut Handlers)>),
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
            Some(_) => Waiting::Inline(Box::new(move |table: &mut Handlers| {
                let placed = table.place(key, handler);
                debug_assert!(placed.is_ok(), "a handler type not admitted");
            })),
        }
    }

    /// Move in.
    pub(crate) fn settle(self, table: &mut Handlers) {
        match self {
            Waiting::Boxed(key, handler) => {
                if let Handlers::Boxed(slots) = table {
                    put(slots, key, handler);
                }
            }
            Waiting::Inline(place) => place(table),
        }
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

    struct Counter;

    impl Handler for Counter {
        fn handle_read(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    }

    struct Other;

    impl Handler for Other {
        fn handle_read(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    }

    #[test]
    fn an_inline_table_takes_its_own_type_only() {
        let mut table = Handlers::inline::<Counter>();
        assert!(table.place(3, Counter).is_ok());
        assert!(table.place(0, Other).is_err());
        assert!(table.get(3).is_some());
        assert!(table.get(0).is_none() && table.get(9).is_none());
        table.remove(3);
        assert!(table.get(3).is_none());
        assert!(admits::<Counter>(table.holds()).is_ok());
        let refused = admits::<Other>(table.holds()).unwrap_err();
        assert!(
            refused.contains("Counter") && refused.contains("Other"),
            "{refused}"
        );
    }

    #[test]
    fn a_boxed_table_takes_any_type() {
        let mut table = Handlers::boxed();
        assert!(table.place(0, Counter).is_ok());
        assert!(table.place(1, Other).is_ok());
        assert!(table.get(0).is_some() && table.get(1).is_some());
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
