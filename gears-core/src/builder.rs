//! [`GearsBuilder`]: the typed flow builder. Each operator lives in its own file under
//! `ops/`, where its method is documented with an example.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::host::Host;
use crate::ops::{BatchOp, FoldNode, FoldOp, OpNode, ParNode, ParOp};
use crate::pipeline::{Node, StepId, StepInfo};
use crate::plan::{
    ExchangeSource, ExchangeStage, Plan, Router, RunResult, StageRunner, ToInitiator,
};
use crate::readers::{Reader, ReaderNode};
use crate::record::Record;

/// A typed flow: a reader followed by steps. The record type changes at each step, so feeding
/// a step the wrong type does not compile.
///
/// ```
/// # use gears_core as gears;
/// use gears::prelude::*;
/// let words = gears::testing::example(|host| {
///     host.set("doc:1", "a rose is a rose");
///     GearsBuilder::new(KeysReader::new("doc:*"))
///         .flat_map(|r| r.string().unwrap_or("").split(' ').map(String::from).collect::<Vec<_>>())
///         .count_by(|w| w.clone())
///         .sort()
/// });
/// assert_eq!(words, [("a".to_string(), 2), ("is".into(), 1), ("rose".into(), 2)]);
/// ```
///
/// A step fed the wrong type is rejected at compile time:
///
/// ```compile_fail
/// # use gears_core as gears;
/// use gears::prelude::*;
/// // `count()` yields a u64; `str::len` wants a &str.
/// let _ = GearsBuilder::new(KeysOnlyReader::new("*")).count().map(|s: String| s.len());
/// ```
#[must_use = "builders are lazy; call run() or build()"]
pub struct GearsBuilder<T> {
    stages: Vec<Arc<dyn StageRunner>>,
    head: Arc<dyn Node<T>>,
    steps: Vec<StepInfo>,
    reader: &'static str,
}

impl<T> std::fmt::Debug for GearsBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GearsBuilder")
            .field("reader", &self.reader)
            .field("steps", &self.steps)
            .finish()
    }
}

impl<T: Send + 'static> GearsBuilder<T> {
    /// Starts a flow at `reader`.
    pub fn new<R: Reader<Record = T>>(reader: R) -> Self {
        let name = reader.name();
        Self {
            stages: Vec::new(),
            head: Arc::new(ReaderNode {
                reader: Arc::new(reader),
                step: 0,
            }),
            steps: vec![StepInfo {
                kind: "reader",
                stage: 0,
            }],
            reader: name,
        }
    }

    fn next_step(&mut self, kind: &'static str) -> StepId {
        self.steps.push(StepInfo {
            kind,
            stage: self.stages.len(),
        });
        self.steps.len() - 1
    }

    fn chain<U>(
        mut self,
        kind: &'static str,
        make: impl FnOnce(Arc<dyn Node<T>>, StepId) -> Arc<dyn Node<U>>,
    ) -> GearsBuilder<U> {
        let step = self.next_step(kind);
        GearsBuilder {
            head: make(self.head, step),
            stages: self.stages,
            steps: self.steps,
            reader: self.reader,
        }
    }

    /// Appends a per-batch step; `make` builds one instance per stage run.
    pub(crate) fn batch_op<U: Send + 'static, Op: BatchOp<T, U>>(
        self,
        make: impl Fn() -> Op + Send + Sync + 'static,
    ) -> GearsBuilder<U> {
        self.chain(Op::KIND, |prev, step| {
            Arc::new(OpNode {
                prev,
                make: Arc::new(make),
                step,
                _io: PhantomData,
            })
        })
    }

    /// Appends a per-record step that runs on rayon's pool.
    pub(crate) fn par_op<U: Send + 'static, Op: ParOp<T, U>>(self, op: Op) -> GearsBuilder<U> {
        self.chain(Op::KIND, |prev, step| {
            Arc::new(ParNode {
                prev,
                op: Arc::new(op),
                step,
                _io: PhantomData,
            })
        })
    }

    /// Appends a step that folds its whole input.
    pub(crate) fn fold_op<U: Send + 'static, Op: FoldOp<T, U>>(self, op: Op) -> GearsBuilder<U> {
        self.chain(op.kind(), |prev, step| {
            Arc::new(FoldNode {
                prev,
                op: Arc::new(op),
                step,
                _io: PhantomData,
            })
        })
    }
}

impl<T: Record> GearsBuilder<T> {
    /// Ends the current stage with an exchange routed by `router`.
    pub(crate) fn exchange<R: Router<T>>(mut self, router: R) -> GearsBuilder<T> {
        let step = self.next_step(R::KIND);
        self.stages.push(Arc::new(ExchangeStage {
            head: self.head,
            router,
            step,
        }));
        GearsBuilder {
            head: Arc::new(ExchangeSource { _t: PhantomData }),
            stages: self.stages,
            steps: self.steps,
            reader: self.reader,
        }
    }

    /// Finishes the flow: the results are collected on the shard that started it (1.x's
    /// default `collect=True`).
    pub fn build(self) -> Plan<T> {
        let GearsBuilder {
            mut stages,
            head,
            mut steps,
            reader,
        } = self;
        steps.push(StepInfo {
            kind: "collect",
            stage: stages.len(),
        });
        let step = steps.len() - 1;
        stages.push(Arc::new(ExchangeStage {
            head,
            router: ToInitiator,
            step,
        }));
        Plan {
            stages: stages.into(),
            steps: steps.into(),
            reader,
            _t: PhantomData,
        }
    }

    /// Builds and runs the flow on one host (every exchange is local).
    pub fn run<H: Host + Clone + 'static>(self, host: &H) -> RunResult<T> {
        self.build().run(host)
    }
}
