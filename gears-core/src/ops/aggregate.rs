//! `aggregate`: fold locally, ship the partial results, combine them on the initiator.

use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::FoldOp;
use crate::record::Record;
use std::cell::Cell;

/// Combines partial accumulators on the initiator; always emits exactly one value there.
pub(crate) struct Combine<A, C> {
    pub(crate) kind: &'static str,
    pub(crate) zero: A,
    pub(crate) comb: C,
}

impl<A, C> FoldOp<A, A> for Combine<A, C>
where
    A: Clone + Send + Sync + 'static,
    C: Fn(&mut A, A) + Send + Sync + 'static,
{
    type State = A;

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn start(&self) -> A {
        self.zero.clone()
    }

    #[inline(always)]
    fn add(&self, acc: &mut A, partial: A, at: &Cell<&'static str>) -> Result<(), String> {
        at.set(self.kind);
        (self.comb)(acc, partial);
        Ok(())
    }

    fn finish(&self, acc: A, initiator: bool, out: &mut Vec<A>, _: &mut Vec<StepError>) {
        if initiator {
            out.push(acc);
        }
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Aggregates all records of all shards into one value: each shard folds its records with
    /// `seq_op` into a clone of `zero`, only those partial results cross shards, and the
    /// initiator merges them with `comb_op`.
    ///
    /// Differs from 1.x on empty input: the result is `zero` (1.x returns no record).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let cluster = gears::testing::MemoryCluster::new(3);
    /// let out = cluster.run(
    ///     GearsBuilder::new(IterReader::new(|_| 1..=10u64))
    ///         .aggregate(0u64, |max, x| *max = (*max).max(x), |max, other| *max = (*max).max(other)),
    /// );
    /// assert_eq!(out.results, [10]);
    /// ```
    pub fn aggregate<A, S, M>(self, zero: A, seq_op: S, comb_op: M) -> GearsBuilder<A>
    where
        A: Record + Clone + Sync,
        S: Fn(&mut A, T) + Send + Sync + 'static,
        M: Fn(&mut A, A) + Send + Sync + 'static,
    {
        self.accumulate(zero.clone(), seq_op)
            .collect()
            .fold_op(Combine {
                kind: "aggregate",
                zero,
                comb: comb_op,
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{MemoryCluster, MemoryHost};

    #[test]
    fn empty_gives_zero_and_panics_are_errors() {
        let host = MemoryHost::new();
        let flow = || {
            GearsBuilder::new(IterReader::new(|_| 0..0u64)).aggregate(
                7u64,
                |a, x| *a += x,
                |a, b| *a += b,
            )
        };
        assert_eq!(flow().run(&host).results, [7]);
        assert_eq!(MemoryCluster::new(3).run(flow()).results, [7]);
        let out =
            MemoryCluster::new(2).run(GearsBuilder::new(IterReader::new(|_| 1..=3u64)).aggregate(
                0u64,
                |a, x| {
                    assert!(x != 2, "two");
                    *a += x
                },
                |a, b| *a += b,
            ));
        assert_eq!(out.results, [8]);
        assert_eq!(out.errors.len(), 2);
    }
}
