//! The nodes that carry steps other than fused chains:
//! - [`FoldNode`]: a step that consumes its whole input (through the chain in front of it),
//!   then emits (`accumulate`, `count`, the local halves of grouping and aggregation);
//! - [`ParNode`]: `par_*` steps spread over rayon's pool with record order kept;
//! - [`OpNode`]: a stateful per-batch step (`limit`).

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use rayon::prelude::*;
use smallvec::SmallVec;

use super::chain::{drive_chain, Chain, PerRecord};
use super::pull::{guarded, Node, Pull, StageCx, StageInput, StepId};
use crate::error::{GearsError, StepError};

/// A step applied to one batch at a time.
pub(crate) trait BatchOp<I, O>: Send + Sync + 'static {
    const KIND: &'static str;
    /// Moves the records of `items` it keeps (or produces) into `out`. Returning `Err` drops the
    /// current record and records an error; the caller calls again with the rest.
    fn apply(&self, items: &mut std::vec::Drain<'_, I>, out: &mut Vec<O>) -> Result<(), String>;
    /// Whether the step wants no more input (only `limit`).
    fn satisfied(&self) -> bool {
        false
    }
}

pub(crate) struct OpNode<I, O, Op> {
    pub(crate) prev: Arc<dyn Node<I>>,
    pub(crate) make: Arc<dyn Fn() -> Op + Send + Sync>,
    pub(crate) step: StepId,
    pub(crate) _io: PhantomData<fn(I) -> O>,
}

struct OpPull<I, O, Op> {
    prev: Box<dyn Pull<I>>,
    op: Op,
    buf: Vec<I>,
    step: StepId,
    _o: PhantomData<fn() -> O>,
}

impl<I, O, Op> Node<O> for OpNode<I, O, Op>
where
    I: Send + 'static,
    O: Send + 'static,
    Op: BatchOp<I, O>,
{
    fn open(&self, input: &mut StageInput) -> Result<Box<dyn Pull<O>>, GearsError> {
        Ok(Box::new(OpPull {
            prev: self.prev.open(input)?,
            op: (self.make)(),
            buf: Vec::new(),
            step: self.step,
            _o: PhantomData,
        }))
    }
}

impl<I: Send, O: Send, Op: BatchOp<I, O>> Pull<O> for OpPull<I, O, Op> {
    fn pull(&mut self, cx: &mut StageCx<'_>, out: &mut Vec<O>) -> Result<bool, GearsError> {
        if self.op.satisfied() {
            return Ok(false);
        }
        let more = self.prev.pull(cx, &mut self.buf)?;
        let clock = cx.clock();
        let before = out.len();
        let op = &self.op;
        guarded(Op::KIND, cx.errors, &mut self.buf.drain(..), |items| {
            op.apply(items, out)
        });
        cx.book(self.step, out.len() - before, clock);
        Ok(more && !self.op.satisfied())
    }
}

/// A per-record step run on rayon's pool (`par_map`, `par_filter`, `par_flat_map`), record
/// order kept.
pub(crate) struct ParNode<I, S> {
    pub(crate) prev: Arc<dyn Node<I>>,
    pub(crate) op: Arc<S>,
    pub(crate) step: StepId,
}

struct ParPull<I, S> {
    prev: Box<dyn Pull<I>>,
    op: Arc<S>,
    buf: Vec<I>,
    step: StepId,
}

impl<I: Send + 'static, S: PerRecord<I>> Node<S::Out> for ParNode<I, S> {
    fn open(&self, input: &mut StageInput) -> Result<Box<dyn Pull<S::Out>>, GearsError> {
        Ok(Box::new(ParPull {
            prev: self.prev.open(input)?,
            op: self.op.clone(),
            buf: Vec::new(),
            step: self.step,
        }))
    }
}

impl<I: Send + 'static, S: PerRecord<I>> Pull<S::Out> for ParPull<I, S> {
    fn pull(&mut self, cx: &mut StageCx<'_>, out: &mut Vec<S::Out>) -> Result<bool, GearsError> {
        let more = self.prev.pull(cx, &mut self.buf)?;
        let clock = cx.clock();
        let before = out.len();
        let op = &*self.op;
        let host = cx.host.clone();
        let call = |item| {
            let at = Cell::new(op.kind());
            let mut produced = SmallVec::<[S::Out; 1]>::new();
            let mut emit = |record| {
                produced.push(record);
                Ok(())
            };
            match catch_unwind(AssertUnwindSafe(|| op.apply(item, &at, &mut emit))) {
                Ok(Ok(())) => Ok(produced),
                Ok(Err(message)) => Err(StepError::new(at.get(), message)),
                Err(panic) => Err(StepError::panicked(at.get(), panic)),
            }
        };
        // A thread-bound host (a `sync` execution inside a Redis callback) must not be used
        // from rayon's threads: run the step on this thread instead.
        let results: Vec<Result<SmallVec<[S::Out; 1]>, StepError>> = if host.thread_bound() {
            self.buf.drain(..).map(call).collect()
        } else {
            self.buf
                .par_drain(..)
                .map_init(|| crate::context::enter(&host), |_, item| call(item))
                .collect()
        };
        for r in results {
            match r {
                Ok(records) => out.extend(records),
                Err(e) => cx.errors.push(e),
            }
        }
        cx.book(self.step, out.len() - before, clock);
        Ok(more)
    }
}

