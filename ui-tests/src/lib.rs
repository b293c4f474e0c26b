//! Workspace member holding only ui-tests; see its `ui-tests/` folder.
#![forbid(unsafe_code)]
