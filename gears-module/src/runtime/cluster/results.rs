//! The initiator's side of `RG.GETRESULTS[BLOCKING]` asked by another master: the results of
//! an execution started here, at once or (blocking) once it finished.

use std::sync::Arc;
use std::time::Duration;

use gears_core::codec::encode_value;
use gears_core::distributed::wire::Body;
use gears_core::execution::{Execution, ExecutionStatus};

use crate::runtime::runtime;

/// How long `RG.GETRESULTSBLOCKING` waits (1.x waits about as long).
pub(crate) const BLOCKING_WAIT: Duration = Duration::from_secs(1000);

/// The results of execution `id` if it finished here: `(results, errors)`, or why not.
pub(crate) type Results = Result<(Vec<gears_core::value::Value>, Vec<String>), String>;

/// The results of execution `id`, listed here.
pub(crate) fn results_of(id: &str) -> Results {
    let rt = runtime().map_err(|e| e.to_string())?;
    let execution = rt
        .executions()
        .get(id)
        .map(|entry| entry.execution.clone())
        .ok_or_else(|| "execution plan does not exist".to_string())?;
    finished_results(&execution)
}

/// Execution `id`, listed here and still running.
pub(crate) fn running(id: &str) -> Option<Arc<Execution>> {
    let rt = runtime().ok()?;
    let executions = rt.executions();
    let execution = &executions.get(id)?.execution;
    (!execution.is_finished()).then(|| execution.clone())
}

/// Answers request `id` of `sender` once `execution` finished (a thread waits, as for a
/// local `RG.GETRESULTSBLOCKING`), sending with the Redis lock.
pub(crate) fn answer_when_finished(sender: &str, id: u64, execution: Arc<Execution>) {
    let sender = sender.to_string();
    let spawned = std::thread::Builder::new()
        .name("gears-wait".into())
        .spawn(move || {
            let results = match execution.wait(BLOCKING_WAIT) {
                Some(_) => finished_results(&execution),
                None => Err("timed out waiting for the execution".into()),
            };
            let result = encode_value(&results).map_err(|e| e.to_string());
            let ctx = redis_module::MODULE_CONTEXT.lock();
            if let Some(c) = super::cluster() {
                c.send(&ctx, &sender, Body::Reply { id, result });
            }
        });
    if let Err(e) = spawned {
        redis_module::MODULE_CONTEXT
            .log_warning(&format!("gears: cannot start a waiting thread: {e}"));
    }
}

fn finished_results(execution: &Execution) -> Results {
    if !execution.is_finished() {
        return Err("execution is still running".into());
    }
    if execution.status() == ExecutionStatus::Aborted {
        return Err("execution was aborted".into());
    }
    let outcome = execution
        .outcome()
        .ok_or_else(|| "execution finished without an outcome".to_string())?;
    Ok((outcome.results.clone(), outcome.errors.clone()))
}
