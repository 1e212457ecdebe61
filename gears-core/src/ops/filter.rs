//! `filter`: keep the records a predicate accepts.

use std::sync::Arc;

use smallvec::SmallVec;

use super::{BatchOp, ParOp};
use crate::builder::GearsBuilder;

struct Filter<F>(Arc<F>);

impl<T, F> BatchOp<T, T> for Filter<F>
where
    F: Fn(&T) -> bool + Send + Sync + 'static,
{
    const KIND: &'static str = "filter";
    fn apply(&self, items: &mut std::vec::Drain<'_, T>, out: &mut Vec<T>) -> Result<(), String> {
        out.extend(items.filter(|x| (self.0)(x)));
        Ok(())
    }
}

struct TryFilter<F>(Arc<F>);

impl<T, E, F> BatchOp<T, T> for TryFilter<F>
where
    F: Fn(&T) -> Result<bool, E> + Send + Sync + 'static,
    E: std::fmt::Display,
{
    const KIND: &'static str = "filter";
    fn apply(&self, items: &mut std::vec::Drain<'_, T>, out: &mut Vec<T>) -> Result<(), String> {
        for item in items {
            if (self.0)(&item).map_err(|e| e.to_string())? {
                out.push(item);
            }
        }
        Ok(())
    }
}

struct ParFilter<F>(F);

impl<T, F> ParOp<T, T> for ParFilter<F>
where
    F: Fn(&T) -> bool + Send + Sync + 'static,
{
    const KIND: &'static str = "filter";
    fn call(&self, item: T, out: &mut SmallVec<[T; 1]>) -> Result<(), String> {
        if (self.0)(&item) {
            out.push(item);
        }
        Ok(())
    }
}

impl<T: Send + 'static> GearsBuilder<T> {
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
    pub fn filter<F>(self, filter_op: F) -> GearsBuilder<T>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        let op = Arc::new(filter_op);
        self.batch_op(move || Filter(op.clone()))
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
    pub fn try_filter<E, F>(self, filter_op: F) -> GearsBuilder<T>
    where
        E: std::fmt::Display,
        F: Fn(&T) -> Result<bool, E> + Send + Sync + 'static,
    {
        let op = Arc::new(filter_op);
        self.batch_op(move || TryFilter(op.clone()))
    }

    /// Like [`filter`](Self::filter), spread over rayon's thread pool; order is kept.
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
        self.par_op(ParFilter(filter_op))
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
