//! `flat_map`: each record expands into zero or more records.

use std::cell::Cell;

use smallvec::SmallVec;

use crate::builder::GearsBuilder;
use crate::plumbing::chain::run_step;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::ParOp;
use crate::plumbing::pull::{StageCx, StepId};

/// The `flat_map` step of a fused chain (see [`crate::chain`]).
pub struct FlatMap<C, F> {
    prev: C,
    op: F,
    step: StepId,
}

impl<C, F, It> Chain for FlatMap<C, F>
where
    C: Chain,
    It: IntoIterator,
    It::Item: Send + 'static,
    F: Fn(C::Out) -> It + Send + Sync + 'static,
{
    type In = C::In;
    type Out = It::Item;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(It::Item) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set("flat_map");
            for y in (self.op)(x) {
                emit(y)?;
                at.set("flat_map");
            }
            Ok(())
        })
    }

    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<It::Item> {
        let input = self.prev.run_batch(batch, cx);
        run_step("flat_map", self.step, input, cx, |items, out| {
            for item in items {
                out.extend((self.op)(item));
            }
            Ok(())
        })
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
    }
}

/// The `try_flat_map` step of a fused chain.
pub struct TryFlatMap<C, F> {
    prev: C,
    op: F,
    step: StepId,
}

impl<C, F, It, E2> Chain for TryFlatMap<C, F>
where
    C: Chain,
    It: IntoIterator,
    It::Item: Send + 'static,
    E2: std::fmt::Display,
    F: Fn(C::Out) -> Result<It, E2> + Send + Sync + 'static,
{
    type In = C::In;
    type Out = It::Item;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(It::Item) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set("flat_map");
            for y in (self.op)(x).map_err(|e| e.to_string())? {
                emit(y)?;
                at.set("flat_map");
            }
            Ok(())
        })
    }

    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<It::Item> {
        let input = self.prev.run_batch(batch, cx);
        run_step("flat_map", self.step, input, cx, |items, out| {
            for item in items {
                out.extend((self.op)(item).map_err(|e| e.to_string())?);
            }
            Ok(())
        })
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
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
    pub fn flat_map<U, It, F>(self, flat_map_op: F) -> GearsBuilder<U, FlatMap<C, F>>
    where
        U: Send + 'static,
        It: IntoIterator<Item = U>,
        F: Fn(T) -> It + Send + Sync + 'static,
    {
        self.then("flat_map", |prev, step| FlatMap {
            prev,
            op: flat_map_op,
            step,
        })
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
    pub fn try_flat_map<U, It, E, F>(self, flat_map_op: F) -> GearsBuilder<U, TryFlatMap<C, F>>
    where
        U: Send + 'static,
        It: IntoIterator<Item = U>,
        E: std::fmt::Display,
        F: Fn(T) -> Result<It, E> + Send + Sync + 'static,
    {
        self.then("flat_map", |prev, step| TryFlatMap {
            prev,
            op: flat_map_op,
            step,
        })
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
