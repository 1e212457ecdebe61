//! What a module built on Gears (a library such as a recipe, with commands of its own) uses
//! of the server, besides its commands' types ([`crate::command`]):
//!
//! - registrations managed by its own commands (for example a recipe's `XYZ.ADD`):
//!   [`register`] a `#[gears::register]` function with ARGS, [`find`], [`unregister`], read
//!   [`stats`], add [`set_status_hook`] pairs to `RG.DUMPREGISTRATIONS`. Same effect as
//!   `RG.REGISTER` / `RG.UNREGISTER`, without replicating anything: the calling command
//!   replicates itself. Registrations made this way are saved with the RDB like any other
//!   (function + ARGS);
//! - its own state in the RDB: an [`AuxField`] ([`add_aux_field`], [`read_legacy_aux_type`]);
//! - server events: [`on_loading_ended`]; a command filter: [`crate::set_write_guard`];
//! - on a cluster: [`cluster_wide_command`], [`fan_out`]; [`redact_argument`] for secrets.
//!
//! Call these from the Redis main thread (a command handler, a server event, `init`).

use std::sync::atomic::Ordering;

use gears_core::error::GearsError;
use gears_core::registry::{self, Built};
use gears_core::trigger::TriggerSpec;

use crate::runtime::runtime;

use redis_module::{Context, RedisResult, RedisValue};

pub use crate::runtime::aux_fields::{add_aux_field, read_legacy_aux_type, AuxField};
pub use crate::runtime::server_events::on_loading_ended;

/// Statistics of one registration (as `RG.DUMPREGISTRATIONS` shows them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistrationStats {
    /// Executions fired.
    pub triggered: u64,
    /// Executions without errors.
    pub success: u64,
    /// Executions with errors.
    pub failures: u64,
    /// The first error of the last failed execution (cleared by a success).
    pub last_error: Option<String>,
    /// `OK`, `PAUSED`, `WAITING_FOR_RETRY_ON_FAILURE` or `ABORTED`.
    pub status: String,
}

fn not_initialised() -> GearsError {
    GearsError::Invalid("Gears is not initialised".into())
}

/// Instantiates registration function `function` with `args`; returns the registration id.
pub fn register(function: &str, args: &[String]) -> Result<String, GearsError> {
    let entry = registry::find(function)
        .ok_or_else(|| GearsError::Invalid(format!("unknown function '{function}'")))?;
    let Built::Registration(registration) = registry::build(function, args)? else {
        return Err(GearsError::Invalid(format!(
            "'{function}' is a flow, not a registration"
        )));
    };
    let rt = runtime().map_err(|_| not_initialised())?;
    if matches!(registration.trigger, TriggerSpec::Stream { .. }) {
        if let Some(existing) = rt.group_in_use(entry.name, args) {
            return Err(GearsError::Invalid(format!(
                "registration {existing} already reads these streams with the same function and ARGS"
            )));
        }
    }
    Ok(rt.add_registration(entry.name, entry.doc, registration, args.to_vec()))
}

/// Drains now what the consumer group of `StreamReader` registration `id` already holds
/// (entries added while the same function and ARGS were not registered), instead of at the
/// next write. On a primary that is not loading (a replica fires nothing; loading ends with
/// a recovery of every stream registration anyway); `false` if `id` is not a live stream
/// registration or nothing was scheduled.
pub fn resume(ctx: &Context, id: &str) -> bool {
    let replica_or_loading = ctx
        .get_flags()
        .intersects(redis_module::ContextFlags::SLAVE | redis_module::ContextFlags::LOADING);
    let Ok(rt) = runtime() else { return false };
    let regs = rt.registrations();
    let Some(reg) = regs.iter().find(|r| r.id == id && r.stream.is_some()) else {
        return false;
    };
    if replica_or_loading {
        return false;
    }
    crate::triggers::streams::schedule_recovery(reg, rt);
    true
}

