//! Secrets in connection strings: the values of `PWD`, `PASSWORD`, ... masked wherever a
//! connection string (or part of one) could be shown: `RGSYNC.LIST`, and every config error
//! that is logged or replied (an error may quote a misplaced word, the connection string
//! included).

/// Connection-string attributes whose values are secrets (lower case).
const SECRET_ATTRIBUTES: [&str; 7] = [
    "pwd",
    "password",
    "passwd",
    "secret",
    "token",
    "authtoken",
    "privatekey",
];

/// Masks secrets in free text that may quote a connection string, or part of one, anywhere
/// (an error message about a misplaced word, upper-cased or not): every `<attr>=<value>` whose
/// attribute is one [`mask_secrets`] masks (any case, after a non-alphanumeric character)
/// becomes `<attr>=***`, the value running to the next `;` (a `{…}` value to its closing
/// brace, then to the next `;`) or to the end of the text. Used on every config error that is
/// logged or replied.
///
/// ```
/// use recipes_rgsync::secrets::mask_secrets_in_text;
/// assert_eq!(
///     mask_secrets_in_text("unknown option DRIVER={X};PWD=SEKR3T; UID=U"),
///     "unknown option DRIVER={X};PWD=***; UID=U"
/// );
/// assert_eq!(mask_secrets_in_text("'a;Pwd={p;w}}d}' has no value"), "'a;Pwd=***");
/// ```
pub fn mask_secrets_in_text(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let at_boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let value_start = at_boundary
            .then(|| {
                SECRET_ATTRIBUTES.iter().find_map(|name| {
                    let end = i + name.len();
                    if end > b.len() || !b[i..end].eq_ignore_ascii_case(name.as_bytes()) {
                        return None;
                    }
                    let mut j = end;
                    while j < b.len() && matches!(b[j], b' ' | b'\t') {
                        j += 1;
                    }
                    (b.get(j) == Some(&b'=')).then_some(j + 1)
                })
            })
            .flatten();
        let Some(start) = value_start else {
            out.push(b[i]);
            i += 1;
            continue;
        };
        out.extend_from_slice(&b[i..start]);
        out.extend_from_slice(b"***");
        // Skip the value: a `{…}` value (`}}` escapes a brace) first, then up to `;`.
        let mut j = start;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if b.get(j) == Some(&b'{') {
            j = closing_brace(b, j + 1);
        }
        while j < b.len() && b[j] != b';' {
            j += 1;
        }
        i = j;
    }
    // Cut only before ASCII bytes or at the end: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The index of the `}` closing an ODBC `{…}` value whose content starts at `from` (`}}` is
/// an escaped brace), or `b.len()` if it is not closed.
pub(crate) fn closing_brace(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len() {
        if b[i] == b'}' {
            if b.get(i + 1) == Some(&b'}') {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Masks the values of `PWD`, `PASSWORD`, `PASSWD`, `SECRET`, `TOKEN`, `KEY`-like attributes
/// of an ODBC connection string (`{…}`-quoted values included).
///
/// ```
/// use recipes_rgsync::secrets::mask_secrets;
/// assert_eq!(mask_secrets("Server=h;Uid=u;Pwd={a;b}c;Port=1"), "Server=h;Uid=u;Pwd=***;Port=1");
/// ```
pub fn mask_secrets(conn: &str) -> String {
    let mut out = String::new();
    let mut rest = conn;
    while !rest.is_empty() {
        let (attr, after) = match rest.find('=') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => {
                out.push_str(rest);
                break;
            }
        };
        // The value: `{...}` (with `}}` escapes) or up to the next `;`.
        let end = if after.starts_with('{') {
            let i = closing_brace(after.as_bytes(), 1);
            after[i.min(after.len())..]
                .find(';')
                .map_or(after.len(), |j| i + j)
        } else {
            after.find(';').unwrap_or(after.len())
        };
        let value = &after[..end];
        let name = attr.trim().to_ascii_lowercase();
        out.push_str(attr);
        out.push('=');
        if SECRET_ATTRIBUTES.contains(&name.as_str()) {
            out.push_str("***");
        } else {
            out.push_str(value);
        }
        rest = &after[end..];
        if let Some(r) = rest.strip_prefix(';') {
            out.push(';');
            rest = r;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_secret_form() {
        assert_eq!(
            mask_secrets("Driver={PostgreSQL Unicode};PWD=p1;password={x}};y};Uid=u"),
            "Driver={PostgreSQL Unicode};PWD=***;password=***;Uid=u"
        );
        assert_eq!(mask_secrets("Database=./x.db"), "Database=./x.db");
    }

    #[test]
    fn masks_every_spelling_and_form_in_text() {
        for (text, want) in [
            ("x PWD=Sekr3t", "x PWD=***"),
            ("'a;pwd = Sekr3t;b=1'", "'a;pwd =***;b=1'"),
            ("Password={Sek;r3t}};x};Uid=u", "Password=***;Uid=u"),
            ("AUTHTOKEN=Sekr3t", "AUTHTOKEN=***"),
            ("secret=Sekr3t 'é'", "secret=***"),
            ("no secrets: Uid=u;MyPwd=v", "no secrets: Uid=u;MyPwd=v"),
            ("é;Pwd=Sekr3t;é", "é;Pwd=***;é"),
            ("pwd", "pwd"),
            ("Pwd=", "Pwd=***"),
        ] {
            assert_eq!(mask_secrets_in_text(text), want);
        }
    }
}
