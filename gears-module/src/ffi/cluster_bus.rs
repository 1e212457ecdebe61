//! The one safe wrapper over the Redis Cluster bus and node-list FFI: register the message
//! receiver, send a message to one node, the local node id, the node list.
//!
//! Node ids are 40 bytes and **not** NUL-terminated; the sender of a broadcast does not get
//! it back (platform notes §5). Gears never broadcasts: it sends to each master by id.

use std::ffi::{c_char, c_int, c_uchar};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use redis_module::{raw, Context};

/// The Redis Cluster bus message type Gears registers its receiver for.
pub(crate) const MESSAGE_TYPE: u8 = 0x47;

/// Length of a cluster node id.
pub(crate) const NODE_ID_LEN: usize = raw::REDISMODULE_NODE_ID_LEN as usize;
/// `NET_IP_STR_LEN` in Redis: the size of the ip buffer `GetClusterNodeInfo` fills.
const IP_BUF_LEN: usize = 46;

/// What the receiver does with a message: `(ctx, sender id, payload)`. Runs on the main thread.
pub(crate) type Handler = fn(&Context, &str, &[u8]);

static HANDLER: OnceLock<Handler> = OnceLock::new();

extern "C" fn on_message(
    ctx: *mut raw::RedisModuleCtx,
    sender: *const c_char,
    msg_type: u8,
    payload: *const c_uchar,
    len: u32,
) {
    // No panic may cross into Redis.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if msg_type != MESSAGE_TYPE || sender.is_null() || ctx.is_null() {
            return;
        }
        let Some(handler) = HANDLER.get() else { return };
        // SAFETY: Redis passes the sender's node id as NODE_ID_LEN readable bytes (not
        // NUL-terminated), valid for the duration of this callback.
        let sender = unsafe { std::slice::from_raw_parts(sender.cast::<u8>(), NODE_ID_LEN) };
        let payload: &[u8] = if payload.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: Redis passes `len` readable payload bytes, valid during the callback.
            unsafe { std::slice::from_raw_parts(payload, len as usize) }
        };
        let sender = String::from_utf8_lossy(sender);
        handler(&Context::new(ctx), &sender, payload);
    }));
}

/// Registers `handler` for Gears messages. Call once, from module load.
pub(crate) fn register_receiver(ctx: &Context, handler: Handler) {
    let _ = HANDLER.set(handler);
    // SAFETY: `ctx` is the module's load context; the callback is a plain `extern "C"` fn
    // that lives as long as the module. The API pointer is filled by RedisModule_Init.
    unsafe {
        if let Some(register) = raw::RedisModule_RegisterClusterMessageReceiver {
            register(ctx.ctx, MESSAGE_TYPE, Some(on_message));
        }
    }
}

/// Sends `payload` to node `target`. `false` if the node is unknown or not connected (the
/// caller queues and retries). `ctx` must be held with the Redis lock (a command, timer or
/// receiver context, or the locked module context on a worker).
pub(crate) fn send(ctx: &Context, target: &str, payload: &[u8]) -> bool {
    if target.len() != NODE_ID_LEN || payload.len() > u32::MAX as usize {
        return false;
    }
    let Some(send) = (
        // SAFETY: reading a function pointer filled once by RedisModule_Init.
        unsafe { raw::RedisModule_SendClusterMessage }
    ) else {
        return false;
    };
    // Redis 7.0 looks the target up with strlen(): pass a NUL-terminated copy.
    let mut target_c = [0u8; NODE_ID_LEN + 1];
    target_c[..NODE_ID_LEN].copy_from_slice(target.as_bytes());
    // SAFETY: `target_c` is a NUL-terminated 40-byte id; `payload` is `len` readable bytes
    // that Redis copies before returning; the caller holds the Redis lock with `ctx`.
    let status = unsafe {
        send(
            ctx.ctx,
            target_c.as_ptr().cast::<c_char>(),
            MESSAGE_TYPE,
            payload.as_ptr().cast::<c_char>(),
            payload.len() as u32,
        )
    };
    status == raw::REDISMODULE_OK as c_int
}

/// The local node's id, or `None` when cluster mode is off.
pub(crate) fn my_id() -> Option<String> {
    // SAFETY: reading a function pointer filled once by RedisModule_Init.
    let get = unsafe { raw::RedisModule_GetMyClusterID }?;
    // SAFETY: returns NULL without cluster mode, else a pointer to the node's 40-byte name,
    // owned by Redis and valid while the node exists; we copy it at once.
    let ptr = unsafe { get() };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: see above: NODE_ID_LEN readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), NODE_ID_LEN) };
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// One node as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeInfo {
    pub(crate) id: String,
    pub(crate) ip: String,
    pub(crate) port: i32,
    /// The master's id, for a replica.
    pub(crate) master_id: Option<String>,
    pub(crate) flags: i32,
}

