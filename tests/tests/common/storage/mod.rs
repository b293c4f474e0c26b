//! One fixture per backend, written once and used by every suite that needs storage (the
//! conformance suite, the end-to-end suite and the security suite): a table, database file,
//! collection or key prefix of the test's own; raw access to what is stored, as someone with a
//! copy of (or write access to) the table would have; and its removal afterwards.
//!
//! A fixture whose server is down is `None` after a notice, or a panic under
//! `TYPED_SESSION_REQUIRE_SERVICES=1` (see [`services`](super::services)).
#![allow(dead_code, unreachable_pub)]

mod mongodb;
mod redis;
mod shared_map;
mod sql;
mod surrealdb;

use std::future::Future;

use typed_session::backend::{SessionBackend, StorageKey};

pub use self::mongodb::Mongo;
pub use self::redis::Redis;
pub use self::sql::{MySql, Postgres, Sqlite};
pub use self::surrealdb::Surreal;

/// One backend's storage for one test.
pub trait Fixture: Send + Sync + 'static {
    type Backend: SessionBackend + Clone;

    /// A new handle on this fixture's storage: each call is another "server".
    fn backend(&self) -> Self::Backend;

    /// Every stored record as (storage key, data), read straight from the storage.
    fn records(&self) -> impl Future<Output = Vec<(String, String)>> + Send;

    /// Everything this fixture stores, as text (keys and values), to check what is at rest.
    fn dump(&self) -> impl Future<Output = String> + Send {
        async {
            self.records()
                .await
                .into_iter()
                .map(|(key, data)| format!("{key} {data}\n"))
                .collect()
        }
    }

    /// The record under `key` as stored, whatever shape damage left it in: its data and version,
    /// with their types where the storage tells them apart (not its expiry, which a touch may
    /// move), to check that a record was left alone.
    fn stored(&self, key: &StorageKey) -> impl Future<Output = String> + Send;

    /// Overwrites the data of the record under `key` behind the store's back; the number of
    /// records changed.
    fn set_data(&self, key: &StorageKey, data: &str) -> impl Future<Output = u64> + Send;

    /// Removes what the test stored: the table, file, collection or keys.
    fn cleanup(self) -> impl Future<Output = ()> + Send;
}
