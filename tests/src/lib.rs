//! Workspace member holding only tests; see its `tests/` folder.
#![forbid(unsafe_code)]
