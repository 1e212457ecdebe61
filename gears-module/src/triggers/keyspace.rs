//! Keyspace notifications becoming executions: which live registrations an event fires (by
//! key, event and type; not inside a `sync` execution's own writes), a `sync` run inline in the
//! notification, the others queued on the registration's lane; `XADD`s Gears made itself
//! counted for the stream registrations.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use redis_module::{Context, ContextFlags, NotifyEvent};

use gears_core::execution::{Execution, ExecutionStatus, Outcome};
use gears_core::executor::{plan_job, OnDone};
use gears_core::host::KeyType;
use gears_core::plan::RunOptions;
use gears_core::readers::Event;
use gears_core::trigger::{ExecutionMode, TriggerSpec};

use crate::runtime::registered::Registered;
use crate::runtime::{runtime, Runtime};

impl Registered {
    /// Runs a `sync` execution inline, inside `ctx`'s command or notification, and records
    /// it in the statistics, the trigger included (one lock of the statistics).
    fn run_sync(
        &self,
        rt: &Runtime,
        ctx: &Context,
        event: Event,
        abort: Arc<AtomicBool>,
        profile: bool,
        keep_results: bool,
    ) -> Outcome {
        let started = Instant::now();
        let options = RunOptions::for_execution(abort, profile);
        let result = rt.host.run_inline(ctx, |host| {
            let host = Arc::new(host);
            let _guard = SyncGuard::enter();
            let plan = &self.registration.plan;
            if keep_results {
                plan.run_with(host, Some(event), &options)
            } else {
                plan.run_for_effects(host, Some(event), &options)
            }
        });
        let outcome = match result {
            Ok(run) => Outcome {
                results: run.results,
                errors: run.errors.iter().map(ToString::to_string).collect(),
                steps: run.stats,
                duration: started.elapsed(),
            },
            Err(e) => Outcome {
                errors: vec![format!("execution: {e}")],
                duration: started.elapsed(),
                ..Outcome::default()
            },
        };
        let mut stats = self.stats();
        stats.triggered += 1;
        stats.record(ExecutionStatus::Done, &outcome);
        drop(stats);
        outcome
    }

    /// Handles a keyspace event: a `sync` registration runs inline with no execution record
    /// (nobody can ask for it: the hot path of every write it watches); others queue one.
    fn on_event(self: &Arc<Self>, rt: &Runtime, ctx: &Context, event: Event) {
        if self.registration.mode == ExecutionMode::Sync {
            let profile = rt.config().profile_executions;
            self.run_sync(rt, ctx, event, never_aborted(), profile, false);
        } else {
            self.fire(rt, ctx, event, None);
        }
    }

    /// Runs (sync) or queues (async) one execution for `event`. `ctx` is the context of the
    /// command or notification that fired it. Returns the execution.
    pub(crate) fn fire(
        self: &Arc<Self>,
        rt: &Runtime,
        ctx: &Context,
        event: Event,
        on_done: Option<OnDone>,
    ) -> Arc<Execution> {
        if self.registration.mode != ExecutionMode::Sync {
            self.note_triggered(); // a sync run counts it with its outcome
        }
        let execution = Execution::new(rt.next_id());
        let profile = rt.config().profile_executions;
        match self.registration.mode {
            ExecutionMode::Sync => {
                let outcome = self.run_sync(rt, ctx, event, execution.abort_flag(), profile, true);
                execution.finish_inline(outcome);
                if let Some(on_done) = on_done {
                    on_done(&execution);
                }
            }
            ExecutionMode::Async if crate::runtime::cluster::is_shard(ctx) => {
                // Cluster-wide per event (1.x `async`): this shard reads the event, every
                // master runs the stages after it.
                let this = self.clone();
                let on_done: OnDone = Box::new(move |execution: &Arc<Execution>| {
                    if let Some(outcome) = execution.outcome() {
                        this.stats().record(execution.status(), &outcome);
                    }
                    if let Some(on_done) = on_done {
                        on_done(execution);
                    }
                });
                crate::runtime::cluster::launch_event(
                    ctx,
                    &self.id,
                    self.function,
                    &self.args,
                    self.registration.plan.clone(),
                    event,
                    execution.clone(),
                    profile,
                    on_done,
                );
            }
            ExecutionMode::AsyncLocal | ExecutionMode::Async => {
                let job = plan_job(
                    self.registration.plan.clone(),
                    Arc::new(rt.host.clone()),
                    Some(event),
                    profile,
                );
                let this = self.clone();
                self.lane.submit(
                    execution.clone(),
                    job,
                    Some(Box::new(move |execution: &Arc<Execution>| {
                        if let Some(outcome) = execution.outcome() {
                            this.stats().record(execution.status(), &outcome);
                        }
                        if let Some(on_done) = on_done {
                            on_done(execution);
                        }
                    })),
                );
            }
        }
        execution
    }
}

