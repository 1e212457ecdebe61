//! Calls on the running context: replication and keyspace events.

use std::ffi::CStr;
use std::os::raw::c_int;

use redis_module::{raw, Context, NotifyEvent};

use super::string::{ModuleString, Strings};

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
    // array of strings and its length (`size_t`): `argv` points at `argc` live strings owned
    // by `args`, which Redis only reads (it takes its own references).
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
