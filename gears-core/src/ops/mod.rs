//! The operators. Each file holds one operator: its builder method (with the documentation
//! and an asserting example) and the step types behind it, carried by the plumbing's fused
//! chains and nodes ([`crate::plumbing`]).

mod accumulate;
mod aggregate;
mod aggregate_by;
mod avg;
mod batch_group_by;
mod collect;
mod count;
mod count_by;
mod distinct;
pub(crate) mod filter;
pub(crate) mod flat_map;
pub(crate) mod for_each;
mod group_by;
mod limit;
mod local_group_by;
pub(crate) mod map;
mod repartition;
mod sort;
