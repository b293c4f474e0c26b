//! Workspace member holding only examples; see its `examples/` folder.
#![forbid(unsafe_code)]
