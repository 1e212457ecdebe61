//! A job's connection, checked when the job is added, so a job that cannot work is refused
//! with a reason instead of accepted and retried forever:
//!
//! 1. [`check_syntax`]: an ODBC connection string (`key=value` pairs separated by `;`, values
//!    in `{…}` when they hold `;`) naming a `DRIVER`, a `DSN` or a `FILEDSN`;
//! 2. [`check_driver`]: the driver named is installed (`odbcinst.ini`), the DSN is defined;
//! 3. [`check_connects`]: a connection opens within the login timeout and the job's tables are
//!    there or can be created. `CHECK_CONNECTION no` skips this one, for a database that is
//!    down on purpose (the job then waits for it, as in any outage).
//!
//! ```
//! use recipes_rgsync::validate::check_syntax;
//! assert!(check_syntax("Driver={SQLite3};Database=/tmp/app.db").is_ok());
//! assert!(check_syntax("").unwrap_err().to_string().contains("empty"));
//! assert!(check_syntax("not a dsn").unwrap_err().to_string().contains("key=value"));
//! assert!(check_syntax("Server=db;Uid=app").unwrap_err().to_string().contains("DRIVER"));
//! ```

use crate::config::JobConfig;
use crate::connector::OdbcConnector;
use crate::error::SyncError;

fn invalid(why: String) -> SyncError {
    SyncError::Config(format!("CONNECTION: {why}"))
}

/// The `key=value` attributes of an ODBC connection string, keys upper-cased, `{…}` values
/// unwrapped (`}}` inside one is a `}`).
pub(crate) fn attributes(conn: &str) -> Result<Vec<(String, String)>, SyncError> {
    let mut out = Vec::new();
    let mut rest = conn.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            // Not echoed: the text may be a secret.
            return Err(invalid(format!(
                "attribute {} is not key=value (an ODBC connection string is key=value; pairs)",
                out.len() + 1
            )));
        };
        let braced = after.starts_with('{');
        let (value, next) = match after.strip_prefix('{') {
            Some(braced) => {
                // The same `{…}` rule (`}}` an escaped brace) as the secrets' masking.
                let end = crate::secrets::closing_brace(braced.as_bytes(), 0);
                if end == braced.len() {
                    return Err(invalid("a '{' value is not closed by '}'".into()));
                }
                let tail = braced[end + 1..].trim_start();
                (&braced[..end], tail.strip_prefix(';').unwrap_or(tail))
            }
            None => after.split_once(';').unwrap_or((after, "")),
        };
        let key = key.trim();
        if key.is_empty() || key.contains(';') {
            return Err(invalid(
                "an attribute has no name (expected key=value; pairs)".into(),
            ));
        }
        let value = if braced {
            value.replace("}}", "}")
        } else {
            value.trim().to_string()
        };
        out.push((key.to_ascii_uppercase(), value));
        rest = next.trim_start();
    }
    Ok(out)
}

/// Checks that `conn` is an ODBC connection string naming a driver or a data source.
pub fn check_syntax(conn: &str) -> Result<(), SyncError> {
    if conn.trim().is_empty() {
        return Err(invalid("empty".into()));
    }
    let attrs = attributes(conn)?;
    if attrs
        .iter()
        .any(|(k, v)| matches!(k.as_str(), "DRIVER" | "DSN" | "FILEDSN") && !v.is_empty())
    {
        Ok(())
    } else {
        Err(invalid(
            "names no DRIVER (Driver={...};...), DSN or FILEDSN".into(),
        ))
    }
}

/// Checks that the driver `conn` names is installed, or its DSN defined.
pub fn check_driver(conn: &str) -> Result<(), SyncError> {
    let attrs = attributes(conn)?;
    let env = odbc_api::environment().map_err(|e| invalid(format!("ODBC: {e}")))?;
    if let Some((_, driver)) = attrs.iter().find(|(k, _)| k == "DRIVER") {
        let installed: Vec<String> = env
            .drivers()
            .map_err(|e| invalid(format!("cannot list the ODBC drivers: {e}")))?
            .into_iter()
            .map(|d| d.description)
            .collect();
        if !installed.iter().any(|d| d.eq_ignore_ascii_case(driver)) {
            return Err(invalid(format!(
                "the ODBC driver '{driver}' is not installed (installed: {})",
                installed.join(", ")
            )));
        }
    } else if let Some((_, dsn)) = attrs.iter().find(|(k, _)| k == "DSN") {
        let defined = env
            .data_sources()
            .map_err(|e| invalid(format!("cannot list the ODBC data sources: {e}")))?;
        if !defined
            .iter()
            .any(|d| d.server_name.eq_ignore_ascii_case(dsn))
        {
            return Err(invalid(format!(
                "the ODBC data source '{dsn}' is not defined"
            )));
        }
    }
    Ok(())
}

/// Opens a connection as the writer will (login timeout included) and prepares the job's
/// tables: a database that is down, refuses the credentials or lacks the table (without
/// `CREATE_TABLE yes`) is reported now.
pub fn check_connects(job: &JobConfig) -> Result<(), SyncError> {
    let mut db = OdbcConnector::new(job);
    let checked = db.prepare(job).and_then(|()| {
        if job.create_table {
            Ok(())
        } else {
            db.probe_table(job)
        }
    });
    checked.map_err(|e| match e {
        SyncError::Db { message, .. } | SyncError::Setup(message) => {
            invalid(format!("the database refused: {message}"))
        }
        other => other,
    })
}

/// All three checks, the connection one unless the job says `CHECK_CONNECTION no`.
pub fn check(job: &JobConfig) -> Result<(), SyncError> {
    check_syntax(&job.connection)?;
    check_driver(&job.connection)?;
    if job.check_connection {
        check_connects(job)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_of_connection_strings() {
        let attrs = attributes("Driver={MariaDB Unicode};Server=h; Pwd={a;b};").unwrap();
        assert_eq!(
            attrs,
            [
                ("DRIVER".to_string(), "MariaDB Unicode".to_string()),
                ("SERVER".to_string(), "h".to_string()),
                ("PWD".to_string(), "a;b".to_string()),
            ]
        );
        assert!(attributes("Driver={open;").is_err());
        assert_eq!(attributes("Pwd={a}}b};X=1").unwrap()[0].1, "a}b");
        assert!(check_syntax("DSN=app").is_ok());
        assert!(check_syntax("Driver=;Server=h").is_err());
        // A refused string is not echoed: it may hold a secret.
        let e = check_syntax("Driver={SQLite3};hunter2")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("attribute 2 is not key=value") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn drivers_must_be_installed() {
        let e = check_driver("Driver={NoSuchDriver};Server=h").unwrap_err();
        assert!(
            e.to_string().contains("'NoSuchDriver' is not installed"),
            "{e}"
        );
        assert!(check_driver("Driver={SQLite3};Database=/tmp/x.db").is_ok());
        let e = check_driver("DSN=no_such_dsn").unwrap_err();
        assert!(
            e.to_string().contains("'no_such_dsn' is not defined"),
            "{e}"
        );
    }
}
