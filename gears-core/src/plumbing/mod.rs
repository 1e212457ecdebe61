//! The engine's plumbing, apart from the user API (as rayon keeps its `plumbing`): how the
//! steps a builder appends become something a shard runs.
//!
//! - [`pull`]: a plan-time [`Node`](pull::Node) opens a run-time [`Pull`](pull::Pull); a
//!   stage's nodes are chained and the last one is pulled in batches;
//! - [`chain`]: consecutive per-record steps fused into one loop per record;
//! - [`nodes`]: the nodes of the other steps (folds, parallel steps, per-batch steps);
//! - [`exchange`]: the end of a stage, where records are routed to shards, and the source of
//!   the next stage;
//! - [`stage`]: running one stage on one shard, with its inbox, route and options.

pub(crate) mod chain;
pub(crate) mod exchange;
pub(crate) mod nodes;
pub(crate) mod pull;
pub(crate) mod stage;
