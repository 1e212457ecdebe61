//! Fusion of per-record steps.
//!
//! Consecutive `map`, `filter`, `flat_map` and `for_each` steps are not separate nodes: they
//! are composed, at compile time, into one [`Chain`] (the second type parameter of
//! [`GearsBuilder`](crate::GearsBuilder), like an iterator adapter): each step appends a
//! [`Then`], the chain so far followed by the operator's [`PerRecord`] step. The step that
//! consumes the chain — a fold such as `count`, an exchange, or the end of the flow — runs it
//! as **one loop per record**, so `map → filter → count` compiles to the same kind of loop as
//! the hand-written iterator chain. With profiling on, the chain runs step by step over each batch
//! instead, so every step gets its own duration and record count; without it, counts are kept
//! where records materialize (the reader, folds, exchanges, the chain's output when it feeds
//! a node), not for each step inside the fused loop.

use std::any::Any;
use std::cell::Cell;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;

use super::pull::{guarded, guarded_fused, Node, Pull, StageCx, StageInput, StepId};
use crate::error::GearsError;

/// A run of fused per-record steps from `In` records to `Out` records.
///
/// Implemented by [`Identity`] (no step) and by [`Then`] (a chain and one more step); flow
/// authors never implement it.
pub trait Chain: Send + Sync + 'static {
    /// Records entering the chain.
    type In: Send + 'static;
    /// Records leaving the chain.
    type Out: Send + 'static;

    /// Pushes one record through the chain; `emit` receives each record that comes out.
    /// Before running user code a step stores its name in `at`, so a panic can be attributed.
    #[doc(hidden)]
    fn feed<E>(
        &self,
        record: Self::In,
        at: &Cell<&'static str>,
        emit: &mut E,
    ) -> Result<(), String>
    where
        E: FnMut(Self::Out) -> Result<(), String>;

    /// Runs the chain step by step over a batch, booking each step's time and output.
    #[doc(hidden)]
    fn run_batch(&self, batch: Vec<Self::In>, cx: &mut StageCx<'_>) -> Vec<Self::Out>;

    /// The plan index of the chain's last step (`None` for the empty chain).
    #[doc(hidden)]
    fn last_step(&self) -> Option<StepId>;
}

/// The empty chain: records pass unchanged.
pub struct Identity<T>(PhantomData<fn(T) -> T>);

impl<T> Identity<T> {
    pub(crate) fn new() -> Self {
        Identity(PhantomData)
    }
}

impl<T> std::fmt::Debug for Identity<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity")
    }
}

impl<T: Send + 'static> Chain for Identity<T> {
    type In = T;
    type Out = T;

    #[inline(always)]
    fn feed<E>(&self, record: T, _: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(T) -> Result<(), String>,
    {
        emit(record)
    }

    fn run_batch(&self, batch: Vec<T>, _: &mut StageCx<'_>) -> Vec<T> {
        batch
    }

    fn last_step(&self) -> Option<StepId> {
        None
    }
}

/// A per-record step: what it does with one record (`map`, `filter`, `flat_map`,
/// `for_each`). The plain and `try_` forms of an operator are one step type: the plain one
/// fails with an error that cannot happen ([`std::convert::Infallible`]).
pub trait PerRecord<I>: Send + Sync + 'static {
    /// Records leaving the step.
    type Out: Send + 'static;

    /// The step's name, as listed and blamed in errors.
    fn kind(&self) -> &'static str;

    /// Hands what `record` becomes to `emit` (zero, one or more records); an `Err` drops the
    /// record. `at` holds the step's name; a step that emits several records sets it again
    /// after each, since the steps behind it set theirs.
    fn apply<E>(&self, record: I, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(Self::Out) -> Result<(), String>;
}

/// The function of a plain (infallible) per-record step once made fallible with an error
/// that cannot happen: what the closure of `map`, `filter`, `flat_map` or `for_each` becomes.
pub trait PlainFn<I, O>: Fn(I) -> Result<O, Infallible> + Send + Sync + 'static {}

impl<I, O, F> PlainFn<I, O> for F where F: Fn(I) -> Result<O, Infallible> + Send + Sync + 'static {}

/// The chain `C` followed by the per-record step `S`: a fused chain one step longer.
pub struct Then<C, S> {
    pub(crate) prev: C,
    pub(crate) op: S,
    pub(crate) step: StepId,
}

impl<C: Chain, S: PerRecord<C::Out>> Chain for Then<C, S> {
    type In = C::In;
    type Out = S::Out;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(S::Out) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set(self.op.kind());
            self.op.apply(x, at, emit)
        })
    }

    /// One step of a profiled (unfused) run over a whole batch: times the step, books its
    /// output, and turns `Err`s and panics into error entries.
    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<S::Out> {
        let input = self.prev.run_batch(batch, cx);
        let kind = self.op.kind();
        let clock = cx.clock();
        let mut out = Vec::with_capacity(input.len());
        let at = Cell::new(kind);
        guarded(kind, cx.errors, &mut input.into_iter(), |items| {
            for item in items {
                self.op.apply(item, &at, &mut |y| {
                    out.push(y);
                    Ok(())
                })?;
            }
            Ok(())
        });
        cx.book(self.step, out.len(), clock);
        out
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
    }
}

