//! The user-written backend ([`SharedMap`]): its clones share one in-process map.

use typed_session::backend::StorageKey;

use super::Fixture;
use crate::common::shared_map::SharedMap;

impl Fixture for SharedMap {
    type Backend = SharedMap;

    fn backend(&self) -> SharedMap {
        self.clone()
    }

    async fn records(&self) -> Vec<(String, String)> {
        self.map()
            .iter()
            .map(|(key, record)| (key.as_str().to_owned(), record.data.clone()))
            .collect()
    }

    /// Every record with all its parts.
    async fn dump(&self) -> String {
        format!(
            "{:?}",
            self.map()
                .iter()
                .map(|(k, r)| (k.as_str().to_owned(), r.clone()))
                .collect::<Vec<_>>()
        )
    }

    async fn stored(&self, key: &StorageKey) -> String {
        format!("{:?}", self.map().get(key).map(|r| (&r.data, r.version)))
    }

    async fn set_data(&self, key: &StorageKey, data: &str) -> u64 {
        match self.map().get_mut(key) {
            Some(record) => {
                record.data = data.to_owned();
                1
            }
            None => 0,
        }
    }

    async fn cleanup(self) {}
}
