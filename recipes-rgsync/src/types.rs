//! Typed columns: each mapped hash field is converted to its column's type before it is
//! bound, and a value that does not convert is reported (the record goes to the dead-letter
//! stream with the error), never silently written as text.
//!
//! ```
//! use recipes_rgsync::types::{ColumnType, SqlValue};
//! assert_eq!(ColumnType::Integer.convert("age", " 42 ").unwrap(), SqlValue::Int(42));
//! assert_eq!(ColumnType::Float.convert("t", "36.6").unwrap(), SqlValue::Float(36.6));
//! assert!(ColumnType::Integer.convert("age", "forty").is_err());
//! assert_eq!(
//!     ColumnType::Timestamp.convert("at", "2024-02-29T10:11:12Z").unwrap(),
//!     SqlValue::Text("2024-02-29 10:11:12".into())
//! );
//! ```

use crate::error::SyncError;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum ColumnType {
    /// 64-bit signed integer.
    Integer,
    /// 64-bit float (finite).
    Float,
    /// Text, as is.
    Text,
    /// A timestamp: `YYYY-MM-DD[ T]HH:MM:SS[.fff][Z]`, or Unix seconds / milliseconds;
    /// bound as `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC).
    Timestamp,
}

/// A converted value, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL (the field is missing from the hash).
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text (also timestamps, in canonical form).
    Text(String),
}

impl ColumnType {
    /// Parses `integer|int|bigint`, `float|double|real`, `text|string|varchar`,
    /// `timestamp|datetime`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "integer" | "int" | "bigint" => ColumnType::Integer,
            "float" | "double" | "real" => ColumnType::Float,
            "text" | "string" | "varchar" => ColumnType::Text,
            "timestamp" | "datetime" => ColumnType::Timestamp,
            _ => return None,
        })
    }

    /// The name used in messages and `RGSYNC.LIST`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Text => "text",
            ColumnType::Timestamp => "timestamp",
        }
    }

    /// Converts a hash value for `column`.
    pub fn convert(self, column: &str, value: &str) -> Result<SqlValue, SyncError> {
        let fail = || SyncError::Convert {
            column: column.to_string(),
            value: value.chars().take(64).collect(),
            ty: self.name(),
        };
        let t = value.trim();
        match self {
            ColumnType::Text => Ok(SqlValue::Text(value.to_string())),
            ColumnType::Integer => t.parse::<i64>().map(SqlValue::Int).map_err(|_| fail()),
            ColumnType::Float => match t.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(SqlValue::Float(f)),
                _ => Err(fail()),
            },
            ColumnType::Timestamp => parse_timestamp(t).map(SqlValue::Text).ok_or_else(fail),
        }
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Canonical `YYYY-MM-DD HH:MM:SS[.f]` of an ISO-8601-like text or a Unix time.
fn parse_timestamp(t: &str) -> Option<String> {
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        // Unix seconds (10 digits or fewer) or milliseconds (13).
        let n: i64 = t.parse().ok()?;
        let (secs, ms) = if t.len() >= 13 {
            (n / 1000, n % 1000)
        } else {
            (n, 0)
        };
        let (y, m, d) = civil(secs.div_euclid(86_400));
        let s = secs.rem_euclid(86_400);
        let base = format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            s / 3600,
            s % 3600 / 60,
            s % 60
        );
        return Some(if ms > 0 {
            format!("{base}.{ms:03}")
        } else {
            base
        });
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (d, tm),
        None => (t, "00:00:00"),
    };
    let mut dp = date.split('-');
    let (y, m, d) = (
        digits(dp.next()?, 4)?,
        digits(dp.next()?, 2)?,
        digits(dp.next()?, 2)?,
    );
    if dp.next().is_some() || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, f)) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            (a, Some(f))
        }
        Some(_) => return None,
        None => (time, None),
    };
    let mut tp = hms.split(':');
    let (h, mi, s) = (
        digits(tp.next()?, 2)?,
        digits(tp.next()?, 2)?,
        digits(tp.next().unwrap_or("00"), 2)?,
    );
    if tp.next().is_some() || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let base = format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    Some(match frac {
        Some(f) => format!("{base}.{f}"),
        None => base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_floats() {
        assert_eq!(
            ColumnType::Integer.convert("a", "-7").unwrap(),
            SqlValue::Int(-7)
        );
        assert!(ColumnType::Integer.convert("a", "1.5").is_err());
        assert!(ColumnType::Integer
            .convert("a", "99999999999999999999")
            .is_err());
        assert!(ColumnType::Float.convert("a", "NaN").is_err());
        assert!(ColumnType::Float.convert("a", "inf").is_err());
        assert_eq!(
            ColumnType::Float.convert("a", "1e3").unwrap(),
            SqlValue::Float(1000.0)
        );
        let err = ColumnType::Integer.convert("age", "x1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 'age': cannot convert 'x1' to integer"
        );
    }

    #[test]
    fn text_is_kept_verbatim() {
        assert_eq!(
            ColumnType::Text
                .convert("a", " x'); DROP TABLE t;--")
                .unwrap(),
            SqlValue::Text(" x'); DROP TABLE t;--".into())
        );
    }

    #[test]
    fn timestamps() {
        let ok = |s: &str| match ColumnType::Timestamp.convert("t", s).unwrap() {
            SqlValue::Text(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(ok("2024-01-02"), "2024-01-02 00:00:00");
        assert_eq!(ok("2024-01-02 03:04"), "2024-01-02 03:04:00");
        assert_eq!(ok("2024-01-02T03:04:05.123Z"), "2024-01-02 03:04:05.123");
        assert_eq!(ok("0"), "1970-01-01 00:00:00");
        assert_eq!(ok("1700000000"), "2023-11-14 22:13:20");
        assert_eq!(ok("1700000000123"), "2023-11-14 22:13:20.123");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-01-01 24:00:00",
            "yesterday",
            "",
            "2024-01-01 10:00:00.",
        ] {
            assert!(
                ColumnType::Timestamp.convert("t", bad).is_err(),
                "{bad} accepted"
            );
        }
        assert_eq!(ok("2024-02-29"), "2024-02-29 00:00:00");
    }

    #[test]
    fn type_names_parse_back() {
        for t in [
            ColumnType::Integer,
            ColumnType::Float,
            ColumnType::Text,
            ColumnType::Timestamp,
        ] {
            assert_eq!(ColumnType::parse(t.name()), Some(t));
        }
        assert_eq!(ColumnType::parse("blob"), None);
    }
}
