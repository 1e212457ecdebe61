//! `map`: one record in, one record out (`map`, `try_map`, `par_map`).

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt::Display;

use crate::builder::GearsBuilder;
use crate::plumbing::chain::{Chain, PerRecord, PlainFn, Then};

/// The `map` step (see [`crate::chain`]): `op` is fallible; `map` makes it so with an error
/// that cannot happen.
pub struct Map<F> {
    op: F,
    kind: &'static str,
}

impl<I, U, E, F> PerRecord<I> for Map<F>
where
    U: Send + 'static,
    E: Display,
    F: Fn(I) -> Result<U, E> + Send + Sync + 'static,
{
    type Out = U;

    fn kind(&self) -> &'static str {
        self.kind
    }

    #[inline(always)]
    fn apply<Em>(&self, x: I, _: &Cell<&'static str>, emit: &mut Em) -> Result<(), String>
    where
        Em: FnMut(U) -> Result<(), String>,
    {
        emit((self.op)(x).map_err(|e| e.to_string())?)
    }
}

/// The `map` step called `kind` for the plain `map_op`.
pub(crate) fn plain<I, U, F>(kind: &'static str, map_op: F) -> Map<impl PlainFn<I, U>>
where
    I: 'static,
    U: Send + 'static,
    F: Fn(I) -> U + Send + Sync + 'static,
{
    let op = move |x| Ok::<U, Infallible>(map_op(x));
    Map { op, kind }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Transforms each record into exactly one new record.
    ///
    /// Fused with the neighbouring per-record steps into one loop. A panic in `map_op` becomes
    /// an error entry; the record is dropped, the run goes on.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| 1..=3u64)).map(|x| x * 10)
    /// });
    /// assert_eq!(out, [10, 20, 30]);
    /// ```
    pub fn map<U, F>(self, map_op: F) -> GearsBuilder<U, Then<C, Map<impl PlainFn<T, U>>>>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.then(plain("map", map_op))
    }

    /// Like [`map`](Self::map) for a fallible `map_op`: an `Err` becomes an error entry
    /// (`map: <message>`) and the record is dropped.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// let out = GearsBuilder::new(IterReader::new(|_| ["1", "x", "3"].map(String::from)))
    ///     .try_map(|s| s.parse::<u32>())
    ///     .run(&host);
    /// assert_eq!(out.results, [1, 3]);
    /// assert_eq!(out.errors.len(), 1);
    /// assert_eq!(out.errors[0].step, "map");
    /// ```
    pub fn try_map<U, E, F>(self, map_op: F) -> GearsBuilder<U, Then<C, Map<F>>>
    where
        U: Send + 'static,
        E: Display,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        self.then(Map {
            op: map_op,
            kind: "map",
        })
    }

    /// Like [`map`](Self::map), but each batch is spread over rayon's thread pool; record
    /// order is kept. Worth it when `map_op` is expensive (it is not fused).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| 0..5000u64)).par_map(|x| x * 2)
    /// });
    /// assert_eq!(out, (0..5000u64).map(|x| x * 2).collect::<Vec<_>>());
    /// ```
    pub fn par_map<U, F>(self, map_op: F) -> GearsBuilder<U>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.par_then(plain("map", map_op))
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    fn nums(n: u64) -> GearsBuilder<u64> {
        GearsBuilder::new(IterReader::new(move |_| 0..n))
    }

    #[test]
    fn empty_and_one() {
        let host = MemoryHost::new();
        assert!(nums(0).map(|x| x + 1).run(&host).results.is_empty());
        assert_eq!(nums(1).map(|x| x + 1).run(&host).results, [1]);
    }

    #[test]
    fn try_map_err_is_an_error_entry() {
        let host = MemoryHost::new();
        let out = nums(4)
            .try_map(|x| if x == 2 { Err("two") } else { Ok(x) })
            .run(&host);
        assert_eq!(out.results, [0, 1, 3]);
        assert_eq!(out.errors, [StepError::new("map", "two")]);
    }
}
