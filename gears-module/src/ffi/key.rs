//! Keys through the module key API: one opened here ([`OpenKey`], closed on drop) or one a
//! scan lends ([`KeyRef`]), with the calls the hot paths make on them: type, expiry, a hash
//! field, a stream append.

use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};
use std::ptr::{self, NonNull};

use redis_module::{raw, Context};

use gears_core::host::KeyType;

use super::string::{ModuleString, Strings};

/// How a key is opened.
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    /// For reading: a missing key is not opened.
    Read,
    /// For writing (reading too): a missing key is opened empty, and closing it signals
    /// `WATCH`ers.
    Write,
}

/// Whether this Redis has every call [`OpenKey::open`] and [`OpenKey::hash_get`] make.
pub(crate) fn hash_api_available() -> bool {
    // SAFETY: copying function pointers of the module API (see the module notes).
    let (open, key_type, get, ptr_len, free) = unsafe {
        (
            raw::RedisModule_OpenKey,
            raw::RedisModule_KeyType,
            raw::RedisModule_HashGet,
            raw::RedisModule_StringPtrLen,
            raw::RedisModule_FreeString,
        )
    };
    open.is_some() && key_type.is_some() && get.is_some() && ptr_len.is_some() && free.is_some()
}

/// Whether this Redis has every call [`OpenKey::stream_add`] and what follows it (replication,
/// the keyspace event) make.
pub(crate) fn stream_api_available() -> bool {
    // SAFETY: copying function pointers of the module API.
    let (open, key_type, add, replicate, notify) = unsafe {
        (
            raw::RedisModule_OpenKey,
            raw::RedisModule_KeyType,
            raw::RedisModule_StreamAdd,
            raw::RedisModule_Replicate,
            raw::RedisModule_NotifyKeyspaceEvent,
        )
    };
    open.is_some() && key_type.is_some() && add.is_some() && replicate.is_some() && notify.is_some()
}

/// An open key, usable for `'a` (the callback that lends it, or the [`OpenKey`] it belongs to).
#[derive(Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    ptr: NonNull<raw::RedisModuleKey>,
    _open: PhantomData<&'a raw::RedisModuleKey>,
}

impl<'a> KeyRef<'a> {
    /// # Safety
    /// `ptr` must be a key Redis keeps open for `'a`, used by the thread holding the Redis lock.
    #[inline]
    pub(super) unsafe fn new(ptr: NonNull<raw::RedisModuleKey>) -> Self {
        KeyRef {
            ptr,
            _open: PhantomData,
        }
    }

    #[inline]
    pub(super) fn as_ptr(self) -> *mut raw::RedisModuleKey {
        self.ptr.as_ptr()
    }

    /// The key's type (`RedisModule_KeyType`): [`KeyType::Empty`] for a key with no value,
    /// [`KeyType::Module`] for a module type or one this crate does not know.
    #[inline]
    pub(crate) fn key_type(self) -> KeyType {
        // SAFETY: reading a function pointer of the module API.
        let Some(key_type) = (unsafe { raw::RedisModule_KeyType }) else {
            return KeyType::Empty;
        };
        // SAFETY: `self.ptr` is an open key (the contract of `new`).
        let t = unsafe { key_type(self.as_ptr()) };
        match t as isize {
            raw::REDISMODULE_KEYTYPE_STRING => KeyType::String,
            raw::REDISMODULE_KEYTYPE_LIST => KeyType::List,
            raw::REDISMODULE_KEYTYPE_HASH => KeyType::Hash,
            raw::REDISMODULE_KEYTYPE_SET => KeyType::Set,
            raw::REDISMODULE_KEYTYPE_ZSET => KeyType::ZSet,
            raw::REDISMODULE_KEYTYPE_STREAM => KeyType::Stream,
            raw::REDISMODULE_KEYTYPE_EMPTY => KeyType::Empty,
            _ => KeyType::Module,
        }
    }

    /// `RedisModule_GetExpire`: the milliseconds the key has left; `REDISMODULE_NO_EXPIRE`
    /// (-1) for a key without a time to live (or without a value, or a Redis without the
    /// call); 0 for a key whose time has passed but that Redis has not deleted yet.
    #[inline]
    pub(crate) fn ttl_ms(self) -> i64 {
        // SAFETY: reading a function pointer of the module API.
        let Some(get_expire) = (unsafe { raw::RedisModule_GetExpire }) else {
            return raw::REDISMODULE_NO_EXPIRE.into();
        };
        // SAFETY: `self.ptr` is an open key (the contract of `new`).
        unsafe { get_expire(self.as_ptr()) }
    }
}

