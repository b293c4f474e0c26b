//! Only the benches live here: `benches/sessions.rs` (criterion), `examples/per_request.rs`
//! (the callgrind and allocation driver) and `harness/` (the contenders, shared by both).
#![forbid(unsafe_code)]
