//! The integration suites that can share a process, in one test binary (each binary links sqlx,
//! redis, mongodb and SurrealDB, so fewer binaries build much faster):
//!
//! - `memory`: the foundation end to end on the memory store;
//! - `derive`: the derive's runtime behaviour (flash fields, schema versions, aliases);
//! - `key_store`: the key-store answers unknown ids without a backend round trip;
//! - `properties`: properties of everything a client sends that may name a session;
//! - `conformance`: every backend against the conformance suite, and their name checks;
//! - `backends`: every persistent backend through the end-to-end suite (`e2e`);
//! - `grouped_saves`: PostgreSQL's statements of many saves keep each save's compare-and-set;
//! - `changes`: another server's saves and deletes reach this server's cache (Redis pub/sub);
//! - `backend_properties`: properties of each backend's reading of damaged records;
//! - `security`: attacks on a real `Router`, one threat per module;
//! - `testing_kit`: the `testing` feature as a user's handler tests use it;
//! - `observability`: the metrics and spans a real `Router` produces.
//!
//! Backends are set up, read raw, damaged and removed by their fixtures in `common::storage`.
//! The suites that need a process of their own stay separate binaries: `allocations` (a global
//! allocator), `capacity_sweep` (the process's log subscriber), `purge_thread` (counts the
//! process's threads) and `faults` (starts and kills database servers).

#[path = "../common/mod.rs"]
mod common;
mod e2e;

mod backend_properties;
mod backends;
mod changes;
mod conformance;
mod derive;
mod grouped_saves;
mod key_store;
mod memory;
mod observability;
mod properties;
mod security;
mod testing_kit;
