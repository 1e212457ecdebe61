//! [`GearsBuilder`]: the typed flow builder. Each operator lives in its own file under
//! `ops/`, where its method is documented with an example.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::GearsError;
use crate::host::Host;
use crate::plan::{Plan, RunResult};
use crate::plumbing::chain::{seal, Chain, Identity, PerRecord, Then};
use crate::plumbing::exchange::{ExchangeSource, ExchangeStage, Router, ToInitiator};
use crate::plumbing::nodes::{BatchOp, FoldNode, FoldOp, OpNode, ParNode};
use crate::plumbing::pull::{Node, StepId, StepInfo};
use crate::plumbing::stage::StageRunner;
use crate::readers::{Reader, ReaderNode};
use crate::record::Record;
use crate::trigger::{ExecutionMode, Registration, TriggerSpec};
use crate::value::IntoValue;

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
/// ```compile_fail,E0631
/// # use gears_core as gears;
/// use gears::prelude::*;
/// // `count()` yields a u64; `str::len` wants a &str.
/// let _ = GearsBuilder::new(KeysOnlyReader::new("*")).count().map(|s: String| s.len());
/// ```
#[must_use = "builders are lazy; call run() or build()"]
pub struct GearsBuilder<T, C: Chain<Out = T> = Identity<T>> {
    stages: Vec<Arc<dyn StageRunner>>,
    head: Arc<dyn Node<C::In>>,
    chain: C,
    steps: Vec<StepInfo>,
    reader: &'static str,
    trigger: Option<TriggerSpec>,
}

impl<T, C: Chain<Out = T>> std::fmt::Debug for GearsBuilder<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GearsBuilder")
            .field("reader", &self.reader)
            .field("steps", &self.steps)
            .finish()
    }
}

impl<T: Send + 'static> GearsBuilder<T> {
    /// Starts a flow at `reader`.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// host.set("a", "1");
    /// let flow = GearsBuilder::new(KeysOnlyReader::new("*"));
    /// assert_eq!(flow.run(&host).results, ["a"]);
    /// ```
    pub fn new<R: Reader<Record = T>>(reader: R) -> Self {
        let name = reader.name();
        let trigger = reader.trigger();
        Self {
            stages: Vec::new(),
            head: Arc::new(ReaderNode {
                reader: Arc::new(reader),
                step: 0,
            }),
            chain: Identity::new(),
            steps: vec![StepInfo {
                kind: "reader",
                stage: 0,
            }],
            reader: name,
            trigger,
        }
    }

    /// Appends a node after a sealed builder.
    fn push_node<U: Send + 'static>(
        mut self,
        kind: &'static str,
        make: impl FnOnce(Arc<dyn Node<T>>, StepId) -> Arc<dyn Node<U>>,
    ) -> GearsBuilder<U> {
        let step = self.next_step(kind);
        GearsBuilder {
            head: make(self.head, step),
            chain: Identity::new(),
            stages: self.stages,
            steps: self.steps,
            reader: self.reader,
            trigger: self.trigger,
        }
    }
}

impl<T: Send + 'static, C: Chain<Out = T>> GearsBuilder<T, C> {
    fn next_step(&mut self, kind: &'static str) -> StepId {
        self.steps.push(StepInfo {
            kind,
            stage: self.stages.len(),
        });
        self.steps.len() - 1
    }

    /// Extends the fused chain with the per-record step `op`.
    pub(crate) fn then<S: PerRecord<T>>(mut self, op: S) -> GearsBuilder<S::Out, Then<C, S>> {
        let step = self.next_step(op.kind());
        GearsBuilder {
            chain: Then {
                prev: self.chain,
                op,
                step,
            },
            head: self.head,
            stages: self.stages,
            steps: self.steps,
            reader: self.reader,
            trigger: self.trigger,
        }
    }

    /// Ends the current fused chain, so the builder's type is the plain `GearsBuilder<T>`.
    ///
    /// Consecutive per-record steps (`map`, `filter`, `flat_map`, `for_each`) are fused, and
    /// their types show in the builder's second parameter; global steps and folds seal the
    /// chain on their own. Call `seal` to name a partial flow, e.g. to return it from a helper.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// fn names() -> GearsBuilder<RedisBytes> {
    ///     GearsBuilder::new(KeysReader::new("user:*")).map(|r| r.key).seal()
    /// }
    /// let out = gears::testing::example(|host| {
    ///     host.hset("user:1", &[("a", "b")]);
    ///     names().map(|k| k.len())
    /// });
    /// assert_eq!(out, [6]);
    /// ```
    pub fn seal(self) -> GearsBuilder<T> {
        GearsBuilder {
            head: seal(self.chain, self.head),
            chain: Identity::new(),
            stages: self.stages,
            steps: self.steps,
            reader: self.reader,
            trigger: self.trigger,
        }
    }

    /// Appends a per-batch step; `make` builds one instance per stage run.
    pub(crate) fn batch_op<U: Send + 'static, Op: BatchOp<T, U>>(
        self,
        make: impl Fn() -> Op + Send + Sync + 'static,
    ) -> GearsBuilder<U> {
        self.seal().push_node(Op::KIND, |prev, step| {
            Arc::new(OpNode {
                prev,
                make: Arc::new(make),
                step,
                _io: PhantomData,
            })
        })
    }

    /// Appends the per-record step `op` as a node of its own, run on rayon's pool.
    pub(crate) fn par_then<S: PerRecord<T>>(self, op: S) -> GearsBuilder<S::Out> {
        self.seal().push_node(op.kind(), |prev, step| {
            Arc::new(ParNode {
                prev,
                op: Arc::new(op),
                step,
            })
        })
    }

    /// Appends a step that folds its whole input, consuming the fused chain record by record.
    pub(crate) fn fold_op<U: Send + 'static, Op: FoldOp<T, U>>(
        mut self,
        op: Op,
    ) -> GearsBuilder<U> {
        let step = self.next_step(op.kind());
        GearsBuilder {
            head: Arc::new(FoldNode {
                prev: self.head,
                chain: Arc::new(self.chain),
                op: Arc::new(op),
                step,
                _o: PhantomData,
            }),
            chain: Identity::new(),
            stages: self.stages,
            steps: self.steps,
            reader: self.reader,
            trigger: self.trigger,
        }
    }
}