/// A key opened with `RedisModule_OpenKey`, closed on drop; it lives no longer than the
/// context it was opened with.
pub(crate) struct OpenKey<'ctx> {
    key: NonNull<raw::RedisModuleKey>,
    ctx: *mut raw::RedisModuleCtx,
    _ctx: PhantomData<&'ctx Context>,
}

impl<'ctx> OpenKey<'ctx> {
    /// Opens `name` in the database of `ctx`; `None` for a missing key opened for reading, or a
    /// Redis without the call. Redis keeps its own reference to `name` while the key is open.
    #[inline]
    pub(crate) fn open(ctx: &'ctx Context, name: &ModuleString, mode: Mode) -> Option<Self> {
        // SAFETY: reading a function pointer of the module API.
        let open = unsafe { raw::RedisModule_OpenKey }?;
        let mode = match mode {
            Mode::Read => raw::REDISMODULE_READ,
            Mode::Write => raw::REDISMODULE_WRITE,
        } as c_int;
        // SAFETY: `ctx` is a live context whose lock this thread holds (see the module notes);
        // `name` is a live string, which Redis retains for the key's lifetime.
        let key = unsafe { open(ctx.ctx, name.as_ptr(), mode) };
        Some(OpenKey {
            key: NonNull::new(key.cast())?,
            ctx: ctx.ctx,
            _ctx: PhantomData,
        })
    }

    /// The key, for the calls of [`KeyRef`].
    #[inline]
    pub(crate) fn key(&self) -> KeyRef<'_> {
        // SAFETY: `self.key` stays open until `self` drops, and the `KeyRef` borrows `self`.
        unsafe { KeyRef::new(self.key) }
    }

    /// Hash field `field` (`RedisModule_HashGet`), its bytes passed to `read` while Redis's
    /// copy lives; `None` for a missing field, an empty key, or a key that holds no hash.
    #[inline]
    pub(crate) fn hash_get<R>(
        &self,
        field: &ModuleString,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        // SAFETY: reading function pointers of the module API.
        let (get, free) = unsafe { (raw::RedisModule_HashGet?, raw::RedisModule_FreeString?) };
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: `self.key` is open; `field` a live string; `value` a valid out-pointer; the
        // variadic list ends with a null pointer as required. Redis checks the key's type (a
        // key of another type leaves `value` null).
        unsafe {
            get(
                self.key.as_ptr(),
                raw::REDISMODULE_HASH_NONE as c_int,
                field.as_ptr(),
                &mut value as *mut *mut raw::RedisModuleString,
                ptr::null::<c_char>(),
            );
        }
        if value.is_null() {
            return None;
        }
        // SAFETY: `value` is a live string Redis made for us, freed below, after the last use
        // of `bytes`.
        let bytes = unsafe { super::string::bytes(value) };
        let read = read(bytes);
        // SAFETY: `value` is freed once, here, with the context the key was opened with (the
        // one its automatic memory, if on, tracks it in); nothing uses it after.
        unsafe { free(self.ctx, value) };
        Some(read)
    }

    /// Appends an entry with an automatic id to the stream (`RedisModule_StreamAdd`, which
    /// creates a missing key): its field/value pairs are the slots of `argv` from `from` on.
    /// The new id as `(ms, seq)`; `None` when a slot is empty or unpaired, or Redis refuses
    /// (a key of another type or opened for reading, a stream whose top id is the largest).
    #[inline]
    pub(crate) fn stream_add(&self, argv: &mut Strings, from: usize) -> Option<(u64, u64)> {
        // SAFETY: reading a function pointer of the module API.
        let add = unsafe { raw::RedisModule_StreamAdd }?;
        let (pairs, len) = argv.filled_from(from)?;
        if len == 0 || len % 2 != 0 {
            return None;
        }
        let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
        // SAFETY: `self.key` is open; `pairs` points at `len` filled slots of `argv`, each laid
        // out as a `RedisModuleString *` to a live string (see `Strings`), borrowed for the
        // call (Redis copies them into the stream); `id` is a valid out-pointer.
        let added = unsafe {
            add(
                self.key.as_ptr(),
                raw::REDISMODULE_STREAM_ADD_AUTOID as c_int,
                &mut id,
                pairs,
                (len / 2) as i64,
            )
        };
        (added == raw::REDISMODULE_OK as c_int).then_some((id.ms, id.seq))
    }
}

impl Drop for OpenKey<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: reading a function pointer of the module API.
        if let Some(close) = unsafe { raw::RedisModule_CloseKey } {
            // SAFETY: `self.key` came from `RedisModule_OpenKey` and is closed once, here, while
            // its context is still live (`'ctx`) and the thread holds the Redis lock.
            unsafe { close(self.key.as_ptr()) };
        }
    }
}