/// A step that sees its whole input before emitting. It consumes the fused chain in front of
/// it record by record (`count` after `filter` is one branch-free loop).
pub(crate) trait FoldOp<I, O>: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    type State: Send;
    fn start(&self) -> Self::State;
    /// Folds one record into `state`. Steps running user code name themselves in `at` first;
    /// an `Err` drops the record and becomes an error entry.
    fn add(&self, state: &mut Self::State, item: I, at: &Cell<&'static str>) -> Result<(), String>;
    /// Emits the result. `initiator` is true on the shard that started the execution.
    fn finish(
        &self,
        state: Self::State,
        initiator: bool,
        out: &mut Vec<O>,
        errors: &mut Vec<StepError>,
    );
}

pub(crate) struct FoldNode<C: Chain, O, Op> {
    pub(crate) prev: Arc<dyn Node<C::In>>,
    pub(crate) chain: Arc<C>,
    pub(crate) op: Arc<Op>,
    pub(crate) step: StepId,
    pub(crate) _o: PhantomData<fn() -> O>,
}

struct FoldPull<C: Chain, O, Op> {
    prev: Box<dyn Pull<C::In>>,
    chain: Arc<C>,
    op: Arc<Op>,
    step: StepId,
    initiator: bool,
    done: bool,
    _o: PhantomData<fn() -> O>,
}

impl<C, O, Op> Node<O> for FoldNode<C, O, Op>
where
    C: Chain,
    O: Send + 'static,
    Op: FoldOp<C::Out, O>,
{
    fn open(&self, input: &mut StageInput) -> Result<Box<dyn Pull<O>>, GearsError> {
        Ok(Box::new(FoldPull {
            prev: self.prev.open(input)?,
            chain: self.chain.clone(),
            op: self.op.clone(),
            step: self.step,
            initiator: input.initiator,
            done: false,
            _o: PhantomData,
        }))
    }
}

impl<C, O, Op> Pull<O> for FoldPull<C, O, Op>
where
    C: Chain,
    O: Send,
    Op: FoldOp<C::Out, O>,
{
    fn pull(&mut self, cx: &mut StageCx<'_>, out: &mut Vec<O>) -> Result<bool, GearsError> {
        if self.done {
            return Ok(false);
        }
        let op = &*self.op;
        let mut state = op.start();
        let mut buf = Vec::with_capacity(cx.batch);
        loop {
            let more = self.prev.pull(cx, &mut buf)?;
            if cx.aborted() {
                return Err(GearsError::Aborted);
            }
            drive_chain(&*self.chain, &mut buf, cx, Some(self.step), |item, at| {
                op.add(&mut state, item, at)
            });
            if !more {
                break;
            }
        }
        let clock = cx.clock();
        let before = out.len();
        op.finish(state, self.initiator, out, cx.errors);
        cx.book(self.step, out.len() - before, clock);
        self.done = true;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn par_map_keeps_order_and_catches_panics() {
        let host = MemoryHost::new();
        let out = GearsBuilder::new(IterReader::new(|_| 0..10_000u64))
            .par_map(|x| if x == 5 { panic!("five") } else { x + 1 })
            .run(&host);
        let expected: Vec<u64> = (0..10_000u64).filter(|&x| x != 5).map(|x| x + 1).collect();
        assert_eq!(out.results, expected);
        assert_eq!(out.errors.len(), 1);
    }

    /// A host usable only from the thread that created it, like a `sync` execution's.
    #[derive(Clone)]
    struct ThreadBound {
        inner: MemoryHost,
        owner: std::thread::ThreadId,
    }

    impl crate::host::Host for ThreadBound {
        fn topology(&self) -> crate::host::Topology {
            self.inner.topology()
        }
        fn scan(
            &self,
            p: &str,
            c: u64,
            n: usize,
        ) -> Result<crate::host::ScanPage, crate::error::HostError> {
            self.inner.scan(p, c, n)
        }
        fn read_keys(
            &self,
            k: &[crate::bytes::RedisBytes],
            v: bool,
        ) -> Result<Vec<(KeyType, Option<KeyValue>)>, crate::error::HostError> {
            self.inner.read_keys(k, v)
        }
        fn stream_range(
            &self,
            k: &[u8],
            a: StreamId,
            n: usize,
        ) -> Result<Vec<crate::host::StreamEntry>, crate::error::HostError> {
            self.inner.stream_range(k, a, n)
        }
        fn call(&self, args: &[&str]) -> Result<Value, crate::error::HostError> {
            assert_eq!(
                std::thread::current().id(),
                self.owner,
                "used from another thread"
            );
            self.inner.call(args)
        }
        fn call_bytes(&self, args: &[&[u8]]) -> Result<Value, crate::error::HostError> {
            assert_eq!(std::thread::current().id(), self.owner);
            self.inner.call_bytes(args)
        }
        fn send(&self, s: &ShardId, p: Vec<u8>) -> Result<(), crate::error::HostError> {
            self.inner.send(s, p)
        }
        fn log(&self, l: crate::host::LogLevel, m: &str) {
            self.inner.log(l, m)
        }
        fn thread_bound(&self) -> bool {
            true
        }
    }

    #[test]
    fn parallel_steps_stay_on_a_thread_bound_hosts_thread() {
        let host = ThreadBound {
            inner: MemoryHost::new(),
            owner: std::thread::current().id(),
        };
        let out = GearsBuilder::new(IterReader::new(|_| 0..5000u64))
            .par_map(|x| {
                crate::context::call(&["PING"]).unwrap();
                x
            })
            .run(&host);
        assert!(out.errors.is_empty(), "{:?}", out.errors.first());
        assert_eq!(out.results.len(), 5000);
    }
}
