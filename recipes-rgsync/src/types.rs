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
    /// A timestamp: ISO-8601 `YYYY-MM-DD`, or `YYYY-MM-DD` + `T` or space + `HH:MM[:SS[.f]]`
    /// (1 to 6 fraction digits) + an optional offset `Z`, `±HH:MM`, `±HHMM` or `±HH` (converted
    /// to UTC; no offset means UTC); or Unix seconds / milliseconds (13 digits or more). Bound
    /// as `YYYY-MM-DD HH:MM:SS[.f]` (UTC).
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

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm, inverse of [`civil`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits the UTC offset off a time of day: `Z`, `±HH:MM`, `±HHMM` or `±HH` (hours up to 23,
/// minutes up to 59); none means UTC. Returns the time and the offset in seconds east of UTC,
/// `None` for a malformed offset.
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(t) = time.strip_suffix('Z') {
        return Some((t, 0));
    }
    let Some(i) = time.rfind(['+', '-']) else {
        return Some((time, 0));
    };
    let (t, sign, o) = (&time[..i], &time[i..i + 1], &time[i + 1..]);
    if !o.is_ascii() {
        return None;
    }
    let (h, m) = match o.len() {
        2 => (digits(o, 2)?, 0),
        4 => (digits(&o[..2], 2)?, digits(&o[2..], 2)?),
        5 if &o[2..3] == ":" => (digits(&o[..2], 2)?, digits(&o[3..], 2)?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    let secs = i64::from(h * 3600 + m * 60);
    Some((t, if sign == "-" { -secs } else { secs }))
}

/// Canonical UTC `YYYY-MM-DD HH:MM:SS[.f]` of an ISO-8601 text (see [`ColumnType::Timestamp`])
/// or a Unix time.
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
    let (date, time, offset) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => {
            let (tm, offset) = split_offset(tm)?;
            (d, tm, offset)
        }
        None => (t.strip_suffix('Z').unwrap_or(t), "00:00:00", 0),
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
    let (h, mi) = (digits(tp.next()?, 2)?, digits(tp.next()?, 2)?);
    // Seconds may be left out, but not before a fraction.
    let s = match (tp.next(), frac) {
        (Some(s), _) => digits(s, 2)?,
        (None, None) => 0,
        (None, Some(_)) => return None,
    };
    if tp.next().is_some() || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    // To UTC: local time minus the offset, across midnight (and month, year) if need be.
    let secs =
        days_from_civil(i64::from(y), m, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    if !(0..=9999).contains(&y) {
        return None;
    }
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    let base = format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    Some(match frac {
        Some(f) => format!("{base}.{f}"),
        None => base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text timestamp `s` converts to (panics if it is refused).
    fn timestamp(s: &str) -> String {
        match ColumnType::Timestamp.convert("t", s) {
            Ok(SqlValue::Text(t)) => t,
            other => panic!("{s}: {other:?}"),
        }
    }

    /// Asserts that each timestamp converts to its text.
    fn assert_converts(cases: &[(&str, &str)]) {
        for (input, want) in cases {
            assert_eq!(timestamp(input), *want, "{input}");
        }
    }

    /// Asserts that every one of `bad` is refused as a timestamp.
    fn assert_refused(bad: &[&str]) {
        for bad in bad {
            assert!(
                ColumnType::Timestamp.convert("t", bad).is_err(),
                "{bad} accepted"
            );
        }
    }

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
        assert_converts(&[
            ("2024-01-02", "2024-01-02 00:00:00"),
            ("2024-01-02 03:04", "2024-01-02 03:04:00"),
            ("2024-01-02T03:04:05.123Z", "2024-01-02 03:04:05.123"),
            ("0", "1970-01-01 00:00:00"),
            ("1700000000", "2023-11-14 22:13:20"),
            ("1700000000123", "2023-11-14 22:13:20.123"),
        ]);
        assert_refused(&[
            "2023-02-29",
            "2024-13-01",
            "2024-01-01 24:00:00",
            "yesterday",
            "",
            "2024-01-01 10:00:00.",
        ]);
        assert_eq!(timestamp("2024-02-29"), "2024-02-29 00:00:00");
    }

    #[test]
    fn timestamp_offsets_convert_to_utc() {
        // each form
        assert_converts(&[
            ("2026-11-27T10:00:00Z", "2026-11-27 10:00:00"),
            ("2026-11-27T10:00:00+02:00", "2026-11-27 08:00:00"),
            ("2026-11-27T10:00:00-02:30", "2026-11-27 12:30:00"),
            ("2026-11-27T10:00:00+0530", "2026-11-27 04:30:00"),
            ("2026-11-27T10:00:00-0100", "2026-11-27 11:00:00"),
            ("2026-11-27T10:00:00+02", "2026-11-27 08:00:00"),
            ("2026-11-27 10:00-03", "2026-11-27 13:00:00"),
            ("2026-11-27T10:00:00+00:00", "2026-11-27 10:00:00"),
            ("2026-11-27T10:00:00-00:00", "2026-11-27 10:00:00"),
            // fractions are kept
            ("2026-11-27T10:00:00.25+02:00", "2026-11-27 08:00:00.25"),
            ("2026-11-27T10:00:00.123456Z", "2026-11-27 10:00:00.123456"),
            // across midnight, a month end, a year end, a leap day
            ("2026-11-27T01:00:00+02:00", "2026-11-26 23:00:00"),
            ("2026-11-27T23:30:00-01:00", "2026-11-28 00:30:00"),
            ("2026-12-01T00:15:00+0100", "2026-11-30 23:15:00"),
            ("2026-12-31T23:30:00-01", "2027-01-01 00:30:00"),
            ("2027-01-01T00:00:00+00:01", "2026-12-31 23:59:00"),
            ("2024-03-01T00:30:00+01:00", "2024-02-29 23:30:00"),
            ("2023-03-01T00:30:00+01:00", "2023-02-28 23:30:00"),
            ("2024-02-28T23:00:00-23:59", "2024-02-29 22:59:00"),
        ]);
        // garbage is still refused
        assert_refused(&[
            "2026-11-27T10:00:00+2:00",
            "2026-11-27T10:00:00+02:0",
            "2026-11-27T10:00:00+020",
            "2026-11-27T10:00:00+02:00:00",
            "2026-11-27T10:00:00+0200x",
            "2026-11-27T10:00:00+24:00",
            "2026-11-27T10:00:00+02:60",
            "2026-11-27T10:00:00+",
            "2026-11-27T10:00:00-",
            "2026-11-27T10:00:00++02:00",
            "2026-11-27T10:00:00+02:00Z",
            "2026-11-27T10:00:00ZZ",
            "2026-11-27T10:00:00 +02:00",
            "2026-11-27T10:00:00+é1",
            "2026-11-27T10:00:00+0é",
            "2026-11-27T10:00.5",
            "2026-11-27T+02:00",
            "2026-11-27T25:00:00+02:00",
            "2026-02-30T10:00:00+02:00",
            "0000-01-01T00:30:00+01:00",
            "9999-12-31T23:30:00-01:00",
        ]);
        assert_eq!(
            timestamp("0000-01-01T01:00:00+01:00"),
            "0000-01-01 00:00:00"
        );
        assert_eq!(
            timestamp("9999-12-31T22:00:00-01:00"),
            "9999-12-31 23:00:00"
        );
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
