//! Every shape `#[derive(SessionData)]` accepts compiles (`pass/`), and every misuse fails with
//! the message pinned in its `.stderr` (`fail/`). Regenerate after a deliberate message change
//! with `TRYBUILD=overwrite cargo test -p ui-tests`, then read every changed `.stderr`.

#[test]
fn derive_ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/pass/*.rs");
    cases.compile_fail("tests/fail/*.rs");
}