/// The abort flag of inline runs nobody can abort (they hold the Redis lock throughout).
fn never_aborted() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone()
}

thread_local! {
    /// Set while a `sync` execution runs: the keyspace events its own writes raise do not fire
    /// `KeysReader` registrations (that would recurse inside the notification).
    static IN_SYNC_EXECUTION: Cell<bool> = const { Cell::new(false) };
}

/// Marks a `sync` execution for its duration; restores the previous mark on drop (nesting,
/// panics).
struct SyncGuard(bool);

impl SyncGuard {
    fn enter() -> Self {
        SyncGuard(IN_SYNC_EXECUTION.with(|f| f.replace(true)))
    }
}

impl Drop for SyncGuard {
    fn drop(&mut self) {
        IN_SYNC_EXECUTION.with(|f| f.set(self.0));
    }
}

/// The live registrations, as a snapshot: never fire while holding the lock (a flow may
/// change the registrations through a command).
fn live(rt: &Runtime) -> Arc<Vec<Arc<Registered>>> {
    rt.registrations()
}

/// An XADD made by a `sync` execution: count it for the stream registrations.
pub(crate) fn on_stream_write(ctx: &Context, key: &[u8]) {
    let Ok(rt) = runtime() else { return };
    let mut primary = None;
    for reg in live(rt).iter() {
        if !reg.paused.load(Ordering::Acquire) && reg.registration.trigger.accepts_stream(key) {
            let primary = *primary.get_or_insert_with(|| {
                !ctx.get_flags()
                    .intersects(ContextFlags::SLAVE | ContextFlags::LOADING)
            });
            if primary {
                crate::triggers::streams::on_new_entry(reg, rt, ctx, key);
            }
        }
    }
}

fn key_type_of(event_class: NotifyEvent) -> KeyType {
    if event_class.contains(NotifyEvent::HASH) {
        KeyType::Hash
    } else if event_class.contains(NotifyEvent::STRING) {
        KeyType::String
    } else if event_class.contains(NotifyEvent::LIST) {
        KeyType::List
    } else if event_class.contains(NotifyEvent::SET) {
        KeyType::Set
    } else if event_class.contains(NotifyEvent::ZSET) {
        KeyType::ZSet
    } else if event_class.contains(NotifyEvent::STREAM) {
        KeyType::Stream
    } else {
        KeyType::Empty
    }
}

/// The keyspace-notification callback: fires matching `KeysReader` registrations. Never on a
/// replica or while loading; never for writes made by a `sync` execution.
pub fn on_keyspace_event(ctx: &Context, event_class: NotifyEvent, event: &str, key: &[u8]) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Ok(rt) = runtime() else { return };
        let in_sync = IN_SYNC_EXECUTION.with(Cell::get);
        // Asked only once some registration matches: most events concern nobody.
        let mut primary = None;
        let mut is_primary = || {
            *primary.get_or_insert_with(|| {
                !ctx.get_flags()
                    .intersects(ContextFlags::SLAVE | ContextFlags::LOADING)
            })
        };
        // The key's bytes as they are: binary key names fire and reach the flow unchanged.
        let key_type = key_type_of(event_class);
        for reg in live(rt).iter() {
            if reg.paused.load(Ordering::Acquire) {
                continue;
            }
            if event == "xadd" && reg.registration.trigger.accepts_stream(key) {
                if !is_primary() {
                    return;
                }
                crate::triggers::streams::on_new_entry(reg, rt, ctx, key);
                continue;
            }
            if in_sync {
                continue;
            }
            if reg
                .registration
                .trigger
                .accepts_key_event(key, event, key_type)
            {
                if !is_primary() {
                    return;
                }
                reg.on_event(
                    rt,
                    ctx,
                    Event::Key {
                        key: key.into(),
                        event: event.to_string(),
                        key_type,
                        snapshot: snapshot_of(reg, rt, ctx, key),
                    },
                );
            }
        }
    }));
}

/// The key's value now, for background registrations that asked for a snapshot.
fn snapshot_of(
    reg: &Registered,
    rt: &Runtime,
    ctx: &Context,
    key: &[u8],
) -> Option<(KeyType, Option<gears_core::host::KeyValue>)> {
    let wants = matches!(
        reg.registration.trigger,
        TriggerSpec::Keys { snapshot: true, .. }
    );
    if !wants || reg.registration.mode == ExecutionMode::Sync {
        return None; // sync executions read at event time anyway
    }
    use gears_core::host::Host;
    rt.host
        .run_inline(ctx, |host| host.read_keys(&[key.into()], true))
        .ok()?
        .pop()
}

/// The registration whose `CommandReader` trigger is `name`.
pub(crate) fn find_trigger(rt: &Runtime, name: &str) -> Option<Arc<Registered>> {
    rt.registrations()
        .iter()
        .find(|r| matches!(&r.registration.trigger, TriggerSpec::Command { trigger, .. } if trigger == name))
        .cloned()
}