/// Whether `C` is the empty chain (then sealing it adds no node).
fn is_identity<C: Chain>() -> bool {
    std::any::TypeId::of::<C>() == std::any::TypeId::of::<Identity<C::In>>()
}

/// Puts `chain` behind `prev` as one node.
pub(crate) fn seal<C: Chain>(chain: C, prev: Arc<dyn Node<C::In>>) -> Arc<dyn Node<C::Out>> {
    if is_identity::<C>() {
        let boxed: Box<dyn Any> = Box::new(prev);
        if let Ok(same) = boxed.downcast::<Arc<dyn Node<C::Out>>>() {
            return *same;
        }
        unreachable!("the identity chain has the same input and output type");
    }
    Arc::new(FusedNode {
        prev,
        chain: Arc::new(chain),
    })
}

/// Runs `chain` over the records `prev` yields, handing each output record to `sink`: the
/// fused loop shared by chain nodes, folds and exchanges.
///
/// With profiling on, the chain runs step by step ([`Chain::run_batch`]) and the sink's time
/// is booked on `sink_step`.
///
/// Inlined into its callers so a fold's state (a counter, an accumulator) can live in a
/// register: out of line, `count()` after a `filter` stored the counter per record behind a
/// 50%-mispredicted branch (5× slower on random input).
#[inline(always)]
pub(crate) fn drive_chain<C: Chain>(
    chain: &C,
    batch: &mut Vec<C::In>,
    cx: &mut StageCx<'_>,
    sink_step: Option<StepId>,
    mut sink: impl FnMut(C::Out, &Cell<&'static str>) -> Result<(), String>,
) {
    if cx.profile {
        let mut items = chain.run_batch(std::mem::take(batch), cx).into_iter();
        let clock = cx.clock();
        let at = Cell::new("");
        guarded_fused(cx.errors, &mut items, &at, |items, at| {
            for item in items {
                sink(item, at)?;
            }
            Ok(())
        });
        if let Some(step) = sink_step {
            cx.book(step, 0, clock);
        }
    } else {
        let at = Cell::new("");
        guarded_fused(cx.errors, &mut batch.drain(..), &at, |items, at| {
            for item in items {
                chain.feed(item, at, &mut |out| sink(out, at))?;
            }
            Ok(())
        });
    }
}

/// [`drive_chain`] for one record (an event's, on the per-event path): no batch to allocate.
#[inline(always)]
pub(crate) fn drive_one<C: Chain>(
    chain: &C,
    record: C::In,
    cx: &mut StageCx<'_>,
    mut sink: impl FnMut(C::Out, &Cell<&'static str>) -> Result<(), String>,
) {
    let at = Cell::new("");
    guarded_fused(cx.errors, &mut std::iter::once(record), &at, |items, at| {
        for item in items {
            chain.feed(item, at, &mut |out| sink(out, at))?;
        }
        Ok(())
    });
}

struct FusedNode<C: Chain> {
    prev: Arc<dyn Node<C::In>>,
    chain: Arc<C>,
}

struct FusedPull<C: Chain> {
    prev: Box<dyn Pull<C::In>>,
    chain: Arc<C>,
    buf: Vec<C::In>,
}

impl<C: Chain> Node<C::Out> for FusedNode<C> {
    fn open(&self, input: &mut StageInput) -> Result<Box<dyn Pull<C::Out>>, GearsError> {
        Ok(Box::new(FusedPull {
            prev: self.prev.open(input)?,
            chain: self.chain.clone(),
            buf: Vec::new(),
        }))
    }
}

impl<C: Chain> Pull<C::Out> for FusedPull<C> {
    fn pull(&mut self, cx: &mut StageCx<'_>, out: &mut Vec<C::Out>) -> Result<bool, GearsError> {
        let more = self.prev.pull(cx, &mut self.buf)?;
        let before = out.len();
        drive_chain(&*self.chain, &mut self.buf, cx, None, |record, _| {
            out.push(record);
            Ok(())
        });
        if !cx.profile {
            // Profiled runs book every step in `run_batch`; fused runs book the chain's output.
            if let Some(step) = self.chain.last_step() {
                cx.book(step, out.len() - before, None);
            }
        }
        Ok(more)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn a_panic_in_a_fused_step_drops_only_that_record() {
        let host = MemoryHost::new();
        let out = GearsBuilder::new(IterReader::new(|_| 0..5000u64))
            .map(|x| if x % 1000 == 7 { panic!("bad {x}") } else { x })
            .run(&host);
        assert_eq!(out.results.len(), 4995);
        assert_eq!(out.errors.len(), 5);
        assert_eq!(out.errors[0].step, "map");
        assert!(out.errors[0].message.contains("bad 7"), "{}", out.errors[0]);
        assert!(!out.results.contains(&1007));
        assert!(out.results.contains(&1008));
    }
}
