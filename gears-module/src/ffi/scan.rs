//! Keyspace and key scans through the module API: `RedisModule_Scan` lends each key already
//! opened, `RedisModule_ScanKey` walks the fields of a hash (or the members of a set or sorted
//! set). The callbacks are closures that see each key or field only while Redis lends it; a
//! panic in one is caught at the boundary and reported in the [`Step`].

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use redis_module::{raw, Context};

use super::key::KeyRef;
use super::string::bytes;

/// A `RedisModuleScanCursor`, destroyed on drop. Owning one proves this Redis has the calls of
/// the scans ([`ScanCursor::new`] checks them).
pub(crate) struct ScanCursor(NonNull<raw::RedisModuleScanCursor>);

// SAFETY: a scan cursor is a small heap object owned by exactly one `ScanCursor`, with no tie
// to the thread that made it; it is only passed to the module API by the thread that owns the
// `ScanCursor` (it is not `Sync`, and the scans take it by `&mut`), with the Redis lock held,
// and destroyed once (`RedisModule_ScanCursorDestroy` only frees memory).
unsafe impl Send for ScanCursor {}

impl ScanCursor {
    /// A cursor at the start; `None` if Redis could not make one or lacks a call of the scans
    /// (`Scan`, `ScanKey`, `StringPtrLen`, `KeyType`, `GetExpire`).
    pub(crate) fn new() -> Option<Self> {
        // SAFETY: copying function pointers of the module API (see the module notes).
        let (create, scan, scan_key, ptr_len, key_type, expire) = unsafe {
            (
                raw::RedisModule_ScanCursorCreate,
                raw::RedisModule_Scan,
                raw::RedisModule_ScanKey,
                raw::RedisModule_StringPtrLen,
                raw::RedisModule_KeyType,
                raw::RedisModule_GetExpire,
            )
        };
        if scan.is_none()
            || scan_key.is_none()
            || ptr_len.is_none()
            || key_type.is_none()
            || expire.is_none()
        {
            return None;
        }
        // SAFETY: `ScanCursorCreate` only allocates a cursor.
        NonNull::new(unsafe { create?() }).map(Self)
    }

    /// Back to the start (`RedisModule_ScanCursorRestart`).
    #[inline]
    pub(crate) fn restart(&mut self) {
        // SAFETY: reading a function pointer of the module API.
        if let Some(restart) = unsafe { raw::RedisModule_ScanCursorRestart } {
            // SAFETY: `self.0` is a live cursor (made in `new`, destroyed only in `drop`).
            unsafe { restart(self.0.as_ptr()) };
        }
    }
}

impl Drop for ScanCursor {
    fn drop(&mut self) {
        // SAFETY: reading a function pointer of the module API.
        if let Some(destroy) = unsafe { raw::RedisModule_ScanCursorDestroy } {
            // SAFETY: `self.0` is live and destroyed exactly once, here.
            unsafe { destroy(self.0.as_ptr()) };
        }
    }
}

/// What one scan step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Whether more elements follow (the cursor is not at the end).
    pub(crate) more: bool,
    /// Whether a callback of the step panicked (the panic was caught; the step went on).
    pub(crate) panicked: bool,
}

impl Step {
    /// Nothing scanned and nothing more (the module API lacks the call).
    const NONE: Step = Step {
        more: false,
        panicked: false,
    };
}

/// A callback and what happened to it, reached through the C callbacks' `privdata`.
struct Visit<'f, F> {
    f: &'f mut F,
    panicked: bool,
}

impl<F> Visit<'_, F> {
    /// The step that visited with this callback, `more` to come or not.
    fn step(&self, more: bool) -> Step {
        Step {
            more,
            panicked: self.panicked,
        }
    }
}

