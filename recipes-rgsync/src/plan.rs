//! From a batch of changes to statements: convert each change to a typed row (failures are
//! per record), optionally coalesce per key (last write wins), then group consecutive changes
//! of the same operation into multi-row statements, in stream order.
//!
//! Every upsert writes all mapped columns (a field missing from the hash is NULL), so within a
//! run of upserts only the last change of each key matters; coalescing extends that across the
//! whole batch (a delete after an upsert of the same key leaves only the delete).
//!
//! ```
//! use recipes_rgsync::plan::{Row, Statement, group};
//! use recipes_rgsync::change::Op;
//! use recipes_rgsync::types::SqlValue::Int;
//! let rows = vec![
//!     Row { key: "u:1".into(), op: Op::Upsert, pk: vec![Int(1)], values: vec![] },
//!     Row { key: "u:1".into(), op: Op::Upsert, pk: vec![Int(1)], values: vec![] },
//!     Row { key: "u:2".into(), op: Op::Delete, pk: vec![Int(2)], values: vec![] },
//! ];
//! let stmts = group(rows, false);
//! assert_eq!(stmts.len(), 2);
//! assert!(matches!(&stmts[0], Statement { op: Op::Upsert, rows } if rows.len() == 1));
//! ```

use crate::change::{Change, Op};
use crate::config::JobConfig;
use crate::error::SyncError;
use crate::types::SqlValue;

/// A change as typed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The Redis key (identity for coalescing).
    pub key: String,
    /// Upsert or delete.
    pub op: Op,
    /// Primary-key values, in key-pattern order.
    pub pk: Vec<SqlValue>,
    /// Mapped column values, in mapping order (upserts only).
    pub values: Vec<SqlValue>,
}

/// One multi-row statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Upsert or delete.
    pub op: Op,
    /// Its rows.
    pub rows: Vec<Row>,
}

/// Converts a change: primary key from the key, typed values from the fields.
pub fn to_row(job: &JobConfig, change: &Change) -> Result<Row, SyncError> {
    let raw = job.key.extract(&change.key)?;
    let pk = job
        .key
        .columns()
        .zip(&raw)
        .map(|((name, ty), v)| ty.convert(name, v))
        .collect::<Result<Vec<_>, _>>()?;
    let values = match change.op {
        Op::Delete => Vec::new(),
        Op::Upsert => job
            .columns
            .iter()
            .map(
                |c| match change.fields.iter().find(|(f, _)| *f == c.field) {
                    Some((_, v)) => c.ty.convert(&c.column, v),
                    None => Ok(SqlValue::Null),
                },
            )
            .collect::<Result<Vec<_>, _>>()?,
    };
    if !job.dialect.text_holds_nul() {
        let names = job
            .key
            .columns()
            .map(|(n, _)| n)
            .chain(job.columns.iter().map(|c| &c.column));
        for (column, value) in names.zip(pk.iter().chain(&values)) {
            if matches!(value, SqlValue::Text(t) if t.contains('\0')) {
                return Err(SyncError::Unstorable {
                    column: column.clone(),
                    why: format!(
                        "the value holds a NUL byte, which {} text cannot store",
                        job.dialect.name()
                    ),
                });
            }
        }
    }
    Ok(Row {
        key: change.key.clone(),
        op: change.op,
        pk,
        values,
    })
}

/// Keeps the last row of each key, at the position of that last row.
fn last_per_key(rows: Vec<Row>) -> Vec<Row> {
    let mut last = std::collections::HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        last.insert(r.key.clone(), i);
    }
    rows.into_iter()
        .enumerate()
        .filter(|(i, r)| last.get(&r.key) == Some(i))
        .map(|(_, r)| r)
        .collect()
}

