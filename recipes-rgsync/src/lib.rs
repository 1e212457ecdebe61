//! # recipes-rgsync
//!
//! The rgsync write-behind / write-through recipe (Redis → SQL over ODBC) will live here; it is
//! the subject of its own issue and has **no code yet**. The crate exists so the workspace has
//! its final shape. What it will build on is in place: `StreamReader` registrations with their
//! own consumer group, batches, failure policies and pending-entry recovery (`gears-module`).
