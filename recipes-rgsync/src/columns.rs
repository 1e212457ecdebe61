//! A job's mapped columns: which hash field goes to which table column, with its type, as
//! `COLUMNS` writes them (`field[=column][:type]`).
//!
//! ```
//! use recipes_rgsync::columns::parse_columns;
//! use recipes_rgsync::types::ColumnType;
//! let columns = parse_columns("name a.b=a_b age:integer").unwrap();
//! assert_eq!((columns[1].field.as_str(), columns[1].column.as_str()), ("a.b", "a_b"));
//! assert_eq!(columns[2].ty, ColumnType::Integer);
//! assert!(parse_columns("a a").is_err());
//! // Any field name once mapped to a safe column; unmapped, it must be one itself.
//! assert_eq!(parse_columns("it's=its `q`=q").unwrap()[0].field, "it's");
//! assert!(parse_columns("it's").is_err());
//! ```

use crate::error::SyncError;
use crate::identifiers::check_column;
use crate::types::ColumnType;

/// One mapped hash field.
#[derive(Debug, Clone, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Column {
    /// The hash field.
    pub field: String,
    /// The table column.
    pub column: String,
    /// Its type.
    pub ty: ColumnType,
}

/// Parses `field[=column][:type]` words separated by spaces or commas.
pub fn parse_columns(spec: &str) -> Result<Vec<Column>, SyncError> {
    let mut out: Vec<Column> = Vec::new();
    for word in spec.split([' ', ',']).filter(|w| !w.is_empty()) {
        let (name, ty) = match word.rsplit_once(':') {
            Some((n, t)) => (
                n,
                ColumnType::parse(t).ok_or_else(|| {
                    SyncError::Config(format!("column '{word}': unknown type '{t}'"))
                })?,
            ),
            None => (word, ColumnType::Text),
        };
        let (field, column) = name.split_once('=').unwrap_or((name, name));
        // A mapped field is only a hash field's name, never SQL: any name works once it is
        // mapped to a column that is a safe identifier.
        if field.is_empty() {
            return Err(SyncError::Config(format!("column '{word}': no field name")));
        }
        check_column(column).map_err(SyncError::Config)?;
        if field.starts_with('#') {
            return Err(SyncError::Config(format!(
                "field '{field}': fields starting with '#' are control fields"
            )));
        }
        if out.iter().any(|c| c.column == column || c.field == field) {
            return Err(SyncError::Config(format!("column '{column}' mapped twice")));
        }
        out.push(Column {
            field: field.to_string(),
            column: column.to_string(),
            ty,
        });
    }
    Ok(out)
}
