//! The SQL names a job may use: identifiers (a job, a table part, a column), column names
//! (no `.`), table names (optionally schema-qualified). What passes is safe to quote in any
//! dialect: no quotes, brackets, backslashes, `;` or control characters.
//!
//! ```
//! use recipes_rgsync::identifiers::{check_column, check_table};
//! assert!(check_table("s.users").is_ok());
//! assert!(check_column("a.b").is_err());
//! assert!(check_column("name\"; DROP").is_err());
//! ```

use crate::error::SyncError;

/// Checks a job, table or column name: no quotes, brackets, backslashes or control
/// characters, 1..=128 characters.
pub fn check_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 128 {
        return Err(format!("identifier '{name}' must have 1 to 128 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '`' | '[' | ']' | '\\' | '\'' | ';'))
    {
        return Err(format!(
            "identifier '{name}' contains a forbidden character {c:?}"
        ));
    }
    Ok(())
}

/// Checks a column name (a `COLUMNS` column, a key part): an identifier without `.`, which
/// would be read as `table.column` when quoted (only `TABLE` and `CHECKPOINT_TABLE` may be
/// schema-qualified). A hash field with a `.` is mapped to another name: `a.b=a_b`.
pub fn check_column(name: &str) -> Result<(), String> {
    check_identifier(name)?;
    if name.contains('.') {
        return Err(format!(
            "column '{name}': '.' is not allowed in a column name (only TABLE and \
             CHECKPOINT_TABLE may be schema-qualified); map the field to another column, e.g. \
             '{name}={}'",
            name.replace('.', "_")
        ));
    }
    Ok(())
}

/// Checks a table name, schema-qualified or not: each `.`-separated part an identifier.
pub fn check_table(table: &str) -> Result<(), SyncError> {
    for part in table.split('.') {
        check_identifier(part).map_err(SyncError::Config)?;
    }
    Ok(())
}
