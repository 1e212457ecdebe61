//! `for_each`: a side effect per record; the record passes through unchanged (`for_each`,
//! `try_for_each`).

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt::Display;

use crate::builder::GearsBuilder;
use crate::plumbing::chain::{Chain, PerRecord, PlainFn, Then};

/// The `for_each` step (see [`crate::chain`]): `op` is fallible; `for_each` makes it so with
/// an error that cannot happen.
pub struct ForEach<F>(F);

impl<T, E, F> PerRecord<T> for ForEach<F>
where
    T: Send + 'static,
    E: Display,
    F: Fn(&T) -> Result<(), E> + Send + Sync + 'static,
{
    type Out = T;

    fn kind(&self) -> &'static str {
        "for_each"
    }

    #[inline(always)]
    fn apply<Em>(&self, x: T, _: &Cell<&'static str>, emit: &mut Em) -> Result<(), String>
    where
        Em: FnMut(T) -> Result<(), String>,
    {
        (self.0)(&x).map_err(|e| e.to_string())?;
        emit(x)
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Runs `for_each_op` on each record for its side effect (e.g. a write to Redis) and
    /// passes the record on unchanged.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// host.set("a", "1");
    /// let out = GearsBuilder::new(KeysReader::new("a"))
    ///     .for_each(|r| {
    ///         let copy = [b"copy:", r.key.as_bytes()].concat();
    ///         gears::context::call_bytes(&[b"SET", &copy, b"x"]).unwrap();
    ///     })
    ///     .map(|r| r.key)
    ///     .run(&host);
    /// assert_eq!(out.results, ["a"]);
    /// assert_eq!(host.get("copy:a").unwrap(), "x");
    /// ```
    pub fn for_each<F>(
        self,
        for_each_op: F,
    ) -> GearsBuilder<T, Then<C, ForEach<impl for<'a> PlainFn<&'a T, ()>>>>
    where
        F: Fn(&T) + Send + Sync + 'static,
    {
        self.then(ForEach(move |x: &T| {
            for_each_op(x);
            Ok::<(), Infallible>(())
        }))
    }

    /// Like [`for_each`](Self::for_each) for a fallible side effect: on `Err` the record is
    /// dropped and the error recorded.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// let out = GearsBuilder::new(IterReader::new(|_| ["PING", "NOSUCHCOMMAND"].map(String::from)))
    ///     .try_for_each(|cmd| gears::context::call(&[cmd]).map(|_| ()))
    ///     .run(&host);
    /// assert_eq!(out.results, ["PING"]);
    /// assert!(out.errors.iter().any(|e| e.message.contains("unknown command")));
    /// ```
    pub fn try_for_each<E, F>(self, for_each_op: F) -> GearsBuilder<T, Then<C, ForEach<F>>>
    where
        E: Display,
        F: Fn(&T) -> Result<(), E> + Send + Sync + 'static,
    {
        self.then(ForEach(for_each_op))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn sees_every_record_and_survives_panics() {
        let host = MemoryHost::new();
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let out = GearsBuilder::new(IterReader::new(|_| 0..100u32))
            .for_each(move |x| {
                s.fetch_add(1, Ordering::Relaxed);
                assert!(*x != 50, "fifty");
            })
            .run(&host);
        assert_eq!(seen.load(Ordering::Relaxed), 100);
        assert_eq!(out.results.len(), 99);
        assert_eq!(out.errors.len(), 1);
        let none = GearsBuilder::new(IterReader::new(|_| 0..0u32)).for_each(|_| {});
        assert!(none.run(&host).results.is_empty());
    }
}
