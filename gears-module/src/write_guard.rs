//! Write guards: a module can refuse commands before they run (for example a recipe that
//! bounds a backlog). A Redis command filter asks the guard about every command with a key
//! (`argv[1]`); when it answers with a message, the command is replaced by `RG._REFUSED`,
//! which replies `ERR <message>`. The guard must be cheap: it runs for every command.
//! Replicated and AOF commands are filtered too: a guard must only refuse on a primary.

use std::sync::OnceLock;

use redis_module::{raw, Context, RedisError, RedisResult, RedisString};

/// Decides about one command: `Some(message)` refuses it.
pub type WriteGuard = fn(command: &[u8], key: &[u8]) -> Option<String>;

static GUARD: OnceLock<WriteGuard> = OnceLock::new();

/// Installs the guard (once per server; later calls are ignored). Call it from a module's
/// init (the main thread).
pub fn set_write_guard(ctx: &Context, guard: WriteGuard) {
    if GUARD.set(guard).is_err() {
        return;
    }
    // SAFETY: called on the main thread during module init with a valid context; the
    // callback is an `extern "C"` function living as long as the module.
    #[allow(unsafe_code)]
    unsafe {
        if let Some(register) = raw::RedisModule_RegisterCommandFilter {
            register(ctx.ctx, Some(filter), 0);
        }
    }
}

fn arg(fctx: *mut raw::RedisModuleCommandFilterCtx, i: i32) -> Option<&'static [u8]> {
    // SAFETY: `fctx` is the live filter context Redis passed to `filter`; the returned string
    // belongs to the command's argv, valid for the duration of the callback, which is how long
    // the slice is used.
    #[allow(unsafe_code)]
    unsafe {
        let s = raw::RedisModule_CommandFilterArgGet?(fctx, i);
        if s.is_null() {
            return None;
        }
        let mut len = 0usize;
        let p = raw::RedisModule_StringPtrLen?(s, &mut len);
        if p.is_null() {
            return None;
        }
        Some(std::slice::from_raw_parts(p.cast::<u8>(), len))
    }
}

fn replace(fctx: *mut raw::RedisModuleCommandFilterCtx, i: i32, text: &str) {
    // SAFETY: as in `arg`; `ArgReplace` takes ownership of the new string, created without a
    // context (not auto-freed).
    #[allow(unsafe_code)]
    unsafe {
        if let (Some(create), Some(replace)) = (
            raw::RedisModule_CreateString,
            raw::RedisModule_CommandFilterArgReplace,
        ) {
            let s = create(std::ptr::null_mut(), text.as_ptr().cast(), text.len());
            replace(fctx, i, s);
        }
    }
}

extern "C" fn filter(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    let _ = std::panic::catch_unwind(|| {
        let Some(guard) = GUARD.get() else { return };
        // SAFETY: `fctx` is valid during the callback.
        #[allow(unsafe_code)]
        let argc = unsafe {
            match raw::RedisModule_CommandFilterArgsCount {
                Some(count) => count(fctx),
                None => return,
            }
        };
        if argc < 2 {
            return;
        }
        let (Some(cmd), Some(key)) = (arg(fctx, 0), arg(fctx, 1)) else {
            return;
        };
        if let Some(message) = guard(cmd, key) {
            replace(fctx, 0, "RG._REFUSED");
            replace(fctx, 1, &message);
        }
    });
}

/// `RG._REFUSED <message> ...`: the command a refused one became.
pub fn rg_refused(_: &Context, args: Vec<RedisString>) -> RedisResult {
    let message = args
        .get(1)
        .map(|m| m.to_string_lossy())
        .unwrap_or_else(|| "refused".into());
    Err(RedisError::String(format!("ERR {message}")))
}
