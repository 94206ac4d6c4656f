//! The storage backend behind the service: the core's [`Storage`] trait, on local disk or S3.

use std::sync::Arc;

use imgest::storage::Storage;

use crate::config::StorageBackend;

/// Opens the configured backend.
pub fn open(backend: &StorageBackend) -> Result<Arc<dyn Storage>, String> {
    match backend {
        StorageBackend::Local(root) => {
            std::fs::create_dir_all(root)
                .map_err(|e| format!("STORAGE_PATH {}: {e}", root.display()))?;
            let fs = imgest::storage::FsStorage::new(root)
                .map_err(|e| format!("STORAGE_PATH {}: {e}", root.display()))?;
            Ok(Arc::new(fs))
        }
        #[cfg(feature = "s3")]
        StorageBackend::S3 { bucket, endpoint } => Ok(Arc::new(crate::s3::S3Storage::new(
            bucket,
            endpoint.as_deref(),
        )?)),
        #[cfg(not(feature = "s3"))]
        StorageBackend::S3 { .. } => {
            Err("STORAGE_BACKEND=s3: this build has no S3 support (feature `s3`)".into())
        }
    }
}

/// The key of an uploaded original: `originals/{sha[0..2]}/{sha}`, content-addressed.
pub fn original_key(sha256: &str) -> String {
    format!("originals/{}/{sha256}", &sha256[..2])
}

/// Where variants go, content-addressed (see [`imgest::storage::variant_key`]).
pub const VARIANT_PREFIX: &str = "variants/";
