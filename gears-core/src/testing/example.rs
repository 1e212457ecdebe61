//! The harness of the documentation examples.

use super::MemoryHost;
use crate::builder::GearsBuilder;
use crate::chain::Chain;
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
