//! SQL generation per database: quoted identifiers, multi-row upserts and deletes with `?`
//! placeholders only (values are always bound, never spliced), the checkpoint statements and
//! `CREATE TABLE`. Pure text: tested without a database.
//!
//! | dialect | upsert |
//! |---|---|
//! | SQLite, PostgreSQL | `INSERT … VALUES (…),(…) ON CONFLICT (k) DO UPDATE SET c=excluded.c` |
//! | MySQL / MariaDB | `INSERT … VALUES (…),(…) ON DUPLICATE KEY UPDATE c=VALUES(c)` |
//! | SQL Server | `MERGE INTO t WITH (HOLDLOCK) AS d USING (VALUES …) AS s (…) …;` |
//! | Oracle | `MERGE INTO t d USING (SELECT ? "k", ? "c" FROM DUAL UNION ALL …) s …` |
//! | Snowflake | `MERGE INTO t AS d USING (SELECT column1 AS "k", … FROM VALUES …) AS s …` |
//! | DB2 | `MERGE INTO t AS d USING (VALUES …) AS s (…) …` |
//!
//! ```
//! use recipes_rgsync::dialect::Dialect;
//! use recipes_rgsync::types::ColumnType::{Integer, Text};
//! let sql = Dialect::Postgres.upsert("users", &[("id", Integer)], &[("name", Text)], 2);
//! assert_eq!(sql, r#"INSERT INTO "users" ("id","name") VALUES (?,?),(?,?) ON CONFLICT ("id") DO UPDATE SET "name"=EXCLUDED."name""#);
//! assert_eq!(Dialect::MySql.quote("we`ird"), "`we``ird`");
//! ```

use crate::types::ColumnType;

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum Dialect {
    /// SQLite 3.24+ (the embedded default).
    Sqlite,
    /// MySQL and MariaDB.
    MySql,
    /// PostgreSQL 9.5+.
    Postgres,
    /// Oracle.
    Oracle,
    /// Microsoft SQL Server.
    SqlServer,
    /// Snowflake.
    Snowflake,
    /// IBM DB2.
    Db2,
}

