//! Persistence of runtime registration changes. A `gears-aux` module type saves, as an RDB aux
//! field (before the keys), the libraries' own fields ([`crate::runtime::aux_fields`]), then every
//! registration on this shard — id, function, ARGS, paused — with the id counter and
//! the load-time functions the module had. Loading hands the fields back first. Loading rebuilds
//! exactly that list (a load-time registration unregistered before the save stays gone), and
//! registers load-time functions the RDB did not know (a newer module). Used by `SAVE` and
//! restarts, `DEBUG RELOAD`, AOF files with an RDB preamble, and replicas' full syncs; between
//! those, the commands that change registrations are replicated verbatim.
//!
//! Without the module, Redis 7.0 refuses an RDB holding this aux field (7.0 has no
//! `aux_save2`): load the module, or `FLUSHALL` + `SAVE` without registrations to drop it.
//!
//! Format versions (the type's encoding version): 1 held the registrations only, by id
//! number; 2 holds the fields, then the same registrations; 3 (written now) keeps each
//! registration's whole id, so a replica or a restarted node has the ids its master or the
//! registration's origin gave (a replicated `RG.UNREGISTER <id>` finds them). All three load;
//! numbers of 1 and 2 become `<this shard>-<n>`, as they were.

use std::os::raw::c_int;
use std::sync::atomic::Ordering;

use redis_module::native_types::RedisType;
use redis_module::raw;

use gears_core::codec::{decode_value, encode_value};
use gears_core::registry::{self, Built, FunctionKind};

use crate::runtime::runtime;

/// What versions 2 and 3 save: the libraries' fields (name, bytes), then the registrations
/// (`R`: [`SavedRegistration`] in 3, [`NumberedRegistration`] in 2).
#[derive(Debug, bincode::Encode, bincode::Decode)]
struct SavedWithFields<R> {
    fields: Vec<(String, Vec<u8>)>,
    gears: Saved<R>,
}

/// The registrations with the id counter and the load-time functions of the module.
#[derive(Debug, bincode::Encode, bincode::Decode)]
struct Saved<R> {
    next: u64,
    load_time_functions: Vec<String>,
    registrations: Vec<R>,
}

/// One registration (format version 3).
#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
struct SavedRegistration {
    id: String,
    function: String,
    args: Vec<String>,
    paused: bool,
}

/// One registration of format versions 1 and 2: its id was `<shard>-<n>`.
#[derive(Debug, bincode::Encode, bincode::Decode)]
struct NumberedRegistration {
    n: u64,
    function: String,
    args: Vec<String>,
    paused: bool,
}

impl NumberedRegistration {
    fn with_shard(self, shard: &str) -> SavedRegistration {
        SavedRegistration {
            id: format!("{shard}-{}", self.n),
            function: self.function,
            args: self.args,
            paused: self.paused,
        }
    }
}

/// The format version written (see the module page).
const ENCODING_VERSION: c_int = 3;

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
            id: r.id.clone(),
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
    let fields = rt.aux_fields.save_all();
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

/// Decodes a saved state of format version `encver`: the fields and the registrations, ids
/// of the older versions made from `shard` (this node's shard id).
fn decode(
    encver: c_int,
    bytes: &[u8],
    shard: &str,
) -> Result<SavedWithFields<SavedRegistration>, String> {
    let numbered = |fields, saved: Saved<NumberedRegistration>| SavedWithFields {
        fields,
        gears: Saved {
            next: saved.next,
            load_time_functions: saved.load_time_functions,
            registrations: (saved.registrations.into_iter())
                .map(|r| r.with_shard(shard))
                .collect(),
        },
    };
    match encver {
        1 => decode_value(bytes).map(|saved| numbered(Vec::new(), saved)),
        2 => decode_value(bytes).map(|v: SavedWithFields<_>| numbered(v.fields, v.gears)),
        3 => decode_value(bytes),
        v => return Err(format!("unknown format version {v}")),
    }
    .map_err(|e| e.to_string())
}

