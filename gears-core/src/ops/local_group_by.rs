//! `local_group_by`: group this shard's records by key, reducing each group.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::Hash;

use crate::builder::GearsBuilder;
use crate::error::StepError;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::FoldOp;

/// Groups in first-seen order.
pub(crate) struct Groups<K, A> {
    index: HashMap<K, usize>,
    entries: Vec<(K, A)>,
}

impl<K: Hash + Eq + Clone, A> Groups<K, A> {
    pub(crate) fn new() -> Self {
        Self {
            index: HashMap::new(),
            entries: Vec::new(),
        }
    }

    /// The accumulator of `key`, created with `zero` on first sight.
    pub(crate) fn entry(&mut self, key: K, zero: impl FnOnce() -> A) -> &mut (K, A) {
        let next = self.entries.len();
        let i = *self.index.entry(key.clone()).or_insert(next);
        if i == next {
            self.entries.push((key, zero()));
        }
        &mut self.entries[i]
    }

    pub(crate) fn into_entries(self) -> Vec<(K, A)> {
        self.entries
    }
}

/// Splits each input into `(key, value)` and reduces values per key.
pub(crate) struct GroupFold<A, Split, Reduce> {
    pub(crate) kind: &'static str,
    pub(crate) zero: A,
    pub(crate) split: Split,
    pub(crate) reduce: Reduce,
}

impl<I, K, V, A, Split, Reduce> FoldOp<I, (K, A)> for GroupFold<A, Split, Reduce>
where
    K: Hash + Eq + Clone + Send + 'static,
    A: Clone + Send + Sync + 'static,
    Split: Fn(I) -> (K, V) + Send + Sync + 'static,
    Reduce: Fn(&K, &mut A, V) + Send + Sync + 'static,
{
    type State = Groups<K, A>;

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn start(&self) -> Groups<K, A> {
        Groups::new()
    }

    #[inline(always)]
    fn add(
        &self,
        groups: &mut Groups<K, A>,
        item: I,
        at: &Cell<&'static str>,
    ) -> Result<(), String> {
        at.set(self.kind);
        let (key, value) = (self.split)(item);
        let (key, acc) = groups.entry(key, || self.zero.clone());
        (self.reduce)(key, acc, value);
        Ok(())
    }

    fn finish(&self, groups: Groups<K, A>, _: bool, out: &mut Vec<(K, A)>, _: &mut Vec<StepError>) {
        out.extend(groups.into_entries());
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Groups this shard's records by `key_op` and reduces each group into an accumulator that
    /// starts as a clone of `zero`; emits `(key, accumulator)` per group in first-seen order.
    /// Local: nothing crosses shards (see [`group_by`](Self::group_by) for the global one).
    /// Differs from 1.x: the accumulator starts as a clone of `zero` and is updated in place
    /// (1.x passes `None` first).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| ["ant", "bee", "ape"]))
    ///         .local_group_by(|w| w[..1].to_string(), 0usize, |_k, n, w| *n += w.len())
    /// });
    /// assert_eq!(out, [("a".to_string(), 6), ("b".to_string(), 3)]);
    /// ```
    pub fn local_group_by<K, A, KF, R>(
        self,
        key_op: KF,
        zero: A,
        reducer: R,
    ) -> GearsBuilder<(K, A)>
    where
        K: Hash + Eq + Clone + Send + 'static,
        A: Clone + Send + Sync + 'static,
        KF: Fn(&T) -> K + Send + Sync + 'static,
        R: Fn(&K, &mut A, T) + Send + Sync + 'static,
    {
        self.fold_op(GroupFold {
            kind: "local_group_by",
            zero,
            split: move |t: T| (key_op(&t), t),
            reduce: reducer,
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
        let empty = GearsBuilder::new(IterReader::new(|_| 0..0u32)).local_group_by(
            |x| x % 2,
            0u32,
            |_, a, x| *a += x,
        );
        assert!(empty.run(&host).results.is_empty());
        let out = GearsBuilder::new(IterReader::new(|_| 0..10u32))
            .local_group_by(
                |x| if *x == 4 { panic!("key") } else { x % 3 },
                Vec::new(),
                |_, a, x| a.push(x),
            )
            .run(&host);
        assert_eq!(
            out.results,
            [(0, vec![0, 3, 6, 9]), (1, vec![1, 7]), (2, vec![2, 5, 8])]
        );
        assert_eq!(out.errors.len(), 1);
    }
}
