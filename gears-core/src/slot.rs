//! Redis Cluster hash slots: CRC16 (XMODEM) of the key, or of its `{hashtag}`, modulo 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC16_TABLE: [u16; 256] = crc16_table();

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster uses for key slots.
///
/// ```
/// assert_eq!(gears_core::slot::crc16(b"123456789"), 0x31C3);
/// ```
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[(((crc >> 8) as u8) ^ b) as usize]
    })
}

/// The part of `key` that is hashed: the content of the first `{...}` if it is non-empty,
/// otherwise the whole key (Redis Cluster's hashtag rule).
///
/// ```
/// use gears_core::slot::hashtag;
/// assert_eq!(hashtag(b"{user:1}:orders"), b"user:1");
/// assert_eq!(hashtag(b"foo{}{bar}"), b"foo{}{bar}");
/// assert_eq!(hashtag(b"plain"), b"plain");
/// ```
pub fn hashtag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of `key`, exactly as Redis Cluster computes it.
///
/// ```
/// use gears_core::slot::key_slot;
/// assert_eq!(key_slot(b"foo"), 12182);
/// assert_eq!(key_slot(b"{foo}.bar"), key_slot(b"foo"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hashtag(key)) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"user:1000"), 1649);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hashtag_edge_cases() {
        assert_eq!(hashtag(b"{}"), b"{}");
        assert_eq!(hashtag(b"{a"), b"{a");
        assert_eq!(hashtag(b"x{a}{b}"), b"a");
        assert_eq!(key_slot(b"{a}1"), key_slot(b"{a}2"));
    }
}
