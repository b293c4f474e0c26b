//! MongoDB: a collection of the test's own on the local server.

use mongodb::Collection;
use mongodb::bson::{Document, doc};
use typed_session::backend::{MongoBackend, StorageKey};

use super::Fixture;
use crate::common::services::mongodb_backend;

#[derive(Clone)]
pub struct Mongo {
    backend: MongoBackend,
}

impl Mongo {
    pub async fn new() -> Option<Self> {
        let backend = mongodb_backend("sessions_").await?;
        Some(Self { backend })
    }

    /// The collection, for reading and damaging documents directly.
    pub fn collection(&self) -> &Collection<Document> {
        self.backend.collection().unwrap()
    }

    /// Every document in the collection.
    async fn documents(&self) -> Vec<Document> {
        let mut cursor = self.collection().find(Document::new()).await.unwrap();
        let mut documents = Vec::new();
        while cursor.advance().await.unwrap() {
            documents.push(cursor.deserialize_current().unwrap());
        }
        documents
    }
}

impl Fixture for Mongo {
    type Backend = MongoBackend;

    fn backend(&self) -> MongoBackend {
        self.backend.clone()
    }

    async fn records(&self) -> Vec<(String, String)> {
        self.documents()
            .await
            .iter()
            .map(|document| {
                (
                    document.get_str("_id").unwrap().to_owned(),
                    document.get_str("data").unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Every document with all its fields.
    async fn dump(&self) -> String {
        self.documents()
            .await
            .iter()
            .map(|document| format!("{document}\n"))
            .collect()
    }

    async fn stored(&self, key: &StorageKey) -> String {
        let found = self
            .collection()
            .find_one(doc! { "_id": key.as_str() })
            .projection(doc! { "data": 1, "version": 1 })
            .await
            .unwrap();
        format!("{found:?}")
    }

    async fn set_data(&self, key: &StorageKey, data: &str) -> u64 {
        self.collection()
            .update_one(
                doc! { "_id": key.as_str() },
                doc! { "$set": { "data": data } },
            )
            .await
            .unwrap()
            .modified_count
    }

    async fn cleanup(self) {
        self.collection().drop().await.unwrap();
    }
}
