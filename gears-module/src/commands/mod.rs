//! Command handlers. Every handler runs inside [`guard`]: a panic becomes an error reply,
//! never a crash of redis-server.

pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod executions;
pub(crate) mod functions;
pub(crate) mod registrations;
pub(crate) mod run;

use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::{Context, RedisError, RedisResult, RedisString};

/// Runs a handler, turning a panic into an error reply. Arguments (function names, `ARGS`,
/// trigger arguments) are text: one that is not UTF-8 is refused, never altered.
pub(crate) fn guard(
    ctx: &Context,
    args: Vec<RedisString>,
    handler: fn(&Context, Vec<String>) -> RedisResult,
) -> RedisResult {
    let args = text_args(&args)?;
    catch_unwind(AssertUnwindSafe(|| handler(ctx, args))).unwrap_or_else(|_| {
        Err(RedisError::Str(
            "ERR internal error in Gears (panic caught); see the server log",
        ))
    })
}

/// The arguments as text; the first that is not UTF-8 is an error naming it.
fn text_args(args: &[RedisString]) -> Result<Vec<String>, RedisError> {
    args.iter()
        .enumerate()
        .map(|(i, a)| match std::str::from_utf8(a.as_slice()) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(RedisError::String(format!(
                "ERR argument {i} is not UTF-8: Gears command arguments are text (binary keys \
                 and values reach flows through their readers' records)"
            ))),
        })
        .collect()
}

/// Exported command entry points (the `gears::export!` macro registers these).
pub mod entry {
    use redis_module::{Context, RedisResult, RedisString};

    use super::guard;

    macro_rules! entries {
        ($($name:ident => $path:path),* $(,)?) => {$(
            #[doc = concat!("Entry point of `", stringify!($name), "`.")]
            pub fn $name(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
                guard(ctx, args, $path)
            }
        )*};
    }

    entries! {
        rg_run => super::run::rg_run,
        rg_getresults => super::executions::rg_getresults,
        rg_getresultsblocking => super::executions::rg_getresultsblocking,
        rg_getexecution => super::executions::rg_getexecution,
        rg_dumpexecutions => super::executions::rg_dumpexecutions,
        rg_dropexecution => super::executions::rg_dropexecution,
        rg_abortexecution => super::executions::rg_abortexecution,
        rg_dumpfunctions => super::functions::rg_dumpfunctions,
        rg_configget => super::config::rg_configget,
        rg_configset => super::config::rg_configset,
        rg_infocluster => super::cluster::rg_infocluster,
        rg_refreshcluster => super::cluster::rg_refreshcluster,
        rg_innertestmsg => super::cluster::rg_innertestmsg,
        rg_trigger => super::registrations::rg_trigger,
        rg_triggeronkey => super::registrations::rg_triggeronkey,
        rg_dumpregistrations => super::registrations::rg_dumpregistrations,
        rg_unregister => super::registrations::rg_unregister,
        rg_pauseregistrations => super::registrations::rg_pauseregistrations,
        rg_unpauseregistrations => super::registrations::rg_unpauseregistrations,
        rg_clearregistrationsstats => super::registrations::rg_clearregistrationsstats,
        rg_register => super::registrations::rg_register,
        rg_innerregister => super::registrations::rg_innerregister,
    }
}