/// Groups rows into statements: with `coalesce`, one upsert and one delete statement over
/// the last change of each key; without, one statement per run of the same operation.
pub fn group(rows: Vec<Row>, coalesce: bool) -> Vec<Statement> {
    if coalesce {
        let (ups, dels): (Vec<Row>, Vec<Row>) = last_per_key(rows)
            .into_iter()
            .partition(|r| r.op == Op::Upsert);
        return [(Op::Delete, dels), (Op::Upsert, ups)]
            .into_iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(op, rows)| Statement { op, rows })
            .collect();
    }
    let mut out: Vec<Statement> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some(s) if s.op == r.op => s.rows.push(r),
            _ => out.push(Statement {
                op: r.op,
                rows: vec![r],
            }),
        }
    }
    for s in &mut out {
        s.rows = last_per_key(std::mem::take(&mut s.rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPattern;
    use crate::types::SqlValue::*;

    fn job() -> JobConfig {
        JobConfig::new(
            "j",
            KeyPattern::parse("u:{r}:{id:integer}").unwrap(),
            "t",
            crate::columns::parse_columns("name age:integer").unwrap(),
            "Driver={SQLite3}",
        )
        .unwrap()
    }

    fn up(key: &str, fields: &[(&str, &str)]) -> Change {
        Change {
            key: key.into(),
            op: Op::Upsert,
            ack: None,
            fields: fields
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn del(key: &str) -> Change {
        Change {
            key: key.into(),
            op: Op::Delete,
            ack: None,
            fields: vec![],
        }
    }

    #[test]
    fn rows_are_typed_and_missing_fields_are_null() {
        let r = to_row(&job(), &up("u:eu:7", &[("age", "3"), ("other", "x")])).unwrap();
        assert_eq!(r.pk, [Text("eu".into()), Int(7)]);
        assert_eq!(r.values, [Null, Int(3)]);
        assert!(to_row(&job(), &up("u:eu:x", &[])).is_err());
        assert!(to_row(&job(), &up("u:eu:1", &[("age", "old")])).is_err());
        assert!(to_row(&job(), &up("v:1", &[])).is_err());
        assert!(to_row(&job(), &del("u:eu:7")).unwrap().values.is_empty());
    }

    fn keys(s: &Statement) -> Vec<&str> {
        s.rows.iter().map(|r| r.key.as_str()).collect()
    }

    #[test]
    fn runs_keep_order_and_drop_repeats_within_a_run() {
        let j = job();
        let rows: Vec<Row> = [
            up("u:a:1", &[("name", "x")]),
            up("u:a:2", &[]),
            up("u:a:1", &[("name", "y")]),
            del("u:a:1"),
            up("u:a:1", &[("name", "z")]),
        ]
        .iter()
        .map(|c| to_row(&j, c).unwrap())
        .collect();
        let s = group(rows.clone(), false);
        assert_eq!(s.len(), 3);
        assert_eq!(keys(&s[0]), ["u:a:2", "u:a:1"]);
        assert_eq!(s[0].rows[1].values[0], Text("y".into()));
        assert_eq!(s[1].op, Op::Delete);
        assert_eq!(s[2].rows[0].values[0], Text("z".into()));
        // coalesced: the last change per key only
        let c = group(rows, true);
        assert_eq!(c.len(), 1);
        assert_eq!(keys(&c[0]), ["u:a:2", "u:a:1"]);
        assert_eq!(c[0].rows[1].values[0], Text("z".into()));
    }

    #[test]
    fn coalescing_keeps_a_final_delete() {
        let j = job();
        let rows: Vec<Row> = [up("u:a:1", &[]), del("u:a:1"), up("u:a:2", &[])]
            .iter()
            .map(|c| to_row(&j, c).unwrap())
            .collect();
        let c = group(rows, true);
        assert_eq!(c[0].op, Op::Delete);
        assert_eq!(keys(&c[0]), ["u:a:1"]);
        assert_eq!(keys(&c[1]), ["u:a:2"]);
        assert!(group(Vec::new(), true).is_empty());
    }
}
