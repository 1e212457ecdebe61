//! Compile-time checks: a step fed the wrong type, and bad `#[gears::register]` signatures,
//! are rejected with readable errors.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
