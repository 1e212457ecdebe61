//! `map`: one record in, one record out.

use std::cell::Cell;

use smallvec::SmallVec;

use crate::builder::GearsBuilder;
use crate::plumbing::chain::run_step;
use crate::plumbing::chain::Chain;
use crate::plumbing::nodes::ParOp;
use crate::plumbing::pull::{StageCx, StepId};

/// The `map` step of a fused chain (see [`crate::chain`]).
pub struct Map<C, F> {
    prev: C,
    op: F,
    step: StepId,
    kind: &'static str,
}

impl<C, F, U> Chain for Map<C, F>
where
    C: Chain,
    U: Send + 'static,
    F: Fn(C::Out) -> U + Send + Sync + 'static,
{
    type In = C::In;
    type Out = U;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(U) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set(self.kind);
            emit((self.op)(x))
        })
    }

    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<U> {
        let input = self.prev.run_batch(batch, cx);
        run_step(self.kind, self.step, input, cx, |items, out| {
            out.extend(items.map(&self.op));
            Ok(())
        })
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
    }
}

/// The `try_map` step of a fused chain.
pub struct TryMap<C, F> {
    prev: C,
    op: F,
    step: StepId,
}

impl<C, F, U, E2> Chain for TryMap<C, F>
where
    C: Chain,
    U: Send + 'static,
    E2: std::fmt::Display,
    F: Fn(C::Out) -> Result<U, E2> + Send + Sync + 'static,
{
    type In = C::In;
    type Out = U;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(U) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set("map");
            emit((self.op)(x).map_err(|e| e.to_string())?)
        })
    }

    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<U> {
        let input = self.prev.run_batch(batch, cx);
        run_step("map", self.step, input, cx, |items, out| {
            for item in items {
                out.push((self.op)(item).map_err(|e| e.to_string())?);
            }
            Ok(())
        })
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
    }
}

struct ParMap<F>(F);

impl<I, O, F> ParOp<I, O> for ParMap<F>
where
    F: Fn(I) -> O + Send + Sync + 'static,
{
    const KIND: &'static str = "map";
    fn call(&self, item: I, out: &mut SmallVec<[O; 1]>) -> Result<(), String> {
        out.push((self.0)(item));
        Ok(())
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Transforms each record into exactly one new record.
    ///
    /// Fused with the neighbouring per-record steps into one loop. A panic in `map_op` becomes
    /// an error entry; the record is dropped, the run goes on.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| 1..=3u64)).map(|x| x * 10)
    /// });
    /// assert_eq!(out, [10, 20, 30]);
    /// ```
    pub fn map<U, F>(self, map_op: F) -> GearsBuilder<U, Map<C, F>>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.map_named("map", map_op)
    }

    /// A `map` step shown (and blamed in errors) under another name, e.g. `extract_key`.
    pub(crate) fn map_named<U, F>(self, kind: &'static str, map_op: F) -> GearsBuilder<U, Map<C, F>>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.then(kind, |prev, step| Map {
            prev,
            op: map_op,
            step,
            kind,
        })
    }

    /// Like [`map`](Self::map) for a fallible `map_op`: an `Err` becomes an error entry
    /// (`map: <message>`) and the record is dropped.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// let out = GearsBuilder::new(IterReader::new(|_| ["1", "x", "3"].map(String::from)))
    ///     .try_map(|s| s.parse::<u32>())
    ///     .run(&host);
    /// assert_eq!(out.results, [1, 3]);
    /// assert_eq!(out.errors.len(), 1);
    /// assert_eq!(out.errors[0].step, "map");
    /// ```
    pub fn try_map<U, E, F>(self, map_op: F) -> GearsBuilder<U, TryMap<C, F>>
    where
        U: Send + 'static,
        E: std::fmt::Display,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        self.then("map", |prev, step| TryMap {
            prev,
            op: map_op,
            step,
        })
    }

    /// Like [`map`](Self::map), but each batch is spread over rayon's thread pool; record
    /// order is kept. Worth it when `map_op` is expensive (it is not fused).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let out = gears::testing::example(|_| {
    ///     GearsBuilder::new(IterReader::new(|_| 0..5000u64)).par_map(|x| x * 2)
    /// });
    /// assert_eq!(out, (0..5000u64).map(|x| x * 2).collect::<Vec<_>>());
    /// ```
    pub fn par_map<U, F>(self, map_op: F) -> GearsBuilder<U>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.par_op(ParMap(map_op))
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::MemoryHost;

    fn nums(n: u64) -> GearsBuilder<u64> {
        GearsBuilder::new(IterReader::new(move |_| 0..n))
    }

    #[test]
    fn empty_and_one() {
        let host = MemoryHost::new();
        assert!(nums(0).map(|x| x + 1).run(&host).results.is_empty());
        assert_eq!(nums(1).map(|x| x + 1).run(&host).results, [1]);
    }

    #[test]
    fn panic_drops_only_that_record() {
        let host = MemoryHost::new();
        let out = nums(5000)
            .map(|x| if x % 1000 == 7 { panic!("bad {x}") } else { x })
            .run(&host);
        assert_eq!(out.results.len(), 4995);
        assert_eq!(out.errors.len(), 5);
        assert_eq!(out.errors[0].step, "map");
        assert!(out.errors[0].message.contains("bad 7"), "{}", out.errors[0]);
        assert!(!out.results.contains(&1007));
        assert!(out.results.contains(&1008));
    }

    #[test]
    fn par_map_keeps_order_and_catches_panics() {
        let host = MemoryHost::new();
        let out = nums(10_000)
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
            k: &[String],
            v: bool,
        ) -> Result<Vec<(KeyType, Option<KeyValue>)>, crate::error::HostError> {
            self.inner.read_keys(k, v)
        }
        fn stream_range(
            &self,
            k: &str,
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
        let out = nums(5000)
            .par_map(|x| {
                crate::context::call(&["PING"]).unwrap();
                x
            })
            .run(&host);
        assert!(out.errors.is_empty(), "{:?}", out.errors.first());
        assert_eq!(out.results.len(), 5000);
    }

    #[test]
    fn try_map_err_is_an_error_entry() {
        let host = MemoryHost::new();
        let out = nums(4)
            .try_map(|x| if x == 2 { Err("two") } else { Ok(x) })
            .run(&host);
        assert_eq!(out.results, [0, 1, 3]);
        assert_eq!(out.errors, [StepError::new("map", "two")]);
    }
}
