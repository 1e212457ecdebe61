//! Fusion of per-record steps.
//!
//! Consecutive `map`, `filter`, `flat_map` and `for_each` steps are not separate nodes: they
//! are composed, at compile time, into one [`Chain`] (the second type parameter of
//! [`GearsBuilder`](crate::GearsBuilder), like an iterator adapter). The step that consumes
//! the chain — a fold such as `count`, an exchange, or the end of the flow — runs it as **one
//! loop per record**, so `map → filter → count` compiles to the same kind of loop as the
//! hand-written iterator chain. With profiling on, the chain runs step by step over each batch
//! instead, so every step gets its own duration and record count; without it, counts are kept
//! where records materialize (the reader, folds, exchanges, the chain's output when it feeds
//! a node), not for each step inside the fused loop.

use std::any::Any;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;

use super::pull::{guarded_fused, Node, Pull, StageCx, StageInput, StepId};
use crate::error::GearsError;

/// A run of fused per-record steps from `In` records to `Out` records.
///
/// Implemented by [`Identity`] (no step) and by the step types of this module; flow authors
/// never implement it.
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

/// One step of a profiled (unfused) run over a whole batch: times the step, books its
/// output, and turns `Err`s and panics into error entries (see [`Chain::run_batch`]).
pub(crate) fn run_step<I, O>(
    kind: &'static str,
    step: StepId,
    input: Vec<I>,
    cx: &mut StageCx<'_>,
    mut body: impl FnMut(&mut std::vec::IntoIter<I>, &mut Vec<O>) -> Result<(), String>,
) -> Vec<O> {
    let clock = cx.clock();
    let mut out = Vec::with_capacity(input.len());
    super::pull::guarded(kind, cx.errors, &mut input.into_iter(), |items| {
        body(items, &mut out)
    });
    cx.book(step, out.len(), clock);
    out
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