/// The ids of the live registrations of `function` with exactly these `args`.
pub fn find(function: &str, args: &[String]) -> Vec<String> {
    runtime()
        .map(|rt| {
            rt.registrations()
                .iter()
                .filter(|r| r.function == function && r.args == args)
                .map(|r| r.id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes a registration; `false` if there is none with this id.
pub fn unregister(id: &str) -> bool {
    let Ok(rt) = runtime() else { return false };
    rt.with_registrations_mut(|regs| {
        let before = regs.len();
        regs.retain(|r| {
            let keep = r.id != id;
            if !keep {
                r.retired.store(true, Ordering::Release);
            }
            keep
        });
        regs.len() != before
    })
}

/// The statistics of registration `id`.
pub fn stats(id: &str) -> Option<RegistrationStats> {
    let rt = runtime().ok()?;
    let regs = rt.registrations();
    let reg = regs.iter().find(|r| r.id == id)?;
    let s = reg.stats().clone();
    let status = if reg.paused.load(Ordering::Acquire) {
        "PAUSED"
    } else {
        reg.stream.as_ref().map_or("OK", |c| c.status_name())
    };
    Some(RegistrationStats {
        triggered: s.triggered,
        success: s.success,
        failures: s.failures,
        last_error: s.last_error,
        status: status.to_string(),
    })
}

pub use crate::runtime::hooks::StatusHook;

/// Shows `hook`'s pairs for every registration of `function` in `RG.DUMPREGISTRATIONS` (under
/// `RegistrationData` → `extra`). Call it at module load (`init`).
pub fn set_status_hook(function: &'static str, hook: StatusHook) {
    if let Ok(rt) = runtime() {
        rt.hooks.set_status(function, hook);
    }
}

/// Declares `command` (a module command that changes this shard's state, such as a recipe's
/// `XYZ.ADD`) cluster-wide: [`fan_out`] may apply it on every other master, and a master
/// applies it when another asks. Call it at module load, before the command is used.
pub fn cluster_wide_command(command: &str) {
    crate::runtime::cluster::mgmt::declare_cluster_wide(command);
}

/// After `command` (its name and arguments, as the client sent them) succeeded here with
/// reply `local`: on a Redis Cluster master, applies the same command on every other master
/// (through the command itself, so with its checks, and replicated to that master's replicas)
/// and replies `[[shard id, reply], ...]` (this shard first) once every master answered or
/// `ExecutionMaxIdleTime` passed. Returns `local` unchanged on a standalone server, on a
/// replica, when the command is itself being applied for another master or replayed
/// (replication, AOF), and inside `MULTI`/Lua (where it is still sent to every master, but
/// only this shard's reply is given). `command` must have been declared with
/// [`cluster_wide_command`].
///
/// ```ignore
/// fn my_add(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
///     let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
///     apply_here(&args)?;
///     ctx.replicate_verbatim();
///     gears::api::fan_out(ctx, &args, RedisValue::SimpleStringStatic("OK"))
/// }
/// ```
pub fn fan_out(ctx: &Context, command: &[String], local: RedisValue) -> RedisResult {
    crate::runtime::cluster::mgmt::after_registration_change(ctx, command, local, None)
}

/// Hides argument `pos` (the command name is 0) of the command `ctx` is running from
/// `SLOWLOG` and `MONITOR` (`RM_RedactClientCommandArgument`, Redis 7.0+): they show
/// `(redacted)` instead. What the command replicates (`replicate_verbatim`) and executes is
/// unchanged. Call it from a command handler, for arguments such as credentials; redacting
/// from the handler also covers the command when another master applies it through `RM_Call`.
///
/// Errors (nothing is redacted) when the server lacks the call (before 7.0), when `pos` is 0
/// or past the last argument, or when `ctx` runs no client command.
pub fn redact_argument(ctx: &Context, pos: usize) -> Result<(), GearsError> {
    let refused = || GearsError::Invalid(format!("cannot redact argument {pos}"));
    let pos = std::os::raw::c_int::try_from(pos).map_err(|_| refused())?;
    if pos <= 0 || ctx.ctx.is_null() {
        return Err(refused());
    }
    match crate::ffi::context::redact_client_argument(ctx, pos) {
        None => Err(GearsError::Invalid(
            "this Redis cannot redact command arguments (7.0 or later needed)".into(),
        )),
        Some(true) => Ok(()),
        Some(false) => Err(refused()),
    }
}
