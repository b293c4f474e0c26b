//! Security end to end, attacking a real `Router` the way a client (or someone holding a copy of
//! the session table) would, one threat per module: forged, tampered, replayed and relocated
//! ids (`signed_ids`); key rotation (`rotation`); values moved to another cookie name or
//! transport (`names`); client binding (`binding`); header transport (`transport`); encryption
//! at rest (`encryption`); id renewal (`renewal`); storage consent (`consent`); secrets in logs
//! (`logs`); CSRF tokens (`csrf`).
//!
//! Scenarios where storage matters are written once and run on several storages with
//! `on_storages!` (in `support`): memory only, a user-written backend (`SharedMap`), SQLite,
//! PostgreSQL, MongoDB and SurrealDB (skipped, or failed under
//! `TYPED_SESSION_REQUIRE_SERVICES=1`, when its server is down).

#[macro_use]
mod support;

mod binding;
mod consent;
mod csrf;
mod encryption;
mod logs;
mod names;
mod renewal;
mod rotation;
mod signed_ids;
mod transport;
