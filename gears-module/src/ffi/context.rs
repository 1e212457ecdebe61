//! The running context: lent to code that has no `&Context` in hand ([`lend`], [`with_lent`]),
//! and the calls made on it here (replication, keyspace events).

use std::cell::Cell;
use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr;

use redis_module::{raw, Context, NotifyEvent};

use super::string::{ModuleString, Strings};

thread_local! {
    /// The context [`lend`] lends on this thread; null outside one.
    static LENT: Cell<*mut raw::RedisModuleCtx> = const { Cell::new(ptr::null_mut()) };
}

/// Runs `f` with `ctx` lent to [`with_lent`] on this thread: for code that runs inside the
/// command or callback `ctx` belongs to but is reached through the engine (a `sync`
/// execution's host). The context lent before, if any, is lent again after `f`, a panic
/// included, so a context is never lent past the borrow of it.
pub(crate) fn lend<R>(ctx: &Context, f: impl FnOnce() -> R) -> R {
    struct Restore(*mut raw::RedisModuleCtx);
    impl Drop for Restore {
        fn drop(&mut self) {
            LENT.with(|lent| lent.set(self.0));
        }
    }
    let _restore = Restore(LENT.with(|lent| lent.replace(ctx.ctx)));
    f()
}

/// Runs `f` with the context lent on this thread by [`lend`], `None` outside one (or on
/// another thread).
#[inline]
pub(crate) fn with_lent<R>(f: impl FnOnce(Option<&Context>) -> R) -> R {
    let ctx = LENT.with(Cell::get);
    if ctx.is_null() {
        f(None)
    } else {
        f(Some(&Context::new(ctx)))
    }
}

/// Replicates `command` with the arguments `args` to the replicas and the AOF, after the
/// running command (`RedisModule_Replicate`, format `v`). `false` when a slot of `args` is
/// empty, or Redis refuses (an unknown command, a wrong argument count).
#[inline]
pub(crate) fn replicate(ctx: &Context, command: &CStr, args: &Strings) -> bool {
    // SAFETY: reading a function pointer of the module API (see the module notes).
    let Some(replicate) = (unsafe { raw::RedisModule_Replicate }) else {
        return false;
    };
    let Some((argv, argc)) = args.filled() else {
        return false;
    };
    const FORMAT: &CStr = c"v";
    // SAFETY: `ctx` is a live context whose lock this thread holds; the `v` format takes an
    // array of strings and its length (`size_t`): `argv` points at the `argc` filled slots of
    // `args`, each laid out as a `RedisModuleString *` to a live string (see `Strings`), which
    // Redis only reads (it takes its own references).
    let status = unsafe { replicate(ctx.ctx, command.as_ptr(), FORMAT.as_ptr(), argv, argc) };
    status == raw::REDISMODULE_OK as c_int
}

/// Raises keyspace event `event` of class `class` on `key` (`RedisModule_NotifyKeyspaceEvent`).
#[inline]
pub(crate) fn notify_keyspace_event(
    ctx: &Context,
    class: NotifyEvent,
    event: &CStr,
    key: &ModuleString,
) -> bool {
    // SAFETY: reading a function pointer of the module API.
    let Some(notify) = (unsafe { raw::RedisModule_NotifyKeyspaceEvent }) else {
        return false;
    };
    // SAFETY: `ctx` is a live context whose lock this thread holds; `event` is NUL-terminated
    // and `key` a live string, both only read during the call.
    let status = unsafe { notify(ctx.ctx, class.bits(), event.as_ptr(), key.as_ptr()) };
    status == raw::REDISMODULE_OK as c_int
}

/// `RM_RedactClientCommandArgument`: shows argument `pos` of the running client command as
/// `(redacted)` in the slow log and `MONITOR`. `None` when the server lacks the call (before
/// 7.0), else whether Redis accepted `pos`.
pub(crate) fn redact_client_argument(ctx: &Context, pos: c_int) -> Option<bool> {
    // SAFETY: reading a function pointer filled once by RedisModule_Init.
    let redact = unsafe { raw::RedisModule_RedactClientCommandArgument }?;
    // SAFETY: `ctx.ctx` is the live context of the command being run (the caller's handler
    // holds `ctx`), on the main thread; Redis checks `pos` against the client's argc and that
    // the context has a client, returning REDISMODULE_ERR otherwise.
    let status = unsafe { redact(ctx.ctx, pos) };
    Some(status == raw::REDISMODULE_OK as c_int)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context value that is only compared, never passed to Redis.
    fn fake(n: usize) -> Context {
        Context::new(ptr::without_provenance_mut(0x1000 + n))
    }

    fn lent() -> Option<*mut raw::RedisModuleCtx> {
        with_lent(|ctx| ctx.map(|c| c.ctx))
    }

    #[test]
    fn a_context_is_lent_for_the_call_only_and_nested_lends_restore() {
        let (outer, inner) = (fake(0), fake(1));
        assert_eq!(lent(), None);
        lend(&outer, || {
            assert_eq!(lent(), Some(outer.ctx));
            lend(&inner, || assert_eq!(lent(), Some(inner.ctx)));
            assert_eq!(lent(), Some(outer.ctx));
            let elsewhere = std::thread::spawn(|| lent().is_some()).join().unwrap();
            assert!(!elsewhere, "lent on this thread only");
        });
        assert_eq!(lent(), None);
    }

    #[test]
    fn a_panic_ends_the_lend() {
        let ctx = fake(2);
        let caught = std::panic::catch_unwind(|| lend(&ctx, || panic!("in the callback")));
        assert!(caught.is_err());
        assert_eq!(lent(), None);
    }
}