/// Hands the libraries their fields, then rebuilds the registration list.
fn restore(encver: c_int, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(()); // saved while the module was not initialised
    }
    let rt = runtime().map_err(|_| "cannot load registrations: not initialised".to_string())?;
    let SavedWithFields {
        fields,
        gears: saved,
    } = decode(encver, bytes, &rt.shard.0)
        .map_err(|e| format!("cannot load registrations: {e}"))?;
    rt.aux_fields.load_all(&fields)?;
    rt.clear_registrations(saved.next);
    for reg in &saved.registrations {
        let Some(entry) = registry::find(&reg.function) else {
            redis_module::MODULE_CONTEXT.log_warning(&format!(
                "gears: saved registration {} of unknown function '{}' dropped",
                reg.id, reg.function
            ));
            continue;
        };
        match registry::build(&reg.function, &reg.args) {
            Ok(Built::Registration(registration)) => {
                rt.insert_registration(
                    reg.id.clone(),
                    entry.name,
                    entry.doc,
                    registration,
                    reg.args.clone(),
                    reg.paused,
                );
            }
            Ok(_) | Err(_) => redis_module::MODULE_CONTEXT.log_warning(&format!(
                "gears: saved registration {} ({}) cannot be rebuilt; dropped",
                reg.id, reg.function
            )),
        }
    }
    // Load-time registrations of functions the saved state did not know (a newer module).
    for name in load_time_functions() {
        if !saved.load_time_functions.iter().any(|f| f == name) {
            if let (Some(entry), Ok(Built::Registration(registration))) =
                (registry::find(name), registry::build(name, &[]))
            {
                rt.add_load_time_registration(entry.name, entry.doc, registration);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered() -> Saved<NumberedRegistration> {
        Saved {
            next: 7,
            load_time_functions: vec!["f".into()],
            registrations: vec![NumberedRegistration {
                n: 3,
                function: "g".into(),
                args: vec!["a".into()],
                paused: true,
            }],
        }
    }

    fn with_id(id: &str) -> SavedRegistration {
        SavedRegistration {
            id: id.into(),
            function: "g".into(),
            args: vec!["a".into()],
            paused: true,
        }
    }

    #[test]
    fn every_format_version_decodes() {
        // Version 1: the registrations only, by number: the id gets this shard's prefix.
        let v1 = decode(1, &encode_value(&numbered()).unwrap(), "s").unwrap();
        assert!(v1.fields.is_empty());
        assert_eq!(v1.gears.next, 7);
        assert_eq!(v1.gears.registrations, [with_id("s-3")]);
        // Version 2: the fields, then the same registrations.
        let fields = vec![("lib".to_string(), vec![0u8, 1, 255])];
        let bytes = encode_value(&SavedWithFields {
            fields: fields.clone(),
            gears: numbered(),
        })
        .unwrap();
        let v2 = decode(2, &bytes, "s").unwrap();
        assert_eq!(v2.fields, fields);
        assert_eq!(v2.gears.registrations, [with_id("s-3")]);
        // Version 3: whole ids, whatever this node's shard id.
        let origin = format!("{}-3", "a".repeat(40));
        let v3_bytes = encode_value(&SavedWithFields {
            fields: fields.clone(),
            gears: Saved {
                next: 7,
                load_time_functions: vec!["f".into()],
                registrations: vec![with_id(&origin)],
            },
        })
        .unwrap();
        let v3 = decode(ENCODING_VERSION, &v3_bytes, "s").unwrap();
        assert_eq!(v3.fields, fields);
        assert_eq!(v3.gears.registrations, [with_id(&origin)]);
        // A version-2 state is not read as version 1, nor an unknown version at all.
        assert!(decode(1, &bytes, "s").is_err());
        assert!(decode(4, &bytes, "s").unwrap_err().contains("version 4"));
    }
}
