//! Redis strings the module owns: one ([`ModuleString`]) or side by side as the module API
//! takes an argument vector ([`Strings`]).

use std::os::raw::c_char;
use std::ptr::{self, NonNull};

use redis_module::raw;

/// A Redis string the module owns: made without a context (no automatic memory management),
/// holding one reference, released on drop. Not `Send`: it is made, retained and dropped by
/// the thread holding the Redis lock.
#[repr(transparent)]
pub(crate) struct ModuleString(NonNull<raw::RedisModuleString>);

impl ModuleString {
    /// A Redis string holding a copy of `bytes` (any bytes, NUL included); `None` if Redis
    /// could not make it.
    #[inline]
    pub(crate) fn new(bytes: &[u8]) -> Option<Self> {
        // SAFETY: reading a function pointer of the module API (see the module notes).
        let create = unsafe { raw::RedisModule_CreateString }?;
        // SAFETY: a null context makes a string the module owns (released by `drop`); the
        // pointer and length describe `bytes`, which Redis copies.
        let made = unsafe {
            create(
                ptr::null_mut(),
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
            )
        };
        NonNull::new(made).map(Self)
    }

    /// One more reference to the same string (`RedisModule_RetainString`), released when the
    /// value returned is dropped; `None` if this Redis lacks the call.
    #[inline]
    pub(crate) fn retain(&self) -> Option<Self> {
        // SAFETY: reading a function pointer of the module API.
        let retain = unsafe { raw::RedisModule_RetainString }?;
        // SAFETY: `self.0` is live (`self` holds a reference); a null context adds a reference
        // the returned value owns.
        unsafe { retain(ptr::null_mut(), self.0.as_ptr()) };
        Some(Self(self.0))
    }

    /// The string, for a call of the module API (the reference stays `self`'s).
    #[inline]
    pub(super) fn as_ptr(&self) -> *mut raw::RedisModuleString {
        self.0.as_ptr()
    }
}

impl Drop for ModuleString {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: reading a function pointer of the module API.
        if let Some(free) = unsafe { raw::RedisModule_FreeString } {
            // SAFETY: `self` holds one reference to a live string made or retained without a
            // context; it is released once, here, by the thread holding the Redis lock.
            unsafe { free(ptr::null_mut(), self.0.as_ptr()) };
        }
    }
}

/// Module strings side by side, as the module API takes an argument vector
/// (`RedisModuleString **`), released on drop. A slot may be empty, to be filled later
/// ([`Strings::set`]).
pub(crate) struct Strings {
    /// `ModuleString` is a `repr(transparent)` `NonNull`, and Rust guarantees that
    /// `Option<ModuleString>` has its size and alignment and that `Some(s)` has the bits of `s`:
    /// a run of filled slots is the C array of `RedisModuleString *` itself.
    slots: Vec<Option<ModuleString>>,
    /// How many slots are empty.
    empty: usize,
}

impl Strings {
    /// No strings yet, room for `n`.
    #[inline]
    pub(crate) fn with_capacity(n: usize) -> Self {
        Strings {
            slots: Vec::with_capacity(n),
            empty: 0,
        }
    }

    /// Appends `s` (`None`: an empty slot).
    #[inline]
    pub(crate) fn push(&mut self, s: Option<ModuleString>) {
        self.empty += usize::from(s.is_none());
        self.slots.push(s);
    }

    /// Puts `s` in slot `at` (which must exist), releasing the string there before.
    #[inline]
    pub(crate) fn set(&mut self, at: usize, s: Option<ModuleString>) {
        self.empty += usize::from(s.is_none());
        let old = std::mem::replace(&mut self.slots[at], s);
        self.empty -= usize::from(old.is_none());
    }

    /// The string in slot `at`, if any.
    #[inline]
    pub(crate) fn get(&self, at: usize) -> Option<&ModuleString> {
        self.slots.get(at)?.as_ref()
    }

    /// How many slots are empty.
    #[inline]
    pub(crate) fn empty_slots(&self) -> usize {
        self.empty
    }

    /// The slots from `from` on as the C array and its length, if none of them is empty.
    #[inline]
    pub(super) fn filled_from(
        &mut self,
        from: usize,
    ) -> Option<(*mut *mut raw::RedisModuleString, usize)> {
        let slots = self.slots.get_mut(from..)?;
        if self.empty > 0 && slots.iter().any(Option::is_none) {
            return None;
        }
        Some((slots.as_mut_ptr().cast(), slots.len()))
    }

    /// All the slots as the C array and its length, if none is empty.
    #[inline]
    pub(super) fn filled(&self) -> Option<(*const *mut raw::RedisModuleString, usize)> {
        (self.empty == 0).then(|| (self.slots.as_ptr().cast(), self.slots.len()))
    }
}

/// The bytes of a module string (empty for null).
///
/// # Safety
/// `s` must be null or a live string, and the slice must not outlive it.
#[inline]
pub(super) unsafe fn bytes<'s>(s: *const raw::RedisModuleString) -> &'s [u8] {
    // SAFETY: reading a function pointer of the module API.
    let Some(ptr_len) = (unsafe { raw::RedisModule_StringPtrLen }) else {
        return &[];
    };
    if s.is_null() {
        return &[];
    }
    let mut len = 0usize;
    // SAFETY: `s` is a live string (the contract above); `len` a valid out-pointer.
    let at = unsafe { ptr_len(s, &mut len) };
    if at.is_null() {
        return &[];
    }
    // SAFETY: Redis points at the string's `len` bytes, which live as long as the string.
    unsafe { std::slice::from_raw_parts(at.cast::<u8>(), len) }
}
