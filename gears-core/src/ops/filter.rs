//! `filter`: keep the records a predicate accepts.

use std::cell::Cell;

use smallvec::SmallVec;

use crate::builder::GearsBuilder;
use crate::plumbing::chain::run_step;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::ParOp;
use crate::plumbing::pull::{StageCx, StepId};

/// The `filter` step of a fused chain (see [`crate::chain`]).
pub struct Filter<C, F> {
    prev: C,
    op: F,
    step: StepId,
}

impl<C, F> Chain for Filter<C, F>
where
    C: Chain,
    F: Fn(&C::Out) -> bool + Send + Sync + 'static,
{
    type In = C::In;
    type Out = C::Out;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(C::Out) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set("filter");
            if (self.op)(&x) {
                emit(x)
            } else {
                Ok(())
            }
        })
    }

    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<C::Out> {
        let input = self.prev.run_batch(batch, cx);
        run_step("filter", self.step, input, cx, |items, out| {
            out.extend(items.filter(|x| (self.op)(x)));
            Ok(())
        })
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
    }
}

/// The `try_filter` step of a fused chain.
pub struct TryFilter<C, F> {
    prev: C,
    op: F,
    step: StepId,
}

impl<C, F, E2> Chain for TryFilter<C, F>
where
    C: Chain,
    E2: std::fmt::Display,
    F: Fn(&C::Out) -> Result<bool, E2> + Send + Sync + 'static,
{
    type In = C::In;
    type Out = C::Out;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(C::Out) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set("filter");
            if (self.op)(&x).map_err(|e| e.to_string())? {
                emit(x)
            } else {
                Ok(())
            }
        })
    }

    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<C::Out> {
        let input = self.prev.run_batch(batch, cx);
        run_step("filter", self.step, input, cx, |items, out| {
            for item in items {
                if (self.op)(&item).map_err(|e| e.to_string())? {
                    out.push(item);
                }
            }
            Ok(())
        })
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
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
    pub fn filter<F>(self, filter_op: F) -> GearsBuilder<T, Filter<C, F>>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        self.then("filter", |prev, step| Filter {
            prev,
            op: filter_op,
            step,
        })
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
    pub fn try_filter<E, F>(self, filter_op: F) -> GearsBuilder<T, TryFilter<C, F>>
    where
        E: std::fmt::Display,
        F: Fn(&T) -> Result<bool, E> + Send + Sync + 'static,
    {
        self.then("filter", |prev, step| TryFilter {
            prev,
            op: filter_op,
            step,
        })
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
