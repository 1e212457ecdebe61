//! `flat_map`: each record expands into zero or more records.

use std::sync::Arc;

use smallvec::SmallVec;

use super::{BatchOp, ParOp};
use crate::builder::GearsBuilder;

struct FlatMap<F>(Arc<F>);

impl<I, It, F> BatchOp<I, It::Item> for FlatMap<F>
where
    F: Fn(I) -> It + Send + Sync + 'static,
    It: IntoIterator,
{
    const KIND: &'static str = "flat_map";
    fn apply(
        &self,
        items: &mut std::vec::Drain<'_, I>,
        out: &mut Vec<It::Item>,
    ) -> Result<(), String> {
        for item in items {
            out.extend((self.0)(item));
        }
        Ok(())
    }
}

struct TryFlatMap<F>(Arc<F>);

impl<I, It, E, F> BatchOp<I, It::Item> for TryFlatMap<F>
where
    F: Fn(I) -> Result<It, E> + Send + Sync + 'static,
    It: IntoIterator,
    E: std::fmt::Display,
{
    const KIND: &'static str = "flat_map";
    fn apply(
        &self,
        items: &mut std::vec::Drain<'_, I>,
        out: &mut Vec<It::Item>,
    ) -> Result<(), String> {
        for item in items {
            out.extend((self.0)(item).map_err(|e| e.to_string())?);
        }
        Ok(())
    }
}

struct ParFlatMap<F>(F);

impl<I, It, F> ParOp<I, It::Item> for ParFlatMap<F>
where
    F: Fn(I) -> It + Send + Sync + 'static,
    It: IntoIterator,
{
    const KIND: &'static str = "flat_map";
    fn call(&self, item: I, out: &mut SmallVec<[It::Item; 1]>) -> Result<(), String> {
        out.extend((self.0)(item));
        Ok(())
    }
}

impl<T: Send + 'static> GearsBuilder<T> {
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
    pub fn flat_map<U, It, F>(self, flat_map_op: F) -> GearsBuilder<U>
    where
        U: Send + 'static,
        It: IntoIterator<Item = U>,
        F: Fn(T) -> It + Send + Sync + 'static,
    {
        let op = Arc::new(flat_map_op);
        self.batch_op(move || FlatMap(op.clone()))
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
    pub fn try_flat_map<U, It, E, F>(self, flat_map_op: F) -> GearsBuilder<U>
    where
        U: Send + 'static,
        It: IntoIterator<Item = U>,
        E: std::fmt::Display,
        F: Fn(T) -> Result<It, E> + Send + Sync + 'static,
    {
        let op = Arc::new(flat_map_op);
        self.batch_op(move || TryFlatMap(op.clone()))
    }

    /// Like [`flat_map`](Self::flat_map), spread over rayon's thread pool; order is kept.
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
        self.par_op(ParFlatMap(flat_map_op))
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
