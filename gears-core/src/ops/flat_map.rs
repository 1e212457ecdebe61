//! `flat_map`: each record expands into zero or more records (`flat_map`, `try_flat_map`,
//! `par_flat_map`).

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt::Display;

use crate::builder::GearsBuilder;
use crate::plumbing::chain::{Chain, PerRecord, PlainFn, Then};

/// The `flat_map` step (see [`crate::chain`]): `op` is fallible; `flat_map` makes it so with
/// an error that cannot happen.
pub struct FlatMap<F>(F);

impl<I, It, E, F> PerRecord<I> for FlatMap<F>
where
    It: IntoIterator,
    It::Item: Send + 'static,
    E: Display,
    F: Fn(I) -> Result<It, E> + Send + Sync + 'static,
{
    type Out = It::Item;

    fn kind(&self) -> &'static str {
        "flat_map"
    }

    #[inline(always)]
    fn apply<Em>(&self, x: I, at: &Cell<&'static str>, emit: &mut Em) -> Result<(), String>
    where
        Em: FnMut(It::Item) -> Result<(), String>,
    {
        for y in (self.0)(x).map_err(|e| e.to_string())? {
            emit(y)?;
            at.set("flat_map");
        }
        Ok(())
    }
}

/// The `flat_map` step for the plain `flat_map_op`.
fn plain<I: 'static, It: IntoIterator>(
    flat_map_op: impl Fn(I) -> It + Send + Sync + 'static,
) -> FlatMap<impl PlainFn<I, It>> {
    FlatMap(move |x| Ok::<It, Infallible>(flat_map_op(x)))
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Expands each record into any number of records (everything `flat_map_op` returns that
    /// is iterable is expanded; 1.x only expanded Python lists).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| ["a b", "", "c"]))
    ///         .flat_map(|s| s.split_whitespace().map(String::from).collect::<Vec<_>>())
    /// });
    /// assert_eq!(out, ["a", "b", "c"]);
    /// ```
    pub fn flat_map<U, It, F>(
        self,
        flat_map_op: F,
    ) -> GearsBuilder<U, Then<C, FlatMap<impl PlainFn<T, It>>>>
    where
        U: Send + 'static,
        It: IntoIterator<Item = U>,
        F: Fn(T) -> It + Send + Sync + 'static,
    {
        self.then(plain(flat_map_op))
    }

    /// Like [`flat_map`](Self::flat_map) for a fallible `flat_map_op`.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// let out = GearsBuilder::new(IterReader::new(|_| [2u8, 0, 1]))
    ///     .try_flat_map(|n| if n == 0 { Err("zero") } else { Ok(vec![n; n as usize]) })
    ///     .run(&host);
    /// assert_eq!(out.results, [2, 2, 1]);
    /// assert_eq!(out.errors[0].to_string(), "flat_map: zero");
    /// ```
    pub fn try_flat_map<U, It, E, F>(self, flat_map_op: F) -> GearsBuilder<U, Then<C, FlatMap<F>>>
    where
        U: Send + 'static,
        It: IntoIterator<Item = U>,
        E: Display,
        F: Fn(T) -> Result<It, E> + Send + Sync + 'static,
    {
        self.then(FlatMap(flat_map_op))
    }

    /// Like [`flat_map`](Self::flat_map), spread over rayon's thread pool; order is kept (not
    /// fused).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| 0..3u8)).par_flat_map(|n| vec![n; 2])
    /// });
    /// assert_eq!(out, [0, 0, 1, 1, 2, 2]);
    /// ```
    pub fn par_flat_map<U, It, F>(self, flat_map_op: F) -> GearsBuilder<U>
    where
        U: Send + 'static,
        It: IntoIterator<Item = U>,
        F: Fn(T) -> It + Send + Sync + 'static,
    {
        self.par_then(plain(flat_map_op))
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn edge_cases() {
        let host = MemoryHost::new();
        let empty = GearsBuilder::new(IterReader::new(|_| 0..0u8)).flat_map(|n| vec![n]);
        assert!(empty.run(&host).results.is_empty());
        let out = GearsBuilder::new(IterReader::new(|_| 0..4u8))
            .flat_map(|n| {
                assert!(n != 2, "no twos");
                vec![n; n as usize]
            })
            .run(&host);
        assert_eq!(out.results, [1, 3, 3, 3]);
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0].message.contains("no twos"));
    }
}
