//! Workspace member holding the examples (see its `examples/` folder) and the little they share.
#![forbid(unsafe_code)]

pub mod storage;
