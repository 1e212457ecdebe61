//! A library's own state in the RDB, saved inside Gears' `gears-aux` field: one aux field per
//! server, whatever the libraries. A library adds an [`AuxField`] at module load (its `init`):
//! when an RDB is written (`SAVE`, `BGSAVE`, `DEBUG RELOAD`, a replica's full sync, an AOF
//! rewrite with an RDB preamble) Gears calls its `save` and stores the bytes under its name,
//! before Gears' registrations; loading hands the bytes back to its `load` on the main
//! thread, before the registrations are rebuilt (so a registration may depend on what the
//! library loaded). An RDB without the field (written before the library was loaded) calls
//! nothing. The bytes are the library's format: version them if they may change.
//!
//! A library that used to save through a module type of its own can still read RDBs written
//! then: [`read_legacy_aux_type`] declares that type as load-only (it is never written again).

use std::os::raw::c_int;
use std::sync::{OnceLock, RwLock};

use gears_core::error::GearsError;
use redis_module::native_types::RedisType;
use redis_module::{raw, Context};

use crate::runtime::runtime;

/// One library's field in the RDB, saved inside Gears' `gears-aux` aux field (one per server,
/// whatever the libraries). Added with [`add_aux_field`] at module load: when an RDB is
/// written (`SAVE`, `BGSAVE`, `DEBUG RELOAD`, a replica's full sync, an AOF rewrite with an
/// RDB preamble) Gears calls `save` and stores the bytes under `name`, before Gears'
/// registrations; loading hands them back to `load`, before the registrations are rebuilt (a
/// registration may depend on what the library loaded). An RDB without the field calls
/// nothing. The bytes are the library's format: version them if they may change.
///
/// ```no_run
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// static COUNTER: AtomicU64 = AtomicU64::new(0);
///
/// // In the module's `init`:
/// gears::api::add_aux_field(gears::api::AuxField {
///     name: "counter",
///     save: || COUNTER.load(Ordering::Relaxed).to_le_bytes().to_vec(),
///     load: |bytes| {
///         let bytes: [u8; 8] = bytes.try_into().map_err(|_| "not 8 bytes".to_string())?;
///         COUNTER.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
///         Ok(())
///     },
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AuxField {
    /// The field's name, unique per server (the library's name, say).
    pub name: &'static str,
    /// The bytes to save (main thread, while the RDB is written). If it panics, empty bytes
    /// are saved.
    pub save: fn() -> Vec<u8>,
    /// Restores the library's state from saved bytes (main thread, while the RDB loads). An
    /// error (or a panic) makes Redis refuse the RDB, as for any aux field it cannot load; the
    /// error is logged.
    pub load: fn(&[u8]) -> Result<(), String>,
}

/// The fields the libraries added, in the order added; owned by the runtime.
#[derive(Default)]
pub(crate) struct AuxFields(RwLock<Vec<AuxField>>);

impl AuxFields {
    /// Adds `field`; refused if a field of the same name exists.
    pub(crate) fn add(&self, field: AuxField) -> Result<(), GearsError> {
        let mut fields = self.0.write().unwrap_or_else(|p| p.into_inner());
        if fields.iter().any(|f| f.name == field.name) {
            return Err(GearsError::Invalid(format!(
                "RDB aux field '{}' exists",
                field.name
            )));
        }
        fields.push(field);
        Ok(())
    }

    fn find(&self, name: &str) -> Option<AuxField> {
        let fields = self.0.read().unwrap_or_else(|p| p.into_inner());
        fields.iter().find(|f| f.name == name).copied()
    }

    /// Every field's name and bytes, in the order they were added.
    pub(crate) fn save_all(&self) -> Vec<(String, Vec<u8>)> {
        let fields: Vec<AuxField> = self.0.read().unwrap_or_else(|p| p.into_inner()).clone();
        fields
            .iter()
            .map(|f| {
                let bytes = std::panic::catch_unwind(f.save).unwrap_or_default();
                (f.name.to_string(), bytes)
            })
            .collect()
    }

    /// Hands each saved field to its library, in the saved order; a field no loaded library
    /// added is dropped with a warning. Stops at the first error.
    pub(crate) fn load_all(&self, saved: &[(String, Vec<u8>)]) -> Result<(), String> {
        for (name, bytes) in saved {
            match self.find(name) {
                Some(field) => load_one(&field, bytes)?,
                None => redis_module::MODULE_CONTEXT.log_warning(&format!(
                    "gears: RDB field '{name}' of a library that is not loaded dropped"
                )),
            }
        }
        Ok(())
    }
}

