//! `filter`: keep the records a predicate accepts (`filter`, `try_filter`, `par_filter`).

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt::Display;

use crate::builder::GearsBuilder;
use crate::plumbing::chain::{Chain, PerRecord, PlainFn, Then};

/// The `filter` step (see [`crate::chain`]): `op` is fallible; `filter` makes it so with an
/// error that cannot happen.
pub struct Filter<F>(F);

impl<T, E, F> PerRecord<T> for Filter<F>
where
    T: Send + 'static,
    E: Display,
    F: Fn(&T) -> Result<bool, E> + Send + Sync + 'static,
{
    type Out = T;

    fn kind(&self) -> &'static str {
        "filter"
    }

    #[inline(always)]
    fn apply<Em>(&self, x: T, _: &Cell<&'static str>, emit: &mut Em) -> Result<(), String>
    where
        Em: FnMut(T) -> Result<(), String>,
    {
        if (self.0)(&x).map_err(|e| e.to_string())? {
            emit(x)
        } else {
            Ok(())
        }
    }
}

/// The `filter` step for the plain `filter_op`.
fn plain<T: 'static>(
    filter_op: impl Fn(&T) -> bool + Send + Sync + 'static,
) -> Filter<impl for<'a> PlainFn<&'a T, bool>> {
    Filter(move |x: &T| Ok::<bool, Infallible>(filter_op(x)))
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Keeps only the records for which `filter_op` returns `true`.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|host| {
    ///     host.set("a", "1");
    ///     host.set("b", "22");
    ///     GearsBuilder::new(KeysReader::new("*"))
    ///         .filter(|r| r.string().is_some_and(|v| v.len() > 1))
    ///         .map(|r| r.key)
    /// });
    /// assert_eq!(out, ["b"]);
    /// ```
    pub fn filter<F>(
        self,
        filter_op: F,
    ) -> GearsBuilder<T, Then<C, Filter<impl for<'a> PlainFn<&'a T, bool>>>>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        self.then(plain(filter_op))
    }

    /// Like [`filter`](Self::filter) for a fallible predicate: an `Err` drops the record and
    /// becomes an error entry.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// let out = GearsBuilder::new(IterReader::new(|_| ["5", "x", "50"].map(String::from)))
    ///     .try_filter(|s| s.parse::<u32>().map(|n| n > 10))
    ///     .run(&host);
    /// assert_eq!(out.results, ["50"]);
    /// assert_eq!(out.errors.len(), 1);
    /// ```
    pub fn try_filter<E, F>(self, filter_op: F) -> GearsBuilder<T, Then<C, Filter<F>>>
    where
        E: Display,
        F: Fn(&T) -> Result<bool, E> + Send + Sync + 'static,
    {
        self.then(Filter(filter_op))
    }

    /// Like [`filter`](Self::filter), spread over rayon's thread pool; order is kept (not
    /// fused).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| 0..3000u32)).par_filter(|x| x % 1000 == 0)
    /// });
    /// assert_eq!(out, [0, 1000, 2000]);
    /// ```
    pub fn par_filter<F>(self, filter_op: F) -> GearsBuilder<T>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        self.par_then(plain(filter_op))
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn edge_cases() {
        let host = MemoryHost::new();
        let none = GearsBuilder::new(IterReader::new(|_| 0..0u8)).filter(|_| true);
        assert!(none.run(&host).results.is_empty());
        let one = GearsBuilder::new(IterReader::new(|_| [7u8])).filter(|x| *x == 7);
        assert_eq!(one.run(&host).results, [7]);
        let out = GearsBuilder::new(IterReader::new(|_| 0..10u8))
            .filter(|x| if *x == 3 { panic!("three") } else { x % 2 == 1 })
            .run(&host);
        assert_eq!(out.results, [1, 5, 7, 9]);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].step, "filter");
    }
}
