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

/// The key of an uploaded original: `originals/{image_id}`. Never shared between images.
pub fn original_key(image_id: &str) -> String {
    format!("originals/{image_id}")
}
