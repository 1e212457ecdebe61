//! Jobs from a file given at load (`--loadmodule librgsync.so rgsync.config /etc/rgsync.conf`):
//! one job per line, the words of `RGSYNC.ADD` (double quotes group words, `\"` and `\\`
//! escape); blank lines and lines starting with `#` are ignored.
//!
//! ```text
//! # users to the local SQLite file
//! users KEY user:{id} TABLE users COLUMNS "name age:integer" CONNECTION "Driver={SQLite3};Database=/var/lib/app.db" CREATE_TABLE yes
//! ```

use crate::config::JobConfig;
use crate::error::SyncError;
use crate::secrets::mask_secrets_in_text;

/// Splits a line into words (double quotes group, backslash escapes inside quotes).
pub fn words(line: &str) -> Result<Vec<String>, SyncError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err(SyncError::Config("dangling '\\'".into())),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(SyncError::Config("unclosed '\"'".into())),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Parses a config file's text.
pub fn parse(text: &str) -> Result<Vec<JobConfig>, SyncError> {
    let mut jobs: Vec<JobConfig> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The message may quote any word of the line, the connection string included: its
        // secrets are masked (the error is logged).
        let job = words(line)
            .and_then(|w| JobConfig::parse_args(&w))
            .map_err(|e| {
                let why = match e {
                    SyncError::Config(why) => why,
                    other => other.to_string(),
                };
                SyncError::Config(format!("line {}: {}", n + 1, mask_secrets_in_text(&why)))
            })?;
        if jobs.iter().any(|j| j.name == job.name) {
            return Err(SyncError::Config(format!(
                "line {}: job '{}' defined twice",
                n + 1,
                job.name
            )));
        }
        jobs.push(job);
    }
    Ok(jobs)
}

/// Reads and parses a config file.
pub fn load(path: &str) -> Result<Vec<JobConfig>, SyncError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SyncError::Config(format!("cannot read: {e}")))?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_lines() {
        assert_eq!(
            words(r#"a "b c" "d\"e" f"#).unwrap(),
            ["a", "b c", "d\"e", "f"]
        );
        assert!(words("\"open").is_err());
        let jobs = parse(
            "# comment\n\nu KEY u:{id} TABLE t COLUMNS \"a b:integer\" CONNECTION \"Driver={SQLite3};Database=/tmp/x.db\"\n",
        )
        .unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].columns.len(), 2);
        let err = parse("u KEY u TABLE t CONNECTION c").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn errors_do_not_quote_passwords() {
        let conn = "Driver={SQLite3};Database=/tmp/xdb;PWD=Sekr3t";
        for line in [
            format!("u KEY u:{{id}} TABLE t \"{conn}\""),
            format!("u KEY u:{{id}} TABLE t CONNECTION x \"{conn}\" y"),
            format!("u KEY u:{{id}} TABLE \"{conn}\" CONNECTION x"),
            format!("u KEY u:{{id}} TABLE t CONNECTION x BATCH \"{conn}\""),
        ] {
            let err = parse(&format!("# c\n{line}")).unwrap_err().to_string();
            assert!(err.starts_with("invalid job: line 2: "), "{err}");
            assert!(!err.contains("invalid job: line 2: invalid job"), "{err}");
            assert!(!err.to_lowercase().contains("sekr3t"), "{err}");
            assert!(err.to_lowercase().contains("pwd=***"), "{err}");
        }
    }
}
