//! Command filters (`RedisModule_RegisterCommandFilter`): a filter sees the arguments of every
//! command before it runs and may replace them. The filter is a [`CommandFilter`], called with
//! [`FilterArgs`] that live for the call only: an argument it reads cannot be kept.

use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use redis_module::{raw, Context};

use super::string::bytes;

/// A command filter: one function, run for every command (so it must be cheap). A panic in
/// it is caught at the boundary, and the command runs as it came.
pub(crate) trait CommandFilter {
    /// Looks at (and may replace) the arguments of one command.
    fn filter(args: &mut FilterArgs<'_>);
}

/// Registers `F` as a command filter of the module. Call it on the main thread, from the
/// module's init. `false` if Redis refused or lacks the call.
pub(crate) fn register_command_filter<F: CommandFilter>(ctx: &Context) -> bool {
    // SAFETY: reading a function pointer of the module API (see the module notes).
    let Some(register) = (unsafe { raw::RedisModule_RegisterCommandFilter }) else {
        return false;
    };
    // SAFETY: `ctx` is the live context of the module's init, on the main thread; the callback
    // is an `extern "C"` function that lives as long as the module.
    !unsafe { register(ctx.ctx, Some(run::<F>), 0) }.is_null()
}

/// `RedisModuleCommandFilterFunc`: runs `F` on one command.
///
/// # Safety
/// Only for Redis, with the live filter context of the command being filtered.
unsafe extern "C" fn run<F: CommandFilter>(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    let Some(fctx) = NonNull::new(fctx) else {
        return;
    };
    let mut args = FilterArgs {
        fctx,
        _call: PhantomData,
    };
    let _ = catch_unwind(AssertUnwindSafe(|| F::filter(&mut args)));
}

/// The arguments of the command a filter runs for (the command name is argument 0), lent for
/// the filter's call.
pub(crate) struct FilterArgs<'call> {
    fctx: NonNull<raw::RedisModuleCommandFilterCtx>,
    _call: PhantomData<&'call mut raw::RedisModuleCommandFilterCtx>,
}

impl FilterArgs<'_> {
    /// How many arguments the command has (0 for a Redis without the call).
    #[inline]
    pub(crate) fn count(&self) -> usize {
        // SAFETY: reading a function pointer of the module API.
        let Some(count) = (unsafe { raw::RedisModule_CommandFilterArgsCount }) else {
            return 0;
        };
        // SAFETY: `self.fctx` is the filter context Redis passed to `run`, live for the call
        // `self` is lent for.
        let n = unsafe { count(self.fctx.as_ptr()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Argument `i`'s bytes; `None` past the last one. Borrowed from `self`: the slice is gone
    /// before the arguments can change ([`FilterArgs::replace`] takes `&mut self`).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let i = c_int::try_from(i).ok()?;
        // SAFETY: reading a function pointer of the module API.
        let get = unsafe { raw::RedisModule_CommandFilterArgGet }?;
        // SAFETY: `self.fctx` is live for the call; Redis returns null for a position past the
        // last argument.
        let s = unsafe { get(self.fctx.as_ptr(), i) };
        if s.is_null() {
            return None;
        }
        // SAFETY: `s` belongs to the command's argument vector, which only changes through
        // `replace` (`&mut self`, so not while the returned borrow of `self` lives) and lives
        // for the whole call.
        Some(unsafe { bytes(s) })
    }

    /// Replaces argument `i` with `text`; `false` past the last argument (or when Redis could
    /// not make the string).
    #[inline]
    pub(crate) fn replace(&mut self, i: usize, text: &[u8]) -> bool {
        let Ok(i) = c_int::try_from(i) else {
            return false;
        };
        // SAFETY: copying function pointers of the module API.
        let (create, replace, free) = unsafe {
            (
                raw::RedisModule_CreateString,
                raw::RedisModule_CommandFilterArgReplace,
                raw::RedisModule_FreeString,
            )
        };
        let (Some(create), Some(replace)) = (create, replace) else {
            return false;
        };
        // SAFETY: a null context makes a string the module owns; the pointer and length
        // describe `text`, which Redis copies.
        let s = unsafe { create(ptr::null_mut(), text.as_ptr().cast::<c_char>(), text.len()) };
        if s.is_null() {
            return false;
        }
        // SAFETY: `self.fctx` is live for the call; on success Redis takes `s` (and releases
        // the argument it replaces, which no borrow of `self` can still point at).
        let status = unsafe { replace(self.fctx.as_ptr(), i, s) };
        if status == raw::REDISMODULE_OK as c_int {
            return true;
        }
        if let Some(free) = free {
            // SAFETY: Redis refused `s`, so it is still ours, released once, here.
            unsafe { free(ptr::null_mut(), s) };
        }
        false
    }
}
