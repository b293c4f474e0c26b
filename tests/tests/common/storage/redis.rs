//! Redis: a key prefix of the test's own on the local server.

use redis::AsyncCommands;
use typed_session::backend::{RedisBackend, SessionBackend, StorageKey};

use super::Fixture;
use crate::common::services::{redis_url, unique_name};

#[derive(Clone)]
pub struct Redis {
    backend: RedisBackend,
}

impl Redis {
    /// Sessions stored field by field (`RedisBackend::with_partial_writes`).
    pub async fn by_field() -> Option<Self> {
        let fixture = Self::new().await?;
        Some(Self {
            backend: fixture.backend.with_partial_writes(true),
        })
    }

    pub async fn new() -> Option<Self> {
        let url = redis_url()?;
        let prefix = format!("{}:", unique_name("typed_session_test_"));
        let backend = RedisBackend::connect(&url)
            .await
            .unwrap()
            .with_prefix(&prefix)
            .unwrap();
        Some(Self { backend })
    }

    /// A connection of the test's own, for reading and damaging keys directly.
    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.backend.manager().clone()
    }

    pub fn prefix(&self) -> &str {
        self.backend.prefix()
    }

    /// The Redis key of the record under `key`.
    pub fn key_name(&self, key: &StorageKey) -> String {
        format!("{}{}", self.prefix(), key.as_str())
    }

    /// The names of every key under the prefix.
    async fn keys(&self) -> Vec<String> {
        self.connection()
            .keys(format!("{}*", self.prefix()))
            .await
            .unwrap()
    }
}

impl Fixture for Redis {
    type Backend = RedisBackend;

    fn backend(&self) -> RedisBackend {
        self.backend.clone()
    }

    async fn records(&self) -> Vec<(String, String)> {
        let mut conn = self.connection();
        let mut records = Vec::new();
        for name in self.keys().await {
            let fields: std::collections::BTreeMap<String, String> =
                conn.hgetall(&name).await.unwrap();
            // Whole (`d`), or field by field: the head, then the fields in position order.
            let data = fields.get("d").cloned().unwrap_or_else(|| {
                let members: Vec<&str> = fields
                    .iter()
                    .filter(|(field, _)| field.starts_with('f'))
                    .map(|(_, member)| member.as_str())
                    .collect();
                format!("{}\"fields\":{{{}}}}}", fields["h"], members.join(","))
            });
            let key = name.strip_prefix(self.prefix()).unwrap().to_owned();
            records.push((key, data));
        }
        records
    }

    /// Every key with all its fields.
    async fn dump(&self) -> String {
        let mut conn = self.connection();
        let mut dump = String::new();
        for key in self.keys().await {
            let fields: Vec<(String, String)> = conn.hgetall(&key).await.unwrap();
            dump.push_str(&format!("{key} {fields:?}\n"));
        }
        dump
    }

    async fn stored(&self, key: &StorageKey) -> String {
        // DUMP serialises a value of any type (without its expiry).
        let dumped: Option<Vec<u8>> = redis::cmd("DUMP")
            .arg(self.key_name(key))
            .query_async(&mut self.connection())
            .await
            .unwrap();
        format!("{dumped:?}")
    }

    async fn set_data(&self, key: &StorageKey, data: &str) -> u64 {
        let name = self.key_name(key);
        let mut conn = self.connection();
        if !conn.exists::<_, bool>(&name).await.unwrap() {
            return 0;
        }
        let _: () = conn.hset(&name, "d", data).await.unwrap();
        1
    }

    async fn cleanup(self) {
        self.backend.delete_all().await.unwrap();
    }
}
