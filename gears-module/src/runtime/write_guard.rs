//! Write guards: a module can refuse commands before they run (for example a recipe that
//! bounds a backlog). A Redis command filter asks the guard about every command with a key
//! (`argv[1]`); when it answers with a message, the command is replaced by `RG._REFUSED`,
//! which replies `ERR <message>`. The guard must be cheap: it runs for every command.
//! Replicated and AOF commands are filtered too: a guard must only refuse on a primary.

use redis_module::{Context, RedisError, RedisResult, RedisString};

pub use crate::runtime::hooks::WriteGuard;

use crate::ffi::filter::{register_command_filter, CommandFilter, FilterArgs};
use crate::runtime::runtime;

/// Installs the guard (once per server; later calls are ignored). Call it from a module's
/// init (the main thread), which runs after Gears initialised.
pub fn set_write_guard(ctx: &Context, guard: WriteGuard) {
    let Ok(rt) = runtime() else {
        ctx.log_warning("gears: write guard ignored: Gears is not initialised");
        return;
    };
    if rt.hooks.set_guard(guard) {
        register_command_filter::<Guarded>(ctx);
    }
}

/// The command filter asking the guard.
struct Guarded;

impl CommandFilter for Guarded {
    fn filter(args: &mut FilterArgs<'_>) {
        let Some(guard) = runtime().ok().and_then(|rt| rt.hooks.guard()) else {
            return;
        };
        if args.count() < 2 {
            return;
        }
        let (Some(cmd), Some(key)) = (args.get(0), args.get(1)) else {
            return;
        };
        if let Some(message) = guard(cmd, key) {
            args.replace(0, b"RG._REFUSED");
            args.replace(1, message.as_bytes());
        }
    }
}

/// `RG._REFUSED <message> ...`: the command a refused one became.
pub fn rg_refused(_: &Context, args: Vec<RedisString>) -> RedisResult {
    let message = args
        .get(1)
        .map(|m| m.to_string_lossy())
        .unwrap_or_else(|| "refused".into());
    Err(RedisError::String(format!("ERR {message}")))
}
