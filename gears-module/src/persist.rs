//! Persistence of runtime registration changes. A `gears-aux` module type saves, as an RDB aux
//! field (before the keys), every registration on this shard — id number, function, ARGS,
//! paused — with the id counter and the load-time functions the module had. Loading rebuilds
//! exactly that list (a load-time registration unregistered before the save stays gone), and
//! registers load-time functions the RDB did not know (a newer module). Used by `SAVE` and
//! restarts, `DEBUG RELOAD`, AOF files with an RDB preamble, and replicas' full syncs; between
//! those, the commands that change registrations are replicated verbatim.
//!
//! Without the module, Redis 7.0 refuses an RDB holding this aux field (7.0 has no
//! `aux_save2`): load the module, or `FLUSHALL` + `SAVE` without registrations to drop it.

use std::os::raw::c_int;
use std::sync::atomic::Ordering;

use redis_module::native_types::RedisType;
use redis_module::raw;

use gears_core::codec::{decode_value, encode_value};
use gears_core::registry::{self, Built, FunctionKind};

use crate::runtime::runtime;

/// The saved state (format version 1).
#[derive(Debug, bincode::Encode, bincode::Decode)]
struct Saved {
    next: u64,
    load_time_functions: Vec<String>,
    registrations: Vec<SavedRegistration>,
}

#[derive(Debug, bincode::Encode, bincode::Decode)]
struct SavedRegistration {
    n: u64,
    function: String,
    args: Vec<String>,
    paused: bool,
}

/// The module type carrying the aux field (never holds keys).
pub static GEARS_AUX: RedisType =
    RedisType::new("gears-aux", 1, aux_only_methods(aux_load, aux_save));

/// The methods of a module type that holds no keys and only saves an RDB aux field before the
/// keyspace (`aux_save_triggers = BEFORE_RDB`): for module state such as registrations or jobs.
///
/// ```ignore
/// pub static MY_AUX: RedisType =
///     RedisType::new("my-aux-01", 1, gears::aux_only_methods(my_aux_load, my_aux_save));
/// ```
pub const fn aux_only_methods(
    load: extern "C" fn(*mut raw::RedisModuleIO, c_int, c_int) -> c_int,
    save: extern "C" fn(*mut raw::RedisModuleIO, c_int),
) -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: None,
        rdb_save: None,
        aof_rewrite: None,
        mem_usage: None,
        digest: None,
        free: None,
        aux_load: Some(load),
        aux_save: Some(save),
        aux_save_triggers: raw::REDISMODULE_AUX_BEFORE_RDB as c_int,
        free_effort: None,
        unlink: None,
        copy: None,
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    }
}

fn load_time_functions() -> Vec<&'static str> {
    registry::functions()
        .into_iter()
        .filter(|f| f.kind == FunctionKind::Registration && !f.takes_args)
        .map(|f| f.name)
        .collect()
}

fn snapshot() -> Option<Vec<u8>> {
    let rt = runtime().ok()?;
    let registrations = rt
        .registrations()
        .iter()
        .map(|r| SavedRegistration {
            n: r.number(),
            function: r.function.to_string(),
            args: r.args.clone(),
            paused: r.paused.load(Ordering::Acquire),
        })
        .collect();
    let saved = Saved {
        next: rt.registration_counter(),
        load_time_functions: load_time_functions()
            .into_iter()
            .map(String::from)
            .collect(),
        registrations,
    };
    encode_value(&saved).ok()
}

extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return;
    }
    let bytes = std::panic::catch_unwind(snapshot)
        .ok()
        .flatten()
        .unwrap_or_default();
    raw::save_slice(rdb, &bytes);
}

extern "C" fn aux_load(rdb: *mut raw::RedisModuleIO, _encver: c_int, when: c_int) -> c_int {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return raw::REDISMODULE_OK as c_int;
    }
    let Ok(buffer) = raw::load_string_buffer(rdb) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let bytes = buffer.as_ref().to_vec();
    match std::panic::catch_unwind(move || restore(&bytes)) {
        Ok(Ok(())) => raw::REDISMODULE_OK as c_int,
        Ok(Err(e)) => {
            redis_module::MODULE_CONTEXT
                .log_warning(&format!("gears: cannot load registrations: {e}"));
            raw::REDISMODULE_ERR as c_int
        }
        Err(_) => raw::REDISMODULE_ERR as c_int,
    }
}

/// Rebuilds the registration list from a saved state.
fn restore(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(()); // saved while the module was not initialised
    }
    let saved: Saved = decode_value(bytes).map_err(|e| e.to_string())?;
    let rt = runtime().map_err(|_| "not initialised".to_string())?;
    rt.clear_registrations(saved.next);
    for reg in &saved.registrations {
        let Some(entry) = registry::find(&reg.function) else {
            redis_module::MODULE_CONTEXT.log_warning(&format!(
                "gears: saved registration {} of unknown function '{}' dropped",
                reg.n, reg.function
            ));
            continue;
        };
        match registry::build(&reg.function, &reg.args) {
            Ok(Built::Registration(registration)) => {
                rt.restore_registration(
                    reg.n,
                    entry.name,
                    entry.doc,
                    registration,
                    reg.args.clone(),
                    reg.paused,
                );
            }
            Ok(_) | Err(_) => redis_module::MODULE_CONTEXT.log_warning(&format!(
                "gears: saved registration {} ({}) cannot be rebuilt; dropped",
                reg.n, reg.function
            )),
        }
    }
    // Load-time registrations of functions the saved state did not know (a newer module).
    for name in load_time_functions() {
        if !saved.load_time_functions.iter().any(|f| f == name) {
            if let (Some(entry), Ok(Built::Registration(registration))) =
                (registry::find(name), registry::build(name, &[]))
            {
                rt.add_registration(entry.name, entry.doc, registration, Vec::new());
            }
        }
    }
    Ok(())
}
