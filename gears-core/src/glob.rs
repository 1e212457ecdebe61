//! Redis glob patterns, as `KEYS`, `SCAN MATCH` and registrations use them.

/// Matches `text` (a key name: any bytes) against a Redis glob pattern (`*`, `?`, `[abc]`,
/// `[^a]`, `[a-z]`, `\x`), byte by byte as Redis does.
///
/// Unlike RedisGears 1.x, which only honours a trailing `*`, this is the full glob syntax.
///
/// ```
/// use gears_core::glob::glob_match;
/// assert!(glob_match("user:*", "user:1"));
/// assert!(glob_match("u*:[0-9]?", "user:12"));
/// assert!(!glob_match("user:?", "user:12"));
/// assert!(glob_match("*", ""));
/// assert!(glob_match("user:*", "user:") && !glob_match("user:*", "use"));
/// assert!(glob_match("a\\*b*", "a*bc") && !glob_match("a\\*b*", "axbc"));
/// assert!(glob_match("bin:?", b"bin:\xff") && glob_match("*\0*", b"a\0b"));
/// ```
pub fn glob_match(pattern: &str, text: impl AsRef<[u8]>) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_ref());
    // The usual registration pattern, `prefix*`: a prefix comparison (every keyspace event
    // of a watched prefix comes here).
    if let Some((b'*', prefix)) = p.split_last() {
        if !prefix
            .iter()
            .any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        {
            return t.starts_with(prefix);
        }
    }
    glob_bytes(p, t)
}

fn glob_bytes(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star_p, mut star_t) = (usize::MAX, 0usize);
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star_p = pi;
                    star_t = ti;
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => match class_match(p, pi, t[ti]) {
                    Some((true, next)) => {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                    None if t[ti] == b'[' => {
                        // An unterminated class is a literal '['.
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                    None => {}
                },
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        if star_p != usize::MAX {
            pi = star_p + 1;
            star_t += 1;
            ti = star_t;
            continue;
        }
        return false;
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches byte `c` against the class starting at `p[start] == b'['`; returns (matched, index after `]`).
fn class_match(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == b'^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (p[i] != b']' || first) {
        first = false;
        if p[i] == b'\\' && i + 1 < p.len() {
            matched |= p[i + 1] == c;
            i += 2;
        } else if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            let (lo, hi) = (p[i].min(p[i + 2]), p[i].max(p[i + 2]));
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    if i >= p.len() {
        return None; // unterminated class: treat '[' literally (caller falls through)
    }
    Some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_cases() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("user:*:name", "user:42:name"));
        assert!(!glob_match("user:*:name", "user:42:age"));
        assert!(glob_match("h[ae]llo", "hallo"));
        assert!(!glob_match("h[^e]llo", "hello"));
        assert!(glob_match("h[a-c]llo", "hbllo"));
        assert!(glob_match("a\\*b", "a*b"));
        assert!(!glob_match("a\\*b", "axb"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("[abc", "[abc"));
    }
}