impl<T: Record, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Ends the current stage with an exchange routed by `router`.
    pub(crate) fn exchange<R: Router<T>>(mut self, router: R) -> GearsBuilder<T> {
        let step = self.next_step(R::KIND);
        self.stages.push(Arc::new(ExchangeStage {
            head: self.head,
            chain: Arc::new(self.chain),
            router,
            step,
        }));
        GearsBuilder {
            head: Arc::new(ExchangeSource { _t: PhantomData }),
            chain: Identity::new(),
            stages: self.stages,
            steps: self.steps,
            reader: self.reader,
            trigger: self.trigger,
        }
    }

    /// Finishes the flow: the results are collected on the shard that started it (1.x's
    /// default `collect=True`). A plan can run many times.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let plan = GearsBuilder::new(IterReader::new(|_| 1..=3u32)).map(|x| x * 2).build();
    /// let host = gears::testing::MemoryHost::new();
    /// assert_eq!(plan.run(&host).results, [2, 4, 6]);
    /// assert_eq!(plan.run(&host).results, [2, 4, 6]);
    /// assert_eq!(plan.stage_count(), 1);
    /// ```
    pub fn build(self) -> Plan<T> {
        let GearsBuilder {
            mut stages,
            head,
            chain,
            mut steps,
            reader,
            trigger: _,
        } = self;
        steps.push(StepInfo {
            kind: "collect",
            stage: stages.len(),
        });
        let step = steps.len() - 1;
        stages.push(Arc::new(ExchangeStage {
            head,
            chain: Arc::new(chain),
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

    /// Builds and runs the flow on one host (every exchange is local): results, and one
    /// error entry per record a step failed on.
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let host = gears::testing::MemoryHost::new();
    /// let out = GearsBuilder::new(IterReader::new(|_| [1u32, 0, 2]))
    ///     .try_map(|x| 10u32.checked_div(x).ok_or("division by zero"))
    ///     .run(&host);
    /// assert_eq!(out.results, [10, 5]);
    /// assert_eq!(out.errors[0].to_string(), "map: division by zero");
    /// ```
    pub fn run<H: Host + Clone + 'static>(self, host: &H) -> RunResult<T> {
        self.build().run(host)
    }
}

impl<T: Record + IntoValue, C: Chain<Out = T>> GearsBuilder<T, C> {
    /// Turns the flow into a registration fired by its reader's events, running in `mode`.
    ///
    /// Only readers with events can be registered (`KeysReader`, `StreamReader`,
    /// `CommandReader`).
    ///
    /// ```
    /// # use gears_core as gears;
    /// use gears::prelude::*;
    /// let reg = GearsBuilder::new(KeysReader::new("user:*").event_types(["hset"]))
    ///     .map(|r| r.key)
    ///     .register(ExecutionMode::AsyncLocal)
    ///     .unwrap();
    /// assert!(reg.trigger.accepts_key_event(b"user:1", "hset", KeyType::Hash));
    /// assert!(!reg.trigger.accepts_key_event(b"user:1", "del", KeyType::Empty));
    /// assert!(GearsBuilder::new(KeysOnlyReader::new("*")).register(ExecutionMode::Sync).is_err());
    /// ```
    pub fn register(self, mode: ExecutionMode) -> Result<Registration, GearsError> {
        let trigger = self.trigger.clone().ok_or_else(|| GearsError::Reader {
            reader: self.reader,
            message: "has no events: only KeysReader, StreamReader and CommandReader flows can be registered"
                .into(),
        })?;
        if mode == ExecutionMode::Sync && matches!(trigger, TriggerSpec::Stream { .. }) {
            return Err(GearsError::Invalid(
                "StreamReader registrations run in the background (async_local): sync is not supported".into(),
            ));
        }
        Ok(Registration {
            plan: Arc::new(self.build()),
            trigger,
            mode,
        })
    }
}
