//! `accumulate`: fold all of a shard's records into one value.

use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::FoldOp;
use std::cell::Cell;

struct Accumulate<A, F> {
    zero: A,
    op: F,
}

impl<T, A, F> FoldOp<T, A> for Accumulate<A, F>
where
    A: Clone + Send + Sync + 'static,
    F: Fn(&mut A, T) + Send + Sync + 'static,
{
    fn kind(&self) -> &'static str {
        "accumulate"
    }
    type State = Option<A>;

    fn start(&self) -> Option<A> {
        None
    }

    #[inline(always)]
    fn add(&self, acc: &mut Option<A>, item: T, at: &Cell<&'static str>) -> Result<(), String> {
        at.set("accumulate");
        (self.op)(acc.get_or_insert_with(|| self.zero.clone()), item);
        Ok(())
    }

    fn finish(&self, acc: Option<A>, _: bool, out: &mut Vec<A>, _: &mut Vec<StepError>) {
        out.extend(acc);
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Folds every record of the shard into one accumulator and emits it once the input is
    /// exhausted; emits nothing if there was no input (as 1.x).
    ///
    /// 1.x passes `None` to the first call; here the accumulator starts as a clone of `zero`
    /// and `accumulate_op` updates it in place, so a failing record never loses what was
    /// accumulated before it.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| 1..=4u64)).accumulate(0u64, |sum, x| *sum += x)
    /// });
    /// assert_eq!(out, [10]);
    /// ```
    pub fn accumulate<A, F>(self, zero: A, accumulate_op: F) -> GearsBuilder<A>
    where
        A: Clone + Send + Sync + 'static,
        F: Fn(&mut A, T) + Send + Sync + 'static,
    {
        self.fold_op(Accumulate {
            zero,
            op: accumulate_op,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn edge_cases() {
        let host = MemoryHost::new();
        let empty =
            GearsBuilder::new(IterReader::new(|_| 0..0u64)).accumulate(0u64, |a, x| *a += x);
        assert!(empty.run(&host).results.is_empty());
        let one = GearsBuilder::new(IterReader::new(|_| [5u64])).accumulate(1u64, |a, x| *a *= x);
        assert_eq!(one.run(&host).results, [5]);
        let out = GearsBuilder::new(IterReader::new(|_| 1..=5u64))
            .accumulate(0u64, |a, x| {
                assert!(x != 3, "three");
                *a += x
            })
            .run(&host);
        assert_eq!(
            out.results,
            [12],
            "the failing record is skipped, the sum kept"
        );
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].step, "accumulate");
    }
}