impl NodeInfo {
    /// Flagged as failing (PFAIL) or failed (FAIL) by the cluster.
    pub(crate) fn is_failing(&self) -> bool {
        self.flags & (raw::REDISMODULE_NODE_PFAIL | raw::REDISMODULE_NODE_FAIL) as i32 != 0
    }
}

/// Every node of the cluster (masters and replicas), or an empty list without cluster mode.
pub(crate) fn nodes(ctx: &Context) -> Vec<NodeInfo> {
    // SAFETY: reading function pointers filled once by RedisModule_Init.
    let (Some(list), Some(free), Some(info)) = (unsafe {
        (
            raw::RedisModule_GetClusterNodesList,
            raw::RedisModule_FreeClusterNodesList,
            raw::RedisModule_GetClusterNodeInfo,
        )
    }) else {
        return Vec::new();
    };
    let mut count: usize = 0;
    // SAFETY: the caller holds the Redis lock with `ctx`; returns NULL without cluster mode,
    // else `count` pointers to NODE_ID_LEN-byte ids that we free below.
    let ids = unsafe { list(ctx.ctx, &mut count) };
    if ids.is_null() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: `ids` has `count` entries, each pointing to NODE_ID_LEN readable bytes.
        let id_bytes =
            unsafe { std::slice::from_raw_parts((*ids.add(i)).cast::<u8>(), NODE_ID_LEN) };
        // A NUL-terminated copy: some Redis versions look the id up with strlen().
        let mut id_c = [0u8; NODE_ID_LEN + 1];
        id_c[..NODE_ID_LEN].copy_from_slice(id_bytes);
        let mut ip = [0u8; IP_BUF_LEN + 1];
        let mut master = [0u8; NODE_ID_LEN + 1];
        let mut port: c_int = 0;
        let mut flags: c_int = 0;
        // SAFETY: `id_c` is a NUL-terminated id; `ip` holds IP_BUF_LEN bytes and `master`
        // NODE_ID_LEN bytes, the most Redis writes into them; port/flags are valid ints.
        let ok = unsafe {
            info(
                ctx.ctx,
                id_c.as_ptr().cast::<c_char>(),
                ip.as_mut_ptr().cast::<c_char>(),
                master.as_mut_ptr().cast::<c_char>(),
                &mut port,
                &mut flags,
            )
        };
        if ok != raw::REDISMODULE_OK as c_int {
            continue;
        }
        let ip_len = ip.iter().position(|&b| b == 0).unwrap_or(IP_BUF_LEN);
        let is_replica = flags & raw::REDISMODULE_NODE_SLAVE as i32 != 0;
        out.push(NodeInfo {
            id: String::from_utf8_lossy(id_bytes).into_owned(),
            ip: String::from_utf8_lossy(&ip[..ip_len]).into_owned(),
            port,
            master_id: (is_replica && master[0] != 0)
                .then(|| String::from_utf8_lossy(&master[..NODE_ID_LEN]).into_owned()),
            flags,
        });
    }
    // SAFETY: `ids` came from GetClusterNodesList and is freed once.
    unsafe { free(ids) };
    out
}

/// Sets `TCP_NODELAY` on this process's cluster-bus sockets to the given peer addresses
/// (`ip:cport`). Redis 7.0 leaves Nagle's algorithm on for the outbound cluster links it
/// opens; with delayed ACKs on the peer, the second small message sent on a link within one
/// round trip waits ~40 ms. Gears sends several messages per stage, so it turns Nagle off.
/// Returns how many sockets were changed. Call on the main thread (no socket is closed
/// meanwhile).
pub(crate) fn disable_nagle(peers: &[std::net::SocketAddr]) -> usize {
    use std::os::fd::FromRawFd;
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut changed = 0;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: `fd` is an open socket of this process (listed in /proc/self/fd and checked
        // above); Redis owns it, so the stream is never dropped (ManuallyDrop: no close). On
        // the main thread Redis closes no socket while this runs. A non-TCP socket makes
        // `peer_addr` fail and is left alone.
        let stream = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        if peers.contains(&peer)
            && stream.nodelay().is_ok_and(|on| !on)
            && stream.set_nodelay(true).is_ok()
        {
            changed += 1;
        }
    }
    changed
}