/// One step of `RedisModule_Scan` over the keyspace of `ctx`: `on_key(name, key)` for each key
/// of the step, `key` already opened for reading (`None` when Redis could not open it), both
/// lent for the call only.
#[inline]
pub(crate) fn scan_step<F>(ctx: &Context, cursor: &mut ScanCursor, on_key: &mut F) -> Step
where
    F: FnMut(&[u8], Option<KeyRef<'_>>),
{
    // SAFETY: reading a function pointer of the module API (present: `cursor` exists).
    let Some(scan) = (unsafe { raw::RedisModule_Scan }) else {
        return Step::NONE;
    };
    let mut visit = Visit {
        f: on_key,
        panicked: false,
    };
    let data = (&mut visit as *mut Visit<'_, F>).cast::<c_void>();
    // SAFETY: `ctx` is a live context whose lock this thread holds (see the module notes); the
    // cursor is live and only this call uses it (`&mut`); `visit` outlives the call and is only
    // reached through `data` during it, by `visit_key::<F>`, which expects exactly that type.
    let more = unsafe { scan(ctx.ctx, cursor.0.as_ptr(), Some(visit_key::<F>), data) } != 0;
    visit.step(more)
}

/// `RedisModule_Scan` callback: one key, already opened for reading.
///
/// # Safety
/// Only for Redis, from the `Scan` call of [`scan_step`] with its `Visit<F>` as `data`.
unsafe extern "C" fn visit_key<F>(
    _ctx: *mut raw::RedisModuleCtx,
    name: *mut raw::RedisModuleString,
    key: *mut raw::RedisModuleKey,
    data: *mut c_void,
) where
    F: FnMut(&[u8], Option<KeyRef<'_>>),
{
    // SAFETY: `data` is the `Visit<F>` `scan_step` passes, alive and otherwise unused for the
    // whole `Scan` call.
    let visit = unsafe { &mut *data.cast::<Visit<'_, F>>() };
    // SAFETY: `name` is live for this callback; the slice does not leave it (the closure gets
    // it for one call, with a lifetime it cannot keep).
    let name = unsafe { bytes(name) };
    // SAFETY: Redis keeps `key` open until this callback returns (it closes it after), and the
    // `KeyRef` given to the closure cannot outlive the call.
    let key = NonNull::new(key).map(|key| unsafe { KeyRef::new(key) });
    if catch_unwind(AssertUnwindSafe(|| (visit.f)(name, key))).is_err() {
        visit.panicked = true;
    }
}

/// One step of `RedisModule_ScanKey` over `key` (a hash, set or sorted set; nothing for other
/// types): `on_field(field, value)` for each element of the step (`value` empty for a set
/// member), both lent for the call only.
#[inline]
pub(crate) fn scan_key_step<F>(key: KeyRef<'_>, cursor: &mut ScanCursor, on_field: &mut F) -> Step
where
    F: FnMut(&[u8], &[u8]),
{
    // SAFETY: reading a function pointer of the module API (present: `cursor` exists).
    let Some(scan_key) = (unsafe { raw::RedisModule_ScanKey }) else {
        return Step::NONE;
    };
    let mut visit = Visit {
        f: on_field,
        panicked: false,
    };
    let data = (&mut visit as *mut Visit<'_, F>).cast::<c_void>();
    // SAFETY: `key` is open and this thread holds the Redis lock (`KeyRef`'s contract); the
    // cursor is live and only this call uses it; `visit` outlives the call and is only reached
    // through `data` during it, by `visit_field::<F>`. Redis checks the key's type.
    let more = unsafe {
        scan_key(
            key.as_ptr(),
            cursor.0.as_ptr(),
            Some(visit_field::<F>),
            data,
        )
    } != 0;
    visit.step(more)
}

/// `RedisModule_ScanKey` callback: one field and its value.
///
/// # Safety
/// Only for Redis, from the `ScanKey` call of [`scan_key_step`] with its `Visit<F>` as `data`.
unsafe extern "C" fn visit_field<F>(
    _key: *mut raw::RedisModuleKey,
    field: *mut raw::RedisModuleString,
    value: *mut raw::RedisModuleString,
    data: *mut c_void,
) where
    F: FnMut(&[u8], &[u8]),
{
    // SAFETY: `data` is the `Visit<F>` `scan_key_step` passes, alive and otherwise unused for
    // the whole `ScanKey` call.
    let visit = unsafe { &mut *data.cast::<Visit<'_, F>>() };
    // SAFETY: `field` and `value` (null for a set member) are live for this callback; the
    // slices do not leave it.
    let (field, value) = unsafe { (bytes(field), bytes(value)) };
    if catch_unwind(AssertUnwindSafe(|| (visit.f)(field, value))).is_err() {
        visit.panicked = true;
    }
}