/// A column name with its type.
pub type Col<'a> = (&'a str, ColumnType);

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 7] = [
        Dialect::Sqlite,
        Dialect::MySql,
        Dialect::Postgres,
        Dialect::Oracle,
        Dialect::SqlServer,
        Dialect::Snowflake,
        Dialect::Db2,
    ];

    /// Parses a dialect name (`sqlite`, `mysql`/`mariadb`, `postgres`/`postgresql`, `oracle`,
    /// `sqlserver`/`mssql`, `snowflake`, `db2`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Dialect::Sqlite,
            "mysql" | "mariadb" => Dialect::MySql,
            "postgres" | "postgresql" | "pg" => Dialect::Postgres,
            "oracle" => Dialect::Oracle,
            "sqlserver" | "mssql" => Dialect::SqlServer,
            "snowflake" => Dialect::Snowflake,
            "db2" => Dialect::Db2,
            _ => return None,
        })
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::MySql => "mysql",
            Dialect::Postgres => "postgres",
            Dialect::Oracle => "oracle",
            Dialect::SqlServer => "sqlserver",
            Dialect::Snowflake => "snowflake",
            Dialect::Db2 => "db2",
        }
    }

    /// Whether its text columns hold a NUL byte as data. PostgreSQL's cannot (its driver cuts
    /// the value at the NUL): such a value is refused, never written altered. SQLite and
    /// MariaDB store it (`tests/nul_bytes.rs`); the others are assumed to, untested here.
    pub fn text_holds_nul(self) -> bool {
        !matches!(self, Dialect::Postgres)
    }

    /// Guesses the dialect from the `Driver=` of an ODBC connection string.
    ///
    /// ```
    /// use recipes_rgsync::dialect::Dialect;
    /// assert_eq!(Dialect::from_connection("Driver={MariaDB Unicode};Server=h"), Some(Dialect::MySql));
    /// assert_eq!(Dialect::from_connection("DSN=x"), None);
    /// ```
    pub fn from_connection(conn: &str) -> Option<Self> {
        let lower = conn.to_ascii_lowercase();
        let driver = lower
            .split(';')
            .find_map(|p| p.trim().strip_prefix("driver="))?;
        [
            ("sqlite", Dialect::Sqlite),
            ("mariadb", Dialect::MySql),
            ("mysql", Dialect::MySql),
            ("postgres", Dialect::Postgres),
            ("psql", Dialect::Postgres),
            ("oracle", Dialect::Oracle),
            ("sql server", Dialect::SqlServer),
            ("snowflake", Dialect::Snowflake),
            ("db2", Dialect::Db2),
        ]
        .into_iter()
        .find(|(needle, _)| driver.contains(needle))
        .map(|(_, d)| d)
    }

    /// Quotes one identifier, or each part of `schema.table`.
    pub fn quote(self, ident: &str) -> String {
        ident
            .split('.')
            .map(|part| match self {
                Dialect::MySql => format!("`{}`", part.replace('`', "``")),
                Dialect::SqlServer => format!("[{}]", part.replace(']', "]]")),
                _ => format!("\"{}\"", part.replace('"', "\"\"")),
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Most bound parameters per statement (below each database's limit).
    pub fn max_params(self) -> usize {
        match self {
            Dialect::Sqlite => 999,
            Dialect::SqlServer => 2000,
            Dialect::Oracle => 4000,
            _ => 30_000,
        }
    }

    /// Rows per multi-row statement for `cols` parameters per row (at most 1000).
    pub fn rows_per_statement(self, cols: usize) -> usize {
        (self.max_params() / cols.max(1)).clamp(1, 1000)
    }

    /// The placeholder of a value of type `ty` (timestamps are bound as text and cast).
    pub fn placeholder(self, ty: ColumnType) -> &'static str {
        match (self, ty) {
            (Dialect::Postgres | Dialect::Db2, ColumnType::Timestamp) => "CAST(? AS TIMESTAMP)",
            (Dialect::SqlServer, ColumnType::Timestamp) => "CAST(? AS DATETIME2)",
            (Dialect::Oracle, ColumnType::Timestamp) => {
                "TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS.FF')"
            }
            (Dialect::Snowflake, ColumnType::Timestamp) => "TO_TIMESTAMP_NTZ(?)",
            _ => "?",
        }
    }

    fn list(self, cols: &[Col<'_>]) -> String {
        cols.iter()
            .map(|(c, _)| self.quote(c))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn row(self, cols: &[Col<'_>]) -> String {
        let p: Vec<&str> = cols.iter().map(|(_, t)| self.placeholder(*t)).collect();
        format!("({})", p.join(","))
    }

    /// A multi-row upsert of `rows` rows; parameters per row: `keys` then `cols`.
    pub fn upsert(self, table: &str, keys: &[Col<'_>], cols: &[Col<'_>], rows: usize) -> String {
        let all: Vec<Col<'_>> = keys.iter().chain(cols).copied().collect();
        let t = self.quote(table);
        let names = self.list(&all);
        let row = self.row(&all);
        let values = vec![row.as_str(); rows.max(1)].join(",");
        let q = |c: &str| self.quote(c);
        let set = |prefix: &str, src: &str| {
            cols.iter()
                .map(|(c, _)| format!("{prefix}{}={src}{}", q(c), q(c)))
                .collect::<Vec<_>>()
                .join(",")
        };
        let on = keys
            .iter()
            .map(|(k, _)| format!("d.{}=s.{}", q(k), q(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let insert_from_s = format!(
            "INSERT ({names}) VALUES ({})",
            all.iter()
                .map(|(c, _)| format!("s.{}", q(c)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let merge_tail = |update_prefix: &str| {
            let matched = if cols.is_empty() {
                String::new()
            } else {
                format!(" WHEN MATCHED THEN UPDATE SET {}", set(update_prefix, "s."))
            };
            format!("{matched} WHEN NOT MATCHED THEN {insert_from_s}")
        };
        match self {
            Dialect::Sqlite | Dialect::Postgres => {
                let conflict = self.list(keys);
                if cols.is_empty() {
                    format!("INSERT INTO {t} ({names}) VALUES {values} ON CONFLICT ({conflict}) DO NOTHING")
                } else {
                    let ex = if self == Dialect::Sqlite { "excluded." } else { "EXCLUDED." };
                    format!(
                        "INSERT INTO {t} ({names}) VALUES {values} ON CONFLICT ({conflict}) DO UPDATE SET {}",
                        set("", ex)
                    )
                }
            }
            Dialect::MySql => {
                let update = if let (true, Some(first)) = (cols.is_empty(), keys.first()) {
                    let k = q(first.0);
                    format!("{k}={k}")
                } else {
                    cols.iter()
                        .map(|(c, _)| format!("{}=VALUES({})", q(c), q(c)))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                format!("INSERT INTO {t} ({names}) VALUES {values} ON DUPLICATE KEY UPDATE {update}")
            }
            Dialect::SqlServer => format!(
                "MERGE INTO {t} WITH (HOLDLOCK) AS d USING (VALUES {values}) AS s ({names}) ON ({on}){};",
                merge_tail("d.")
            ),
            Dialect::Db2 => format!(
                "MERGE INTO {t} AS d USING (VALUES {values}) AS s ({names}) ON ({on}){}",
                merge_tail("")
            ),
            Dialect::Oracle => {
                let first = all
                    .iter()
                    .map(|(c, ty)| format!("{} {}", self.placeholder(*ty), q(c)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let other = all
                    .iter()
                    .map(|(_, ty)| self.placeholder(*ty))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut sel = vec![format!("SELECT {first} FROM DUAL")];
                sel.extend((1..rows.max(1)).map(|_| format!("SELECT {other} FROM DUAL")));
                format!(
                    "MERGE INTO {t} d USING ({}) s ON ({on}){}",
                    sel.join(" UNION ALL "),
                    merge_tail("d.")
                )
            }
            Dialect::Snowflake => {
                let aliases = all
                    .iter()
                    .enumerate()
                    .map(|(i, (c, _))| format!("column{} AS {}", i + 1, q(c)))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "MERGE INTO {t} AS d USING (SELECT {aliases} FROM VALUES {values}) AS s ON ({on}){}",
                    merge_tail("d.")
                )
            }
        }
    }

    /// A multi-row delete by primary key; parameters: the key columns of each row.
    pub fn delete(self, table: &str, keys: &[Col<'_>], rows: usize) -> String {
        let t = self.quote(table);
        let rows = rows.max(1);
        if let [(k, ty)] = keys {
            let p = vec![self.placeholder(*ty); rows].join(",");
            return format!("DELETE FROM {t} WHERE {} IN ({p})", self.quote(k));
        }
        let one = keys
            .iter()
            .map(|(k, ty)| format!("{}={}", self.quote(k), self.placeholder(*ty)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let all = vec![format!("({one})"); rows].join(" OR ");
        format!("DELETE FROM {t} WHERE {all}")
    }

    /// The column type in `CREATE TABLE`.
    pub fn sql_type(self, ty: ColumnType, key: bool) -> &'static str {
        use ColumnType::*;
        match (self, ty) {
            (Dialect::Oracle, Integer) => "NUMBER(19)",
            (_, Integer) => "BIGINT",
            (Dialect::MySql, Float) => "DOUBLE",
            (Dialect::Sqlite, Float) => "REAL",
            (Dialect::Oracle, Float) => "BINARY_DOUBLE",
            (Dialect::SqlServer, Float) => "FLOAT",
            (_, Float) => "DOUBLE PRECISION",
            (Dialect::MySql, Timestamp) => "DATETIME(6)",
            (Dialect::SqlServer, Timestamp) => "DATETIME2",
            (Dialect::Sqlite, Timestamp) => "TEXT",
            (_, Timestamp) => "TIMESTAMP",
            (Dialect::Sqlite | Dialect::Postgres, Text) => "TEXT",
            (Dialect::Oracle, Text) => "VARCHAR2(4000)",
            (Dialect::SqlServer, Text) if key => "NVARCHAR(450)",
            (Dialect::SqlServer, Text) => "NVARCHAR(MAX)",
            (Dialect::MySql, Text) if key => "VARCHAR(255)",
            // TEXT holds 64 KiB; a hash field can hold far more.
            (Dialect::MySql, Text) => "LONGTEXT",
            (Dialect::Snowflake, Text) => "VARCHAR",
            (Dialect::Db2, Text) if key => "VARCHAR(255)",
            (Dialect::Db2, Text) => "VARCHAR(4000)",
        }
    }

    /// `CREATE TABLE t (keys NOT NULL, cols, PRIMARY KEY (keys))`.
    pub fn create_table(self, table: &str, keys: &[Col<'_>], cols: &[Col<'_>]) -> String {
        let mut defs: Vec<String> = keys
            .iter()
            .map(|(k, ty)| format!("{} {} NOT NULL", self.quote(k), self.sql_type(*ty, true)))
            .collect();
        defs.extend(
            cols.iter()
                .map(|(c, ty)| format!("{} {}", self.quote(c), self.sql_type(*ty, false))),
        );
        defs.push(format!("PRIMARY KEY ({})", self.list(keys)));
        format!("CREATE TABLE {} ({})", self.quote(table), defs.join(", "))
    }

    /// A statement that fails if `table` does not exist (and reads nothing).
    pub fn probe(self, table: &str) -> String {
        format!("SELECT 1 FROM {} WHERE 1=0", self.quote(table))
    }

    /// The checkpoint table's columns: key (`job`, `stream`), value (`last_id`).
    pub fn checkpoint_columns() -> ([Col<'static>; 2], [Col<'static>; 1]) {
        (
            [("job", ColumnType::Text), ("stream", ColumnType::Text)],
            [("last_id", ColumnType::Text)],
        )
    }

    /// `SELECT last_id FROM <checkpoint> WHERE job=? AND stream=?`, a locking read where the
    /// database has one.
    pub fn checkpoint_select(self, table: &str) -> String {
        let (hint, lock) = match self {
            // A locking read waits for a transaction still holding the row (one whose
            // connection hung and whose COMMIT arrives late), then sees its outcome.
            Dialect::MySql | Dialect::Postgres | Dialect::Oracle | Dialect::Db2 => {
                ("", " FOR UPDATE")
            }
            Dialect::SqlServer => (" WITH (UPDLOCK, HOLDLOCK)", ""),
            // SQLite has one writer at a time; Snowflake has no row locks.
            Dialect::Sqlite | Dialect::Snowflake => ("", ""),
        };
        format!(
            "SELECT {} FROM {}{hint} WHERE {}=? AND {}=?{lock}",
            self.quote("last_id"),
            self.quote(table),
            self.quote("job"),
            self.quote("stream")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType::*;

    const K: &[Col<'static>] = &[("id", Integer)];
    const K2: &[Col<'static>] = &[("region", Text), ("id", Integer)];
    const C: &[Col<'static>] = &[("name", Text), ("at", Timestamp)];

    #[test]
    fn sqlite_and_postgres_upserts() {
        assert_eq!(
            Dialect::Sqlite.upsert("t", K, C, 2),
            r#"INSERT INTO "t" ("id","name","at") VALUES (?,?,?),(?,?,?) ON CONFLICT ("id") DO UPDATE SET "name"=excluded."name","at"=excluded."at""#
        );
        assert_eq!(
            Dialect::Postgres.upsert("s.t", K2, &C[..1], 1),
            r#"INSERT INTO "s"."t" ("region","id","name") VALUES (?,?,?) ON CONFLICT ("region","id") DO UPDATE SET "name"=EXCLUDED."name""#
        );
        assert_eq!(
            Dialect::Postgres.upsert("t", K, C, 1),
            r#"INSERT INTO "t" ("id","name","at") VALUES (?,?,CAST(? AS TIMESTAMP)) ON CONFLICT ("id") DO UPDATE SET "name"=EXCLUDED."name","at"=EXCLUDED."at""#
        );
        assert_eq!(
            Dialect::Sqlite.upsert("t", K, &[], 1),
            r#"INSERT INTO "t" ("id") VALUES (?) ON CONFLICT ("id") DO NOTHING"#
        );
    }

    #[test]
    fn mysql_upsert() {
        assert_eq!(
            Dialect::MySql.upsert("t", K2, &C[..1], 2),
            "INSERT INTO `t` (`region`,`id`,`name`) VALUES (?,?,?),(?,?,?) ON DUPLICATE KEY UPDATE `name`=VALUES(`name`)"
        );
        assert_eq!(
            Dialect::MySql.upsert("t", K, &[], 1),
            "INSERT INTO `t` (`id`) VALUES (?) ON DUPLICATE KEY UPDATE `id`=`id`"
        );
    }

    #[test]
    fn sqlserver_merge_holds_the_lock() {
        assert_eq!(
            Dialect::SqlServer.upsert("t", K, &C[..1], 2),
            "MERGE INTO [t] WITH (HOLDLOCK) AS d USING (VALUES (?,?),(?,?)) AS s ([id],[name]) ON (d.[id]=s.[id]) WHEN MATCHED THEN UPDATE SET d.[name]=s.[name] WHEN NOT MATCHED THEN INSERT ([id],[name]) VALUES (s.[id],s.[name]);"
        );
    }

    #[test]
    fn oracle_snowflake_db2_merges() {
        assert_eq!(
            Dialect::Oracle.upsert("t", K, &C[..1], 2),
            r#"MERGE INTO "t" d USING (SELECT ? "id", ? "name" FROM DUAL UNION ALL SELECT ?, ? FROM DUAL) s ON (d."id"=s."id") WHEN MATCHED THEN UPDATE SET d."name"=s."name" WHEN NOT MATCHED THEN INSERT ("id","name") VALUES (s."id",s."name")"#
        );
        assert_eq!(
            Dialect::Snowflake.upsert("t", K2, &C[..1], 2),
            r#"MERGE INTO "t" AS d USING (SELECT column1 AS "region", column2 AS "id", column3 AS "name" FROM VALUES (?,?,?),(?,?,?)) AS s ON (d."region"=s."region" AND d."id"=s."id") WHEN MATCHED THEN UPDATE SET d."name"=s."name" WHEN NOT MATCHED THEN INSERT ("region","id","name") VALUES (s."region",s."id",s."name")"#
        );
        assert_eq!(
            Dialect::Db2.upsert("t", K, &[], 1),
            r#"MERGE INTO "t" AS d USING (VALUES (?)) AS s ("id") ON (d."id"=s."id") WHEN NOT MATCHED THEN INSERT ("id") VALUES (s."id")"#
        );
        assert_eq!(
            Dialect::Db2.upsert("t", K, &C[1..], 1),
            r#"MERGE INTO "t" AS d USING (VALUES (?,CAST(? AS TIMESTAMP))) AS s ("id","at") ON (d."id"=s."id") WHEN MATCHED THEN UPDATE SET "at"=s."at" WHEN NOT MATCHED THEN INSERT ("id","at") VALUES (s."id",s."at")"#
        );
    }

    #[test]
    fn deletes() {
        assert_eq!(
            Dialect::MySql.delete("t", K, 3),
            "DELETE FROM `t` WHERE `id` IN (?,?,?)"
        );
        assert_eq!(
            Dialect::Postgres.delete("t", K2, 2),
            r#"DELETE FROM "t" WHERE ("region"=? AND "id"=?) OR ("region"=? AND "id"=?)"#
        );
        assert_eq!(
            Dialect::SqlServer.delete("t", &[("at", Timestamp)], 1),
            "DELETE FROM [t] WHERE [at] IN (CAST(? AS DATETIME2))"
        );
    }

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(Dialect::Postgres.quote(r#"a"b"#), r#""a""b""#);
        assert_eq!(Dialect::SqlServer.quote("a]b"), "[a]]b]");
        assert_eq!(Dialect::Oracle.quote("s.t"), r#""s"."t""#);
    }

    #[test]
    fn placeholders_count_matches_rows_times_columns() {
        for d in Dialect::ALL {
            for rows in [1, 2, 7] {
                let up = d.upsert("t", K2, C, rows);
                assert_eq!(up.matches('?').count(), rows * 4, "{d:?} {up}");
                let del = d.delete("t", K2, rows);
                assert_eq!(del.matches('?').count(), rows * 2, "{d:?} {del}");
            }
            assert!(d.rows_per_statement(4) * 4 <= d.max_params());
            assert_eq!(Dialect::parse(d.name()), Some(d));
        }
    }

    #[test]
    fn create_table_and_checkpoint() {
        assert_eq!(
            Dialect::MySql.create_table("t", K2, C),
            "CREATE TABLE `t` (`region` VARCHAR(255) NOT NULL, `id` BIGINT NOT NULL, `name` LONGTEXT, `at` DATETIME(6), PRIMARY KEY (`region`,`id`))"
        );
        assert_eq!(
            Dialect::Sqlite.checkpoint_select("cp"),
            r#"SELECT "last_id" FROM "cp" WHERE "job"=? AND "stream"=?"#
        );
        assert_eq!(
            Dialect::Postgres.checkpoint_select("cp"),
            r#"SELECT "last_id" FROM "cp" WHERE "job"=? AND "stream"=? FOR UPDATE"#
        );
        assert!(Dialect::SqlServer
            .checkpoint_select("cp")
            .contains("[cp] WITH (UPDLOCK, HOLDLOCK) WHERE"));
        assert_eq!(Dialect::Db2.probe("t"), r#"SELECT 1 FROM "t" WHERE 1=0"#);
    }
}
