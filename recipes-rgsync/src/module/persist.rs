//! Jobs saved with the RDB: Gears' aux field `rgsync` (a [`gears::api::AuxField`]), saved
//! before Gears' registrations (which hold the jobs' registrations, rebuilt from the jobs
//! loaded here). Between saves, `RGSYNC.ADD` / `RGSYNC.REMOVE` are replicated verbatim (AOF,
//! replicas). The saved jobs include their connection strings: the RDB is as secret as the
//! data.
//!
//! RDBs written by earlier versions hold the same bytes in an aux field of rgsync's own module
//! type `rgsyncaux`: they still load (the type is declared load-only), and are written back
//! in the `rgsync` field.

use gears::api::AuxField;
use gears::command::Context;
use gears::error::GearsError;

use super::jobs;
use crate::config::JobConfig;

/// The name of the jobs' field in Gears' aux field.
pub const FIELD: &str = "rgsync";

/// The module type earlier versions saved the jobs in (read, never written).
pub const LEGACY_TYPE: &str = "rgsyncaux";

/// Saves the jobs with every RDB and loads them back, also from RDBs holding
/// [`LEGACY_TYPE`]. Call it once, from the module's `init` (`librgsync.so` does).
pub fn save_jobs_in_rdb(ctx: &Context) -> Result<(), GearsError> {
    gears::api::add_aux_field(AuxField {
        name: FIELD,
        save: || {
            encode(
                &jobs::all()
                    .iter()
                    .map(|j| j.config.clone())
                    .collect::<Vec<_>>(),
            )
        },
        load: |bytes| decode(bytes).map(jobs::replace_all),
    })?;
    gears::api::read_legacy_aux_type(ctx, LEGACY_TYPE, FIELD)
}

/// Encodes job configurations (format version 1).
pub fn encode(configs: &[JobConfig]) -> Vec<u8> {
    bincode::encode_to_vec(configs, bincode::config::standard()).unwrap_or_default()
}

/// Decodes what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Vec<JobConfig>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let configs: Vec<JobConfig> = bincode::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())?;
    // What the RDB holds is checked like a command's arguments (a damaged or hand-made file
    // must not make a job the writer cannot run).
    for c in &configs {
        c.validate().map_err(|e| e.to_string())?;
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip() {
        let job = JobConfig::parse_args(
            &[
                "j",
                "KEY",
                "u:{a}:{b:integer}",
                "TABLE",
                "t",
                "COLUMNS",
                "x:float",
                "CONNECTION",
                "Driver={SQLite3}",
                "COALESCE",
                "yes",
            ]
            .map(String::from),
        )
        .unwrap();
        let back = decode(&encode(std::slice::from_ref(&job))).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0], job);
        assert!(decode(b"garbage").is_err());
        assert!(decode(b"").unwrap().is_empty());
        // Well-formed bytes holding a job the commands would refuse are refused too.
        let mut bad_table = job.clone();
        bad_table.table = "t\"; DROP TABLE x; --".into();
        let err = decode(&encode(&[bad_table])).unwrap_err();
        assert!(err.contains("invalid"), "{err}");
        let mut bad_event = job.clone();
        bad_event.events = vec!["rename".into()];
        assert!(decode(&encode(&[bad_event])).is_err());
        let mut bad_checkpoint = job;
        bad_checkpoint.checkpoint_table = "cp\"x".into();
        assert!(decode(&encode(&[bad_checkpoint])).is_err());
    }
}
