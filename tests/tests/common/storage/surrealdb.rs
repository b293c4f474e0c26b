//! SurrealDB: a table of the test's own (on a fresh memory engine, or on a real server).

use surrealdb::types::{RecordId, Value};
use typed_session::backend::{StorageKey, SurrealBackend};

use super::Fixture;
use crate::common::services::surrealdb_backend;

#[derive(Clone)]
pub struct Surreal {
    backend: SurrealBackend,
}

impl Surreal {
    pub async fn new() -> Option<Self> {
        let backend = surrealdb_backend("sessions_").await?;
        Some(Self { backend })
    }

    /// The fixture of a backend set up by hand (in another namespace, say), to remove its table.
    pub fn of(backend: SurrealBackend) -> Self {
        Self { backend }
    }

    /// The id of the record under `key`, for reading and damaging it directly.
    pub fn record_id(&self, key: &StorageKey) -> RecordId {
        RecordId::new(self.backend.table_name(), key.as_str())
    }
}

impl Fixture for Surreal {
    type Backend = SurrealBackend;

    fn backend(&self) -> SurrealBackend {
        self.backend.clone()
    }

    async fn records(&self) -> Vec<(String, String)> {
        let table = self.backend.table_name();
        let mut response = self
            .backend
            .client()
            .query(format!(
                "SELECT VALUE [record::id(id), data] FROM `{table}`"
            ))
            .await
            .unwrap();
        response.take(0).unwrap()
    }

    /// Every row with all its fields.
    async fn dump(&self) -> String {
        let mut response = self
            .backend
            .client()
            .query(format!("SELECT * FROM `{}`", self.backend.table_name()))
            .await
            .unwrap();
        let rows: Vec<Value> = response.take(0).unwrap();
        rows.iter().map(|row| format!("{row:?}\n")).collect()
    }

    async fn stored(&self, key: &StorageKey) -> String {
        let mut response = self
            .backend
            .client()
            .query("SELECT data, version FROM $rid")
            .bind(("rid", self.record_id(key)))
            .await
            .unwrap();
        let rows: Vec<Value> = response.take(0).unwrap();
        format!("{rows:?}")
    }

    async fn set_data(&self, key: &StorageKey, data: &str) -> u64 {
        let mut response = self
            .backend
            .client()
            .query("UPDATE $rid SET data = $data RETURN VALUE id")
            .bind(("rid", self.record_id(key)))
            .bind(("data", data.to_owned()))
            .await
            .unwrap();
        let updated: Vec<RecordId> = response.take(0).unwrap();
        updated.len() as u64
    }

    async fn cleanup(self) {
        self.backend
            .client()
            .query(format!(
                "REMOVE TABLE IF EXISTS `{}`",
                self.backend.table_name()
            ))
            .await
            .and_then(surrealdb::IndexedResults::check)
            .unwrap();
    }
}