/// Saves `field` with every RDB from now on. Call it at module load (`init`). Refused if a
/// field of the same name exists, or before Gears initialised.
pub fn add_aux_field(field: AuxField) -> Result<(), GearsError> {
    let rt = runtime().map_err(|_| GearsError::Invalid("Gears is not initialised".into()))?;
    rt.aux_fields.add(field)
}

fn load_one(field: &AuxField, bytes: &[u8]) -> Result<(), String> {
    match std::panic::catch_unwind(|| (field.load)(bytes)) {
        Ok(result) => result,
        Err(_) => Err("panic caught".into()),
    }
    .map_err(|e| format!("cannot load the RDB field '{}': {e}", field.name))
}

/// Load-only module types (one per slot), each handing its bytes to the field named here.
const LEGACY_SLOTS: usize = 4;
static LEGACY: [OnceLock<&'static str>; LEGACY_SLOTS] = [const { OnceLock::new() }; LEGACY_SLOTS];

type AuxLoad = extern "C" fn(*mut raw::RedisModuleIO, c_int, c_int) -> c_int;
const LEGACY_LOADERS: [AuxLoad; LEGACY_SLOTS] = [
    legacy_load::<0>,
    legacy_load::<1>,
    legacy_load::<2>,
    legacy_load::<3>,
];

extern "C" fn legacy_load<const SLOT: usize>(
    rdb: *mut raw::RedisModuleIO,
    _encver: c_int,
    when: c_int,
) -> c_int {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return raw::REDISMODULE_OK as c_int;
    }
    let Ok(buffer) = raw::load_string_buffer(rdb) else {
        return raw::REDISMODULE_ERR as c_int;
    };
    let loaded = LEGACY[SLOT]
        .get()
        .and_then(|name| runtime().ok()?.aux_fields.find(name))
        .ok_or_else(|| "no field reads this type".to_string())
        .and_then(|field| load_one(&field, buffer.as_ref()));
    match loaded {
        Ok(()) => raw::REDISMODULE_OK as c_int,
        Err(e) => {
            redis_module::MODULE_CONTEXT.log_warning(&format!("gears: {e}"));
            raw::REDISMODULE_ERR as c_int
        }
    }
}

/// Reads RDBs written when the library saved its state through a module type of its own,
/// `type_name` (9 characters), holding one string before the keys: declares that type as
/// load-only and hands its string to the `load` of the field named `field` (added with
/// [`add_aux_field`]; the same bytes the field saves now). The type is never written again:
/// new RDBs carry the state inside `gears-aux`.
///
/// Call it from the module's `init` (Redis creates module types only while the module loads).
/// At most four per server.
pub fn read_legacy_aux_type(
    ctx: &Context,
    type_name: &'static str,
    field: &'static str,
) -> Result<(), GearsError> {
    let refused = |why: &str| GearsError::Invalid(format!("legacy RDB type '{type_name}': {why}"));
    let slot = LEGACY
        .iter()
        .position(|s| s.set(field).is_ok())
        .ok_or_else(|| refused("too many legacy types"))?;
    let methods = crate::runtime::persist::aux_methods(LEGACY_LOADERS[slot], None);
    let ty: &'static RedisType = Box::leak(Box::new(RedisType::new(type_name, 1, methods)));
    ty.create_data_type(ctx.ctx).map_err(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static LOADED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    #[test]
    fn fields_save_and_load_by_name() {
        let fields = AuxFields::default();
        fields
            .add(AuxField {
                name: "test-a",
                save: || vec![1, 0, 255],
                load: |bytes| {
                    LOADED.lock().unwrap().push(bytes.to_vec());
                    Ok(())
                },
            })
            .unwrap();
        fields
            .add(AuxField {
                name: "test-b",
                save: || panic!("cannot save"),
                load: |_| Err("refused".into()),
            })
            .unwrap();
        let twice = fields.add(AuxField {
            name: "test-a",
            save: Vec::new,
            load: |_| Ok(()),
        });
        assert!(twice.unwrap_err().to_string().contains("'test-a' exists"));

        // Saved in the order added; a panicking save saves nothing.
        let saved = fields.save_all();
        let mine: Vec<_> = saved
            .iter()
            .filter(|(n, _)| n.starts_with("test-"))
            .collect();
        assert_eq!(
            mine,
            [
                &("test-a".to_string(), vec![1, 0, 255]),
                &("test-b".to_string(), vec![])
            ]
        );
        // Each field's bytes go back to its own load; an error names the field.
        fields.load_all(&[("test-a".into(), vec![9])]).unwrap();
        assert_eq!(LOADED.lock().unwrap().as_slice(), [vec![9]]);
        let err = fields.load_all(&[("test-b".into(), vec![])]).unwrap_err();
        assert_eq!(err, "cannot load the RDB field 'test-b': refused");
    }
}
