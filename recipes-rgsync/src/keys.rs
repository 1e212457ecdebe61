//! Key → primary key: a job's key pattern names the parts of a Redis key that form the
//! primary key, instead of rgsync's fixed `key.split(':')[1]`. A part is `{column}` or
//! `{column:type}`; several parts make a composite key. A part matches up to the next
//! literal text of the pattern (the last one to the end of the key) and is never empty.
//! `{{` and `}}` are literal braces.
//!
//! ```
//! use recipes_rgsync::keys::KeyPattern;
//! let p = KeyPattern::parse("order:{region}:{id:integer}").unwrap();
//! assert_eq!(p.glob(), "order:*:*");
//! assert_eq!(p.extract("order:eu:42").unwrap(), ["eu", "42"]);
//! assert!(p.extract("order:eu").is_err());
//! assert_eq!(p.columns().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["region", "id"]);
//! ```

use crate::error::SyncError;
use crate::types::ColumnType;

#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
enum Part {
    Literal(String),
    Column(String, ColumnType),
}

/// A parsed key pattern.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct KeyPattern {
    source: String,
    parts: Vec<Part>,
}

impl KeyPattern {
    /// Parses a pattern such as `user:{id}` or `t:{a}-{b:integer}`.
    pub fn parse(pattern: &str) -> Result<Self, SyncError> {
        let bad = |m: &str| SyncError::Config(format!("key pattern '{pattern}': {m}"));
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut spec = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => spec.push(ch),
                            None => return Err(bad("unclosed '{'")),
                        }
                    }
                    let (name, ty) = match spec.split_once(':') {
                        Some((n, t)) => (
                            n,
                            ColumnType::parse(t)
                                .ok_or_else(|| bad(&format!("unknown type '{t}'")))?,
                        ),
                        None => (spec.as_str(), ColumnType::Text),
                    };
                    crate::identifiers::check_column(name).map_err(|e| bad(&e))?;
                    if matches!(parts.last(), Some(Part::Column(..))) && lit.is_empty() {
                        return Err(bad("two key parts need literal text between them"));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Column(name.to_string(), ty));
                }
                '}' => return Err(bad("unmatched '}'")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        if !parts.iter().any(|p| matches!(p, Part::Column(..))) {
            return Err(bad("no primary-key part such as {id}"));
        }
        if !matches!(parts.first(), Some(Part::Literal(_))) {
            return Err(bad("must start with a literal prefix, e.g. 'user:{id}'"));
        }
        let mut names: Vec<&str> = Vec::new();
        for p in &parts {
            if let Part::Column(n, _) = p {
                if names.contains(&n.as_str()) {
                    return Err(bad(&format!("column '{n}' appears twice")));
                }
                names.push(n);
            }
        }
        Ok(Self {
            source: pattern.to_string(),
            parts,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The primary-key columns with their types, in pattern order.
    pub fn columns(&self) -> impl Iterator<Item = (&String, ColumnType)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(n, t) => Some((n, *t)),
            Part::Literal(_) => None,
        })
    }

    /// The Redis glob of the keys this pattern covers (parts become `*`, glob characters in
    /// literals are escaped).
    pub fn glob(&self) -> String {
        let mut g = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(l) => {
                    for c in l.chars() {
                        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                            g.push('\\');
                        }
                        g.push(c);
                    }
                }
                Part::Column(..) => g.push('*'),
            }
        }
        g
    }

    /// The primary-key values of `key`, in column order.
    pub fn extract(&self, key: &str) -> Result<Vec<String>, SyncError> {
        let fail = || SyncError::Key {
            key: key.chars().take(200).collect(),
            pattern: self.source.clone(),
        };
        let mut rest = key;
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.parts.len() {
            match &self.parts[i] {
                Part::Literal(l) => rest = rest.strip_prefix(l.as_str()).ok_or_else(fail)?,
                Part::Column(..) => {
                    let end = match self.parts.get(i + 1) {
                        Some(Part::Literal(next)) => rest.find(next.as_str()).ok_or_else(fail)?,
                        _ => rest.len(),
                    };
                    if end == 0 {
                        return Err(fail());
                    }
                    out.push(rest[..end].to_string());
                    rest = &rest[end..];
                }
            }
            i += 1;
        }
        if !rest.is_empty() {
            return Err(fail());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_composite() {
        let p = KeyPattern::parse("user:{id}").unwrap();
        assert_eq!(p.extract("user:7").unwrap(), ["7"]);
        assert_eq!(p.extract("user:a:b").unwrap(), ["a:b"]); // the last part takes the rest
        assert!(p.extract("user:").is_err());
        assert!(p.extract("usr:1").is_err());
        let p = KeyPattern::parse("t:{a}-{b:integer}:x").unwrap();
        assert_eq!(p.extract("t:q-12:x").unwrap(), ["q", "12"]);
        assert!(p.extract("t:q-12:y").is_err());
        assert!(p.extract("t:q-12:xx").is_err());
        assert_eq!(p.glob(), "t:*-*:x");
        let types: Vec<_> = p.columns().map(|(_, t)| t).collect();
        assert_eq!(types, [ColumnType::Text, ColumnType::Integer]);
    }

    #[test]
    fn literal_braces_and_glob_escapes() {
        let p = KeyPattern::parse("a*{{x}}:{id}").unwrap();
        assert_eq!(p.glob(), "a\\*{x}:*");
        assert_eq!(p.extract("a*{x}:5").unwrap(), ["5"]);
    }

    #[test]
    fn rejected_patterns() {
        for bad in [
            "user",
            "{id}",
            "user:{id",
            "user:}",
            "user:{a}{b}",
            "user:{a}:{a}",
            "user:{x:blob}",
            "user:{bad\"name}",
            "user:{s.id}",
        ] {
            assert!(KeyPattern::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
