//! The `gears` section of `INFO` (shown as `<module>_gears`; `INFO <module>` lists it).

use std::sync::atomic::Ordering;

use redis_module::{InfoContext, RedisResult};

use crate::runtime::runtime;

pub(crate) fn gears_info(ctx: &InfoContext, for_crash_report: bool) -> RedisResult<()> {
    // A crash report must not wait on a lock the crashing thread may hold.
    if for_crash_report {
        return Ok(());
    }
    let Ok(rt) = runtime() else {
        return Ok(());
    };
    let (running, listed) = {
        let executions = rt.executions();
        (
            executions
                .iter()
                .filter(|e| !e.execution.is_finished())
                .count(),
            executions.len(),
        )
    };
    let threads = rt.config().execution_threads;
    ctx.builder()
        .add_section("gears")
        .field("executions_listed", listed as i64)?
        .field("executions_running", running as i64)?
        .field(
            "executions_total",
            rt.executions_total.load(Ordering::Relaxed),
        )?
        .field("functions", gears_core::registry::functions().len() as i64)?
        .field("execution_threads", threads as i64)?
        .build_section()?
        .build_info()?;
    Ok(())
}

#[linkme::distributed_slice(redis_module::server_events::INFO_COMMAND_HANDLER_LIST)]
static GEARS_INFO: fn(&InfoContext, bool) -> RedisResult<()> = gears_info;
