//! Persistence of runtime registration changes. A `gears-aux` module type saves, as an RDB aux
//! field (before the keys), the libraries' own fields ([`crate::runtime::aux_fields`]), then every
//! registration on this shard — id number, function, ARGS, paused — with the id counter and
//! the load-time functions the module had. Loading hands the fields back first. Loading rebuilds
//! exactly that list (a load-time registration unregistered before the save stays gone), and
//! registers load-time functions the RDB did not know (a newer module). Used by `SAVE` and
//! restarts, `DEBUG RELOAD`, AOF files with an RDB preamble, and replicas' full syncs; between
//! those, the commands that change registrations are replicated verbatim.
//!
//! Without the module, Redis 7.0 refuses an RDB holding this aux field (7.0 has no
//! `aux_save2`): load the module, or `FLUSHALL` + `SAVE` without registrations to drop it.
//!
//! Format versions (the type's encoding version): 1 held the registrations only; 2 (written
//! now) holds the fields, then the same registrations. Both load.

use std::os::raw::c_int;
use std::sync::atomic::Ordering;

use redis_module::native_types::RedisType;
use redis_module::raw;

use gears_core::codec::{decode_value, encode_value};
use gears_core::registry::{self, Built, FunctionKind};

use crate::runtime::runtime;

/// What version 2 saves: the libraries' fields (name, bytes), then the registrations.
#[derive(Debug, bincode::Encode, bincode::Decode)]
struct SavedWithFields {
    fields: Vec<(String, Vec<u8>)>,
    gears: Saved,
}

/// The registrations (all of format version 1).
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

/// The format version written (see the module page).
const ENCODING_VERSION: c_int = 2;

/// The module type carrying the aux field (never holds keys).
pub static GEARS_AUX: RedisType = RedisType::new(
    "gears-aux",
    ENCODING_VERSION,
    aux_methods(aux_load, Some(aux_save)),
);

/// The methods of a module type that holds no keys, only an RDB aux field before the keyspace:
/// saved there (`aux_save_triggers = BEFORE_RDB`) if `save` is given, else only loaded (a
/// legacy type, [`crate::runtime::aux_fields::read_legacy_aux_type`]).
pub(crate) const fn aux_methods(
    load: extern "C" fn(*mut raw::RedisModuleIO, c_int, c_int) -> c_int,
    save: Option<extern "C" fn(*mut raw::RedisModuleIO, c_int)>,
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
        aux_save: match save {
            Some(save) => Some(save),
            None => None,
        },
        aux_save_triggers: if save.is_some() {
            raw::REDISMODULE_AUX_BEFORE_RDB as c_int
        } else {
            0
        },
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
    let gears = Saved {
        next: rt.registration_counter(),
        load_time_functions: load_time_functions()
            .into_iter()
            .map(String::from)
            .collect(),
        registrations,
    };
    let fields = crate::runtime::aux_fields::save_all();
    encode_value(&SavedWithFields { fields, gears }).ok()
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

extern "C" fn aux_load(rdb: *mut raw::RedisModuleIO, encver: c_int, when: c_int) -> c_int {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return raw::REDISMODULE_OK as c_int;
    }
    let Ok(buffer) = raw::load_string_buffer(rdb) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let bytes = buffer.as_ref().to_vec();
    match std::panic::catch_unwind(move || restore(encver, &bytes)) {
        Ok(Ok(())) => raw::REDISMODULE_OK as c_int,
        Ok(Err(e)) => {
            redis_module::MODULE_CONTEXT.log_warning(&format!("gears: {e}"));
            raw::REDISMODULE_ERR as c_int
        }
        Err(_) => raw::REDISMODULE_ERR as c_int,
    }
}

/// Decodes a saved state of format version `encver`: the fields and the registrations.
fn decode(encver: c_int, bytes: &[u8]) -> Result<SavedWithFields, String> {
    match encver {
        1 => decode_value(bytes).map(|gears| SavedWithFields {
            fields: Vec::new(),
            gears,
        }),
        2 => decode_value(bytes),
        v => return Err(format!("unknown format version {v}")),
    }
    .map_err(|e| e.to_string())
}

/// Hands the libraries their fields, then rebuilds the registration list.
fn restore(encver: c_int, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(()); // saved while the module was not initialised
    }
    let SavedWithFields {
        fields,
        gears: saved,
    } = decode(encver, bytes).map_err(|e| format!("cannot load registrations: {e}"))?;
    crate::runtime::aux_fields::load_all(&fields)?;
    let rt = runtime().map_err(|_| "cannot load registrations: not initialised".to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> Saved {
        Saved {
            next: 7,
            load_time_functions: vec!["f".into()],
            registrations: vec![SavedRegistration {
                n: 3,
                function: "g".into(),
                args: vec!["a".into()],
                paused: true,
            }],
        }
    }

    #[test]
    fn both_format_versions_decode() {
        // Version 1: the registrations only, no fields.
        let v1 = decode(1, &encode_value(&saved()).unwrap()).unwrap();
        assert!(v1.fields.is_empty());
        assert_eq!(v1.gears.next, 7);
        assert_eq!(v1.gears.registrations[0].function, "g");
        // Version 2: the fields, then the same registrations.
        let fields = vec![("lib".to_string(), vec![0u8, 1, 255])];
        let bytes = encode_value(&SavedWithFields {
            fields: fields.clone(),
            gears: saved(),
        })
        .unwrap();
        let v2 = decode(ENCODING_VERSION, &bytes).unwrap();
        assert_eq!(v2.fields, fields);
        assert!(v2.gears.registrations[0].paused);
        // A version-2 state is not read as version 1, nor an unknown version at all.
        assert!(decode(1, &bytes).is_err());
        assert!(decode(3, &bytes).unwrap_err().contains("version 3"));
    }
}
