//! `for_each`: a side effect per record; the record passes through unchanged.

use std::cell::Cell;

use crate::builder::GearsBuilder;
use crate::plumbing::chain::run_step;
use crate::plumbing::chain::Chain;
use crate::plumbing::pull::{StageCx, StepId};

/// The `for_each` step of a fused chain (see [`crate::chain`]).
pub struct ForEach<C, F> {
    prev: C,
    op: F,
    step: StepId,
}

impl<C, F> Chain for ForEach<C, F>
where
    C: Chain,
    F: Fn(&C::Out) + Send + Sync + 'static,
{
    type In = C::In;
    type Out = C::Out;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(C::Out) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set("for_each");
            (self.op)(&x);
            emit(x)
        })
    }

    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<C::Out> {
        let input = self.prev.run_batch(batch, cx);
        run_step("for_each", self.step, input, cx, |items, out| {
            for item in items {
                (self.op)(&item);
                out.push(item);
            }
            Ok(())
        })
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
    }
}

/// The `try_for_each` step of a fused chain.
pub struct TryForEach<C, F> {
    prev: C,
    op: F,
    step: StepId,
}

impl<C, F, E2> Chain for TryForEach<C, F>
where
    C: Chain,
    E2: std::fmt::Display,
    F: Fn(&C::Out) -> Result<(), E2> + Send + Sync + 'static,
{
    type In = C::In;
    type Out = C::Out;

    #[inline(always)]
    fn feed<E>(&self, record: C::In, at: &Cell<&'static str>, emit: &mut E) -> Result<(), String>
    where
        E: FnMut(C::Out) -> Result<(), String>,
    {
        self.prev.feed(record, at, &mut |x| {
            at.set("for_each");
            (self.op)(&x).map_err(|e| e.to_string())?;
            emit(x)
        })
    }

    fn run_batch(&self, batch: Vec<C::In>, cx: &mut StageCx<'_>) -> Vec<C::Out> {
        let input = self.prev.run_batch(batch, cx);
        run_step("for_each", self.step, input, cx, |items, out| {
            for item in items {
                (self.op)(&item).map_err(|e| e.to_string())?;
                out.push(item);
            }
            Ok(())
        })
    }

    fn last_step(&self) -> Option<StepId> {
        Some(self.step)
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Runs `for_each_op` on each record for its side effect (e.g. a write to Redis) and
    /// passes the record on unchanged.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// host.set("a", "1");
    /// let out = GearsBuilder::new(KeysReader::new("a"))
    ///     .for_each(|r| {
    ///         gears::context::call(&["SET", &format!("copy:{}", r.key), "x"]).unwrap();
    ///     })
    ///     .map(|r| r.key)
    ///     .run(&host);
    /// assert_eq!(out.results, ["a"]);
    /// assert_eq!(host.get("copy:a").as_deref(), Some("x"));
    /// ```
    pub fn for_each<F>(self, for_each_op: F) -> GearsBuilder<T, ForEach<C, F>>
    where
        F: Fn(&T) + Send + Sync + 'static,
    {
        self.then("for_each", |prev, step| ForEach {
            prev,
            op: for_each_op,
            step,
        })
    }

    /// Like [`for_each`](Self::for_each) for a fallible side effect: on `Err` the record is
    /// dropped and the error recorded.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// let out = GearsBuilder::new(IterReader::new(|_| ["PING", "NOSUCHCOMMAND"].map(String::from)))
    ///     .try_for_each(|cmd| gears::context::call(&[cmd]).map(|_| ()))
    ///     .run(&host);
    /// assert_eq!(out.results, ["PING"]);
    /// assert!(out.errors.iter().any(|e| e.message.contains("unknown command")));
    /// ```
    pub fn try_for_each<E, F>(self, for_each_op: F) -> GearsBuilder<T, TryForEach<C, F>>
    where
        E: std::fmt::Display,
        F: Fn(&T) -> Result<(), E> + Send + Sync + 'static,
    {
        self.then("for_each", |prev, step| TryForEach {
            prev,
            op: for_each_op,
            step,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::prelude::*;
    use crate::testing::MemoryHost;

    #[test]
    fn sees_every_record_and_survives_panics() {
        let host = MemoryHost::new();
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let out = GearsBuilder::new(IterReader::new(|_| 0..100u32))
            .for_each(move |x| {
                s.fetch_add(1, Ordering::Relaxed);
                assert!(*x != 50, "fifty");
            })
            .run(&host);
        assert_eq!(seen.load(Ordering::Relaxed), 100);
        assert_eq!(out.results.len(), 99);
        assert_eq!(out.errors.len(), 1);
        let none = GearsBuilder::new(IterReader::new(|_| 0..0u32)).for_each(|_| {});
        assert!(none.run(&host).results.is_empty());
    }
}
