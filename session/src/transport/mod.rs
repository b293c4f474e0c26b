//! How a session id travels between client and server.

pub(crate) mod cookie;
