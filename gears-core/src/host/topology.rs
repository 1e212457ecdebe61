//! Who owns which hash slot: the shards of a cluster (or the one of a standalone server) and
//! which of them "I" am.

use std::fmt;
use std::sync::Arc;

use crate::slot::SLOTS;

/// A shard's id: the 40-character Redis Cluster node id, or forty `0`s on a standalone server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, bincode::Encode, bincode::Decode)]
pub struct ShardId(pub String);

impl ShardId {
    /// The id of a standalone (non-cluster) server: forty `0`s.
    pub fn standalone() -> Self {
        ShardId("0".repeat(40))
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One shard of the topology and the slot ranges it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard's id.
    pub id: ShardId,
    /// Inclusive slot ranges owned by this shard.
    pub slots: Vec<(u16, u16)>,
}

/// Who owns which hash slot, and which shard "I" am.
#[derive(Clone)]
pub struct Topology {
    shards: Arc<Vec<ShardInfo>>,
    owner: Arc<Vec<u16>>,
    me: usize,
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("shards", &self.shards)
            .field("me", &self.me)
            .finish()
    }
}

impl Topology {
    /// A single shard owning every slot (a standalone server). Built once: every local run
    /// uses it, so it must not cost a slot table per run.
    pub fn standalone() -> Self {
        static STANDALONE: std::sync::OnceLock<Topology> = std::sync::OnceLock::new();
        STANDALONE
            .get_or_init(|| {
                Self::new(
                    vec![ShardInfo {
                        id: ShardId::standalone(),
                        slots: vec![(0, SLOTS - 1)],
                    }],
                    0,
                )
            })
            .clone()
    }

    /// `n` shards splitting the slots in contiguous ranges the way `redis-cli --cluster create`
    /// does; shard ids are `shard-0…` padded to 40 characters.
    pub fn evenly_split(n: usize, me: usize) -> Self {
        assert!(n > 0 && n <= SLOTS as usize, "shard count out of range");
        let per = SLOTS as usize / n;
        let shards = (0..n)
            .map(|i| {
                let start = i * per;
                let end = if i + 1 == n {
                    SLOTS as usize - 1
                } else {
                    (i + 1) * per - 1
                };
                ShardInfo {
                    id: ShardId(format!("{:0<40}", format!("shard-{i}-"))),
                    slots: vec![(start as u16, end as u16)],
                }
            })
            .collect();
        Self::new(shards, me)
    }

    /// Builds a topology from shards and the index of the local shard. Slots no shard claims
    /// are given to the first shard (Redis would report the cluster down instead).
    pub fn new(shards: Vec<ShardInfo>, me: usize) -> Self {
        assert!(me < shards.len(), "`me` must index a shard");
        let mut owner = vec![0u16; SLOTS as usize];
        for (i, s) in shards.iter().enumerate() {
            for &(a, b) in &s.slots {
                for slot in a..=b.min(SLOTS - 1) {
                    owner[slot as usize] = i as u16;
                }
            }
        }
        Self {
            shards: Arc::new(shards),
            owner: Arc::new(owner),
            me,
        }
    }

    /// The same topology seen from shard `me`.
    pub fn as_seen_by(&self, me: usize) -> Self {
        assert!(me < self.shards.len(), "`me` must index a shard");
        Self {
            shards: self.shards.clone(),
            owner: self.owner.clone(),
            me,
        }
    }

    /// All shards, in a fixed order (index = shard index).
    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Always false: a topology has at least one shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Index of the local shard.
    pub fn me(&self) -> usize {
        self.me
    }

    /// The local shard's id.
    pub fn my_id(&self) -> &ShardId {
        &self.shards[self.me].id
    }

    /// Index of the shard that owns `slot`.
    pub fn owner_of_slot(&self, slot: u16) -> usize {
        self.owner[(slot & (SLOTS - 1)) as usize] as usize
    }

    /// Index of the shard that owns `key`.
    pub fn owner_of_key(&self, key: &[u8]) -> usize {
        self.owner_of_slot(crate::slot::key_slot(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_owner() {
        let t = Topology::evenly_split(3, 1);
        assert_eq!(t.len(), 3);
        assert_eq!(t.me(), 1);
        assert_eq!(t.owner_of_slot(0), 0);
        assert_eq!(t.owner_of_slot(16383), 2);
        assert_eq!(t.owner_of_key(b"foo"), 2); // slot 12182
        assert_eq!(t.my_id().0.len(), 40);
        assert_eq!(ShardId::standalone().0, "0".repeat(40));
    }
}
