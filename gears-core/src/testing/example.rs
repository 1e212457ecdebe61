//! The harness of the documentation examples.

use super::MemoryHost;
use crate::builder::GearsBuilder;
use crate::chain::Chain;
use crate::readers::KeysReader;
use crate::record::Record;

/// Runs the flow built by `setup` on a fresh [`MemoryHost`] and returns its results,
/// asserting that no step failed. The harness of the documentation examples.
pub fn example<T: Record, C: Chain<Out = T>>(
    setup: impl FnOnce(&MemoryHost) -> GearsBuilder<T, C>,
) -> Vec<T> {
    let host = MemoryHost::new();
    let flow = setup(&host);
    let out = flow.run(&host);
    assert!(
        out.errors.is_empty(),
        "the example's steps failed: {:?}",
        out.errors
    );
    out.results
}

/// Word counts over the string keys matching `doc:*`, sorted: three stages, so records cross
/// shards twice on a cluster. The flow the fault and registration tests run.
pub fn word_count() -> GearsBuilder<(String, u64)> {
    GearsBuilder::new(KeysReader::new("doc:*"))
        .flat_map(|r| {
            r.string()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .count_by(|w| w.clone())
        .sort()
}
