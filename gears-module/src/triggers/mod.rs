//! Events becoming executions: keyspace notifications ([`keyspace`]) and stream entries read
//! through each registration's consumer group ([`streams`]).

pub(crate) mod keyspace;
pub(crate) mod streams;
