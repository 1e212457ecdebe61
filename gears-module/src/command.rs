//! What a module's own commands are written with (the commands listed in
//! [`export!`](crate::export)'s `commands`, and its `init`), so that a module crate depends on
//! `gears` alone:
//!
//! - the handler's types: [`Context`] (the command's context: `call`, `log_notice`,
//!   `replicate_verbatim`, `create_timer`, ...), [`RedisString`] (an argument), [`RedisValue`]
//!   (a reply), [`RedisError`] (an error reply), [`RedisResult`]; [`Status`] for `init`;
//! - [`Blocked`]: block the client and reply later, from any thread ([`can_block`] first);
//! - [`call_replicated`]: run a Redis command that replicates as the caller's effect.
//!
//! A command is `fn(&Context, Vec<RedisString>) -> RedisResult`; `init` is
//! `fn(&Context, &[RedisString]) -> Status` (it runs after Gears' own initialisation).
//!
//! ```no_run
//! use gears::command::{Context, RedisError, RedisResult, RedisString, RedisValue};
//!
//! /// `HELLO.ECHO <word>`: replies the word.
//! fn hello_echo(_ctx: &Context, args: Vec<RedisString>) -> RedisResult {
//!     let [_, word] = args.as_slice() else {
//!         return Err(RedisError::WrongArity);
//!     };
//!     Ok(RedisValue::BulkString(word.to_string_lossy()))
//! }
//! # let _ = hello_echo;
//! ```

use redis_module::{CallOptionsBuilder, CallResult, ContextFlags, ThreadSafeContext};

pub use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue, Status};

/// Whether the client of the command `ctx` runs can be blocked: not inside `MULTI`, a script,
/// or a context that denies blocking (then a command must answer at once).
pub fn can_block(ctx: &Context) -> bool {
    !ctx.get_flags()
        .intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING)
}

/// Whether the command `ctx` runs was accepted before and is being replayed here: from the
/// master's replication stream, or from the AOF while loading. Checks that need the outside
/// world (a database, a file) belong to the first acceptance, not to the replays (a replica
/// need not reach the database; a restart must not fail on one that is down). A command
/// another master applies here ([`crate::api::fan_out`]) is not a replay: it is checked here.
pub fn is_replayed(ctx: &Context) -> bool {
    ctx.get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
}

/// A client blocked by its command (`RM_BlockClient`) until [`reply`](Self::reply) answers it,
/// from any thread: a worker, a timer, another command. The command that blocked returns
/// `Ok(RedisValue::NoReply)`; the client waits, the server does not.
///
/// Check [`can_block`] before blocking. Dropping a `Blocked` without replying unblocks the
/// client without an answer: always reply once.
///
/// ```no_run
/// use gears::command::{can_block, Blocked, Context, RedisError, RedisResult, RedisString, RedisValue};
///
/// /// `SLOW.PING`: replies `PONG` from another thread.
/// fn slow_ping(ctx: &Context, _args: Vec<RedisString>) -> RedisResult {
///     if !can_block(ctx) {
///         return Err(RedisError::Str("ERR SLOW.PING blocks: not inside MULTI or a script"));
///     }
///     let blocked = Blocked::new(ctx);
///     std::thread::spawn(move || blocked.reply(Ok(RedisValue::SimpleStringStatic("PONG"))));
///     Ok(RedisValue::NoReply)
/// }
/// # let _ = slow_ping;
/// ```
pub struct Blocked(redis_module::BlockedClient);

impl Blocked {
    /// Blocks the client of the command `ctx` runs (call it from that command's handler).
    pub fn new(ctx: &Context) -> Self {
        Self(ctx.block_client())
    }

    /// Sends `reply` to the blocked client and unblocks it.
    pub fn reply(self, reply: RedisResult) {
        ThreadSafeContext::with_blocked_client(self.0).reply(reply);
    }
}

impl std::fmt::Debug for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blocked")
    }
}

/// Runs `command args...` through `RM_Call` as part of the calling command: replicated to
/// replicas and the AOF with it (`!`), errors returned rather than raised (`E`). `Err` holds
/// the error reply's text (`ERR <command> failed` if it is not UTF-8).
///
/// ```no_run
/// # use gears::command::{Context, RedisError, RedisResult, RedisValue};
/// # fn f(ctx: &Context) -> RedisResult {
/// gears::command::call_replicated(ctx, "HSET", &["user:1", "name", "ann"])
///     .map_err(RedisError::String)?;
/// # Ok(RedisValue::NoReply) }
/// ```
pub fn call_replicated(ctx: &Context, command: &str, args: &[&str]) -> Result<(), String> {
    let options = CallOptionsBuilder::new()
        .replicate()
        .errors_as_replies()
        .build();
    let result: CallResult = ctx.call_ext(command, &options, args);
    match result {
        Ok(_) => Ok(()),
        Err(e) => Err(e
            .to_utf8_string()
            .unwrap_or_else(|| format!("ERR {command} failed"))),
    }
}
