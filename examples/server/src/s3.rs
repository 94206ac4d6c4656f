//! [`Storage`] on S3 (or any S3-compatible server) through `object_store`.
//!
//! The core's trait is synchronous; the service only calls it from blocking threads, where
//! each call runs on the server's Tokio runtime with [`tokio::runtime::Handle::block_on`].

use std::sync::Arc;

use futures::TryStreamExt;
use imgest::Error;
use imgest::storage::{Storage, validate_key, validate_prefix};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use tokio::runtime::Handle;

/// A bucket.
#[derive(Debug)]
pub struct S3Storage {
    store: Arc<dyn ObjectStore>,
    runtime: Handle,
    bucket: String,
}

fn storage_error(what: &str, key: &str, err: impl std::fmt::Display) -> Error {
    Error::Storage {
        detail: format!("s3 {what} {key}: {err}"),
        source: None,
    }
}

impl S3Storage {
    /// Connects to `bucket` (credentials and region from the usual `AWS_*` variables), on
    /// `endpoint` when given (path-style; plain HTTP allowed for local servers). Must be called
    /// inside a Tokio runtime.
    pub fn new(bucket: &str, endpoint: Option<&str>) -> Result<S3Storage, String> {
        let runtime =
            Handle::try_current().map_err(|e| format!("S3 storage needs a Tokio runtime: {e}"))?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(true)
                .with_virtual_hosted_style_request(false);
        }
        let store = builder
            .build()
            .map_err(|e| format!("S3_BUCKET {bucket}: {e}"))?;
        Ok(S3Storage {
            store: Arc::new(store),
            runtime,
            bucket: bucket.to_string(),
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl Storage for S3Storage {
    fn put(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error> {
        validate_key(key)?;
        let path = Path::from(key);
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
        let opts = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(bytes.to_vec());
        self.runtime
            .block_on(self.store.put_opts(&path, payload, opts))
            .map(|_| ())
            .map_err(|e| storage_error("put", key, e))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        validate_key(key)?;
        let path = Path::from(key);
        self.runtime
            .block_on(async {
                match self.store.get(&path).await {
                    Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .map_err(|e| storage_error("get", key, e))
    }

    fn delete(&self, key: &str) -> Result<bool, Error> {
        validate_key(key)?;
        let existed = self.exists(key)?;
        if existed {
            self.runtime
                .block_on(self.store.delete(&Path::from(key)))
                .map_err(|e| storage_error("delete", key, e))?;
        }
        Ok(existed)
    }

    fn exists(&self, key: &str) -> Result<bool, Error> {
        validate_key(key)?;
        match self.runtime.block_on(self.store.head(&Path::from(key))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage_error("head", key, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        validate_prefix(prefix)?;
        // S3 listing is by whole segments; list the folder, then match the prefix as a string.
        let folder = prefix.rfind('/').map(|i| &prefix[..i]);
        let folder_path = folder.map(Path::from);
        let metas: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(folder_path.as_ref()).try_collect())
            .map_err(|e| storage_error("list", prefix, e))?;
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|m| m.location.to_string())
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort();
        Ok(keys)
    }
}
