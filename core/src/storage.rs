//! Where variants go: the [`Storage`] trait, an in-memory [`MemoryStorage`], a filesystem
//! `FsStorage` (feature `fs`), and [`store_output`], which stores every variant of an
//! [`Output`] under a content-addressed key.
//!
//! I/O is injected: the pipeline never touches storage itself. A caller runs the pipeline, then
//! hands the [`Output`] and a `&dyn Storage` to [`store_output`] (or stores the bytes itself).
//!
//! # Keys
//!
//! A key is a `/`-separated path of segments made of `A-Z`, `a-z`, `0-9`, `.`, `_` and `-`,
//! such as `ab/ab12….webp`. See [`validate_key`] for the exact rules. Every backend validates
//! every key on every call, so a key can never name anything outside the store, whatever the
//! backend maps it to.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::Error;
use crate::output::{Output, VariantOutput};

#[cfg(feature = "fs")]
pub use self::fs_storage::FsStorage;

/// The longest accepted key (and list prefix), in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// File names starting with this are `FsStorage`'s temporary files; no key segment may start
/// with it.
const TEMP_PREFIX: &str = ".tmp-";

fn storage_error(detail: impl Into<String>) -> Error {
    Error::Storage {
        detail: detail.into(),
        source: None,
    }
}

#[cfg_attr(not(feature = "fs"), allow(dead_code))]
fn io_error(detail: impl Into<String>, source: std::io::Error) -> Error {
    Error::Storage {
        detail: detail.into(),
        source: Some(source),
    }
}

/// A key or prefix for error messages: quoted and escaped, and shortened when long.
fn shown(key: &str) -> String {
    const SHOWN: usize = 80;
    if key.len() <= SHOWN {
        format!("{key:?}")
    } else {
        let head: String = key.chars().take(SHOWN).collect();
        format!("{head:?}… ({} bytes)", key.len())
    }
}

fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

fn segment_problem(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        Some("it has an empty segment")
    } else if segment == "." || segment == ".." {
        Some("it has a `.` or `..` segment")
    } else if segment.starts_with(TEMP_PREFIX) {
        Some("segments starting with `.tmp-` are reserved for temporary files")
    } else if !segment.bytes().all(is_segment_byte) {
        Some("it has a character outside `A-Z a-z 0-9 . _ -`")
    } else {
        None
    }
}

fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("it is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Some("it is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return Some("it starts with `/`");
    }
    if key.contains('\\') {
        return Some("it contains a backslash");
    }
    if key.contains('\0') {
        return Some("it contains a NUL byte");
    }
    key.split('/').find_map(segment_problem)
}

/// Checks that `key` is a valid storage key.
///
/// A key is 1–1024 bytes of `/`-separated segments, each made of `A-Z`, `a-z`, `0-9`, `.`,
/// `_` and `-`. There is no leading `/`, no empty segment (so no trailing `/` and no `//`), no
/// `.` or `..` segment, no backslash and no NUL. Segments starting with `.tmp-` are reserved
/// (they name `FsStorage`'s temporary files).
///
/// Errors: [`Error::Storage`] naming the problem.
pub fn validate_key(key: &str) -> Result<(), Error> {
    match key_problem(key) {
        None => Ok(()),
        Some(why) => Err(storage_error(format!("invalid key {}: {why}", shown(key)))),
    }
}

/// Checks a prefix for [`Storage::list`], loosely: it need not be a whole key or end on a
/// segment boundary (`""` lists everything, `"ab"` matches `ab/x` and `abc`), but it must be at
/// most 1024 bytes and have no leading `/`, no `..` segment, no backslash and no NUL.
///
/// Errors: [`Error::Storage`] naming the problem.
pub fn validate_prefix(prefix: &str) -> Result<(), Error> {
    let why = if prefix.len() > MAX_KEY_LEN {
        "it is longer than 1024 bytes"
    } else if prefix.starts_with('/') {
        "it starts with `/`"
    } else if prefix.contains('\\') {
        "it contains a backslash"
    } else if prefix.contains('\0') {
        "it contains a NUL byte"
    } else if prefix.split('/').any(|s| s == "..") {
        "it has a `..` segment"
    } else {
        return Ok(());
    };
    Err(storage_error(format!(
        "invalid key prefix {}: {why}",
        shown(prefix)
    )))
}

/// Where variants are stored.
///
/// I/O is injected: the pipeline never touches storage itself. Implementations must be
/// thread-safe, and must check every key with [`validate_key`] and every prefix with
/// [`validate_prefix`] on every call, failing with [`Error::Storage`]; every other failure is an
/// [`Error::Storage`] too.
///
/// `&S`, `Box<S>` and `Arc<S>` are storages when `S` is.
pub trait Storage: Send + Sync {
    /// Stores `bytes` under `key`, replacing any existing object.
    ///
    /// The write is atomic: a concurrent or later reader sees the old object or the new one,
    /// never a mix, and a failed put leaves the old object (or none) in place. `content_type`
    /// is a MIME type; a backend may keep it (as object metadata) or ignore it.
    fn put(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error>;

    /// The object stored under `key`, or `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Removes the object under `key`. Returns `true` if it existed.
    fn delete(&self, key: &str) -> Result<bool, Error>;

    /// Whether an object is stored under `key`.
    ///
    /// The default implementation calls [`Storage::get`]; backends should override it with
    /// something cheaper.
    fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.get(key)?.is_some())
    }

    /// Every key that starts with `prefix` (`""` for all), sorted. The prefix need not end on a
    /// segment boundary: `"ab"` matches `ab/x` and `abc`.
    fn list(&self, prefix: &str) -> Result<Vec<String>, Error>;
}

macro_rules! forward_storage {
    ($($ty:ty),*) => {$(
        impl<S: Storage + ?Sized> Storage for $ty {
            fn put(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error> {
                (**self).put(key, bytes, content_type)
            }
            fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
                (**self).get(key)
            }
            fn delete(&self, key: &str) -> Result<bool, Error> {
                (**self).delete(key)
            }
            fn exists(&self, key: &str) -> Result<bool, Error> {
                (**self).exists(key)
            }
            fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
                (**self).list(prefix)
            }
        }
    )*};
}

forward_storage!(&S, Box<S>, std::sync::Arc<S>);

type Objects = BTreeMap<String, (Vec<u8>, String)>;

/// A thread-safe in-memory [`Storage`], for tests, wasm and short-lived jobs. Keeps each
/// object's content type.
#[derive(Default)]
pub struct MemoryStorage {
    objects: Mutex<Objects>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// The content type the object under `key` was stored with, or `None` when there is no
    /// such object (or the key is invalid).
    pub fn content_type(&self, key: &str) -> Option<String> {
        self.lock().get(key).map(|(_, ct)| ct.clone())
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no object is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Objects> {
        // Every operation changes the map in one step, so a panic elsewhere while the lock was
        // held cannot have left it half-updated.
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStorage {
    /// Lists the keys and sizes, not the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("objects", &Sizes(&self.lock()))
            .finish()
    }
}

/// Debug-prints a map's keys with the sizes of their objects.
struct Sizes<'a>(&'a Objects);

impl fmt::Debug for Sizes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, (bytes, _))| (k, bytes.len())))
            .finish()
    }
}

impl Storage for MemoryStorage {
    fn put(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error> {
        validate_key(key)?;
        let value = (bytes.to_vec(), content_type.to_owned());
        self.lock().insert(key.to_owned(), value);
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        validate_key(key)?;
        Ok(self.lock().get(key).map(|(bytes, _)| bytes.clone()))
    }

    fn delete(&self, key: &str) -> Result<bool, Error> {
        validate_key(key)?;
        Ok(self.lock().remove(key).is_some())
    }

    fn exists(&self, key: &str) -> Result<bool, Error> {
        validate_key(key)?;
        Ok(self.lock().contains_key(key))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        validate_prefix(prefix)?;
        Ok(self
            .lock()
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }
}

#[cfg(feature = "fs")]
mod fs_storage {
    use std::fs;
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::{
        Error, MAX_KEY_LEN, Storage, TEMP_PREFIX, io_error, segment_problem, shown, storage_error,
        validate_key, validate_prefix,
    };

    /// A [`Storage`] that keeps each object as a file under a root directory: key `ab/cd.webp`
    /// is the file `<root>/ab/cd.webp`.
    ///
    /// - `put` writes a uniquely named temporary file (`.tmp-…`) in the target's directory,
    ///   fsyncs it, then renames it over the target, so a reader sees the old or the new
    ///   object and a crash never leaves a half-written one (at worst a stray `.tmp-` file,
    ///   which [`Storage::list`] skips). Parent directories are created as needed.
    /// - `delete` leaves empty directories in place.
    /// - The content type is not kept.
    /// - Symbolic links are never followed: an operation on a key whose path passes through or
    ///   ends at a symlink fails with [`Error::Storage`], and `list` skips symlinks, so nothing
    ///   outside the root is read or written. (This guards against a mistaken or stale link,
    ///   not against a hostile process that can write inside the root concurrently.)
    /// - A key and a key below it (`a` and `a/b`) cannot both exist: the second put fails.
    /// - On a case-insensitive filesystem, keys differing only in case name the same object;
    ///   content-addressed keys from [`super::store_output`] are lower case.
    #[derive(Debug, Clone)]
    pub struct FsStorage {
        root: PathBuf,
    }

    /// Distinguishes temporary files of concurrent puts within one process.
    static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

    fn is_not_found(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        )
    }

    fn symlink_error(key: &str) -> Error {
        storage_error(format!(
            "refusing key {}: its path in the storage root goes through a symbolic link",
            shown(key)
        ))
    }

    /// Removes the temporary file when dropped, unless it was renamed into place.
    struct TempFile {
        path: Option<PathBuf>,
    }

    impl TempFile {
        fn create(dir: &Path) -> io::Result<(TempFile, fs::File)> {
            let pid = std::process::id();
            for _ in 0..64 {
                let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let path = dir.join(format!("{TEMP_PREFIX}{pid}-{n}"));
                match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(file) => return Ok((TempFile { path: Some(path) }, file)),
                    // A leftover from a crashed process with the same id: try the next name.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "no free temporary file name",
            ))
        }

        fn rename_to(mut self, target: &Path) -> io::Result<()> {
            let path = self.path.as_ref().expect("temporary file already consumed");
            fs::rename(path, target)?;
            self.path = None;
            Ok(())
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(path) = self.path.take() {
                let _ = fs::remove_file(path);
            }
        }
    }

    impl FsStorage {
        /// A storage rooted at `root`, which is created (with its parents) if missing.
        ///
        /// Errors: [`Error::Storage`] when `root` cannot be created or is not a directory.
        pub fn new(root: impl AsRef<Path>) -> Result<FsStorage, Error> {
            let given = root.as_ref();
            let fail = |what: &str, e| {
                io_error(
                    format!("cannot {what} the storage root {}", given.display()),
                    e,
                )
            };
            fs::create_dir_all(given).map_err(|e| fail("create", e))?;
            let root = fs::canonicalize(given).map_err(|e| fail("resolve", e))?;
            let meta = fs::metadata(&root).map_err(|e| fail("inspect", e))?;
            if !meta.is_dir() {
                return Err(storage_error(format!(
                    "the storage root {} is not a directory",
                    given.display()
                )));
            }
            Ok(FsStorage { root })
        }

        /// The root directory, canonicalized (absolute, symlinks resolved).
        pub fn root(&self) -> &Path {
            &self.root
        }

        /// The file of a (validated) key.
        fn path_of(&self, key: &str) -> PathBuf {
            let mut path = self.root.clone();
            path.extend(key.split('/'));
            path
        }

        /// Walks the directories above `key`'s file, refusing symlinks. Returns `false` when
        /// one is missing or is a file (so the key cannot exist); with `create`, creates the
        /// missing ones instead, and fails when one is a file.
        fn check_parents(&self, key: &str, create: bool) -> Result<bool, Error> {
            let Some((parents, _)) = key.rsplit_once('/') else {
                return Ok(true);
            };
            let mut dir = self.root.clone();
            for segment in parents.split('/') {
                dir.push(segment);
                match fs::symlink_metadata(&dir) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(meta) if meta.file_type().is_symlink() => return Err(symlink_error(key)),
                    Ok(_) if create => {
                        return Err(storage_error(format!(
                            "cannot store {}: a prefix of it is an object, not a directory",
                            shown(key)
                        )));
                    }
                    Ok(_) => return Ok(false),
                    Err(e) if is_not_found(&e) && !create => return Ok(false),
                    Err(e) if is_not_found(&e) => match fs::create_dir(&dir) {
                        Ok(()) => {}
                        // Created concurrently by another put.
                        Err(e)
                            if e.kind() == io::ErrorKind::AlreadyExists
                                && fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) => {}
                        Err(e) => {
                            return Err(io_error(
                                format!("cannot create a directory for {}", shown(key)),
                                e,
                            ));
                        }
                    },
                    Err(e) => {
                        return Err(io_error(format!("cannot look up {}", shown(key)), e));
                    }
                }
            }
            Ok(true)
        }

        /// The file of `key` when it holds an object (a regular file); `None` when nothing or a
        /// directory is there.
        fn lookup(&self, key: &str) -> Result<Option<PathBuf>, Error> {
            validate_key(key)?;
            if !self.check_parents(key, false)? {
                return Ok(None);
            }
            let path = self.path_of(key);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => Err(symlink_error(key)),
                Ok(meta) if meta.is_file() => Ok(Some(path)),
                Ok(_) => Ok(None),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(io_error(format!("cannot look up {}", shown(key)), e)),
            }
        }

        fn walk(
            &self,
            dir: &Path,
            rel: &str,
            prefix: &str,
            keys: &mut Vec<String>,
        ) -> Result<(), Error> {
            let fail = |e| io_error(format!("cannot list {}", shown(prefix)), e);
            let entries = match fs::read_dir(dir) {
                Ok(entries) => entries,
                // A subdirectory removed while we walk.
                Err(e) if is_not_found(&e) && !rel.is_empty() => return Ok(()),
                Err(e) => return Err(fail(e)),
            };
            for entry in entries {
                let entry = entry.map_err(fail)?;
                let name = entry.file_name();
                // Skips temporary files, and anything else that is no key segment.
                let Some(name) = name.to_str().filter(|n| segment_problem(n).is_none()) else {
                    continue;
                };
                let key = format!("{rel}{name}");
                if key.len() > MAX_KEY_LEN {
                    continue;
                }
                let file_type = match entry.file_type() {
                    Ok(t) => t,
                    Err(e) if is_not_found(&e) => continue,
                    Err(e) => return Err(fail(e)),
                };
                // `DirEntry::file_type` does not follow symlinks: they are neither.
                if file_type.is_dir() {
                    let sub = key + "/";
                    if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                        self.walk(&entry.path(), &sub, prefix, keys)?;
                    }
                } else if file_type.is_file() && key.starts_with(prefix) {
                    keys.push(key);
                }
            }
            Ok(())
        }
    }

    impl Storage for FsStorage {
        fn put(&self, key: &str, bytes: &[u8], _content_type: &str) -> Result<(), Error> {
            validate_key(key)?;
            self.check_parents(key, true)?;
            let (parents, name) = key.rsplit_once('/').unwrap_or(("", key));
            let dir = if parents.is_empty() {
                self.root.clone()
            } else {
                self.path_of(parents)
            };
            // Belt and braces against a parent swapped for a symlink meanwhile.
            let dir = fs::canonicalize(&dir).map_err(|e| {
                io_error(format!("cannot resolve the directory of {}", shown(key)), e)
            })?;
            if !dir.starts_with(&self.root) {
                return Err(symlink_error(key));
            }
            let target = dir.join(name);
            if fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(symlink_error(key));
            }
            let write_fail = |e| io_error(format!("cannot write {}", shown(key)), e);
            let (temp, mut file) = TempFile::create(&dir).map_err(write_fail)?;
            file.write_all(bytes).map_err(write_fail)?;
            file.sync_all().map_err(write_fail)?;
            drop(file);
            if let Err(e) = temp.rename_to(&target) {
                // The temporary file is removed by now.
                let detail = if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    format!("cannot store {}: a directory is in the way", shown(key))
                } else {
                    format!("cannot move {} into place", shown(key))
                };
                return Err(io_error(detail, e));
            }
            // Make the rename itself durable. Some platforms cannot sync a directory: ignored.
            #[cfg(unix)]
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }

        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
            let Some(path) = self.lookup(key)? else {
                return Ok(None);
            };
            match fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                // Deleted since the lookup.
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(io_error(format!("cannot read {}", shown(key)), e)),
            }
        }

        fn delete(&self, key: &str) -> Result<bool, Error> {
            let Some(path) = self.lookup(key)? else {
                return Ok(false);
            };
            match fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(e) if is_not_found(&e) => Ok(false),
                Err(e) => Err(io_error(format!("cannot delete {}", shown(key)), e)),
            }
        }

        fn exists(&self, key: &str) -> Result<bool, Error> {
            Ok(self.lookup(key)?.is_some())
        }

        fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
            validate_prefix(prefix)?;
            let mut keys = Vec::new();
            self.walk(&self.root, "", prefix, &mut keys)?;
            keys.sort_unstable();
            Ok(keys)
        }
    }
}

/// Where [`store_output`] put one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StoredVariant {
    /// The variant's name ([`VariantOutput::name`]).
    pub name: String,
    /// The key it is stored under.
    pub key: String,
    /// Its size in bytes.
    pub size: usize,
    /// Its MIME type (`"image/webp"`).
    pub content_type: &'static str,
}

fn check_store_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.is_empty() {
        return Ok(());
    }
    let ok = prefix
        .strip_suffix('/')
        .is_some_and(|dir| key_problem(dir).is_none());
    if ok {
        Ok(())
    } else {
        Err(storage_error(format!(
            "invalid key prefix {}: it must be empty, or a valid key followed by `/`",
            shown(prefix)
        )))
    }
}

/// The content-addressed key of a variant: `{prefix}{sha256[0..2]}/{sha256}.{ext}`, with the
/// extension from [`crate::options::OutputFormat::extension`] (`ab/ab12…ef.webp`).
///
/// `prefix` is `""` or a valid key followed by `/` (`"images/"`). The variant's `sha256` is
/// trusted to be the hash of its bytes (as the pipeline computes it); it must be 64 lower-case
/// hex digits.
///
/// Errors: [`Error::Storage`] for an invalid prefix, a malformed `sha256`, or a key longer than
/// [`MAX_KEY_LEN`].
pub fn variant_key(prefix: &str, variant: &VariantOutput) -> Result<String, Error> {
    check_store_prefix(prefix)?;
    let sha = variant.sha256.as_str();
    let hex = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex {
        return Err(storage_error(format!(
            "variant {:?} has an invalid sha256 {}: expected 64 lower-case hex digits",
            variant.name,
            shown(sha)
        )));
    }
    let key = format!("{prefix}{}/{sha}.{}", &sha[..2], variant.format.extension());
    validate_key(&key)?;
    Ok(key)
}

/// Stores every variant of `output` under its content-addressed key (see [`variant_key`]) and
/// returns one [`StoredVariant`] per variant, in order.
///
/// A variant whose key already [exists](Storage::exists) is not written again, so identical
/// images are stored once. If a put (or exists) fails, the objects this call created are
/// deleted again (pre-existing ones are left alone) and the error is returned: nothing is left
/// half-stored. Should that cleanup itself fail, a [`Error::Storage`] says so in its message.
///
/// Because of the deduplication, two concurrent calls storing the same image share an object:
/// if the call that created it then fails and cleans up, the other call's key is gone too.
///
/// Errors: [`Error::Storage`] for an invalid `prefix` or `sha256` (checked before anything is
/// written), and whatever the storage reports.
pub fn store_output(
    storage: &dyn Storage,
    output: &Output,
    prefix: &str,
) -> Result<Vec<StoredVariant>, Error> {
    let keys = output
        .variants
        .iter()
        .map(|v| variant_key(prefix, v))
        .collect::<Result<Vec<_>, Error>>()?;
    let mut created: Vec<&str> = Vec::new();
    let mut stored = Vec::with_capacity(keys.len());
    for (variant, key) in output.variants.iter().zip(&keys) {
        let content_type = variant.format.mime_type();
        let outcome = match storage.exists(key) {
            Ok(true) => Ok(false),
            Ok(false) => storage
                .put(key, &variant.bytes, content_type)
                .map(|()| true),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(true) => created.push(key),
            Ok(false) => {}
            Err(mut err) => {
                roll_back(storage, &created, &mut err);
                return Err(err);
            }
        }
        stored.push(StoredVariant {
            name: variant.name.clone(),
            key: key.clone(),
            size: variant.bytes.len(),
            content_type,
        });
    }
    Ok(stored)
}

/// Deletes `created`, newest first; notes any failure in `err` when it is a storage error.
fn roll_back(storage: &dyn Storage, created: &[&str], err: &mut Error) {
    let left: Vec<&str> = created
        .iter()
        .rev()
        .copied()
        .filter(|key| storage.delete(key).is_err())
        .collect();
    if left.is_empty() {
        return;
    }
    if let Error::Storage { detail, .. } = err {
        detail.push_str(&format!(
            "; cleaning up also failed, {} object(s) remain: {}",
            left.len(),
            left.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::options::OutputFormat;
    use crate::output::{MetadataFound, SourceReport};
    use crate::validate::Format;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn assert_storage_err<T: fmt::Debug>(r: Result<T, Error>, what: &str) {
        match r {
            Err(e) => assert_eq!(e.code(), ErrorCode::Storage, "{what}: {e}"),
            Ok(v) => panic!("{what}: expected a storage error, got {v:?}"),
        }
    }

    #[test]
    fn key_table() {
        let long_ok = format!("a/{}", "b".repeat(MAX_KEY_LEN - 2));
        let too_long = format!("a/{}", "b".repeat(MAX_KEY_LEN - 1));
        assert_eq!(long_ok.len(), 1024);
        assert_eq!(too_long.len(), 1025);
        let valid = [
            "ok/key-1.webp",
            "ab/cd_ef.png",
            "a",
            "a..b/c",
            ".hidden",
            "A/B/C/d.E",
            "x.tmp-1",
            long_ok.as_str(),
        ];
        for key in valid {
            assert!(validate_key(key).is_ok(), "{key:?} should be valid");
        }
        let invalid = [
            "..",
            ".",
            "a/../b",
            "a/./b",
            "/abs",
            "a\\b",
            "a\0b",
            "a//b",
            "a/",
            "",
            "./a",
            "a/..",
            "a b",
            "a/é.png",
            "a?b",
            "a:b",
            "a/.tmp-123-0",
            ".tmp-x",
            too_long.as_str(),
        ];
        for key in invalid {
            assert_storage_err(validate_key(key), &format!("key {key:?}"));
        }
    }

    #[test]
    fn prefix_table() {
        for prefix in ["", "a", "a/", "ab/c", "a/.", "a.", "x.tmp-"] {
            assert!(validate_prefix(prefix).is_ok(), "{prefix:?}");
        }
        for prefix in [
            "..",
            "../",
            "a/..",
            "a/../b",
            "/a",
            "a\\",
            "a\0",
            &"a".repeat(1025),
        ] {
            assert_storage_err(validate_prefix(prefix), &format!("prefix {prefix:?}"));
        }
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    /// The contract every backend must meet.
    fn exercise(s: &dyn Storage) {
        assert_eq!(s.list("").unwrap(), Vec::<String>::new());
        assert_eq!(s.get("a/b.png").unwrap(), None);
        assert!(!s.exists("a/b.png").unwrap());
        assert!(!s.delete("a/b.png").unwrap(), "deleting a missing key");

        s.put("a/b.png", b"one", "image/png").unwrap();
        assert_eq!(s.get("a/b.png").unwrap().as_deref(), Some(&b"one"[..]));
        assert!(s.exists("a/b.png").unwrap());

        // Overwrite, with a shorter and then a longer object.
        s.put("a/b.png", b"tw", "image/png").unwrap();
        assert_eq!(s.get("a/b.png").unwrap().as_deref(), Some(&b"tw"[..]));
        s.put("a/b.png", b"three", "image/png").unwrap();
        assert_eq!(s.get("a/b.png").unwrap().as_deref(), Some(&b"three"[..]));

        s.put("a/c.webp", b"c", "image/webp").unwrap();
        s.put("ab/d.jpg", b"d", "image/jpeg").unwrap();
        s.put("x/y/z/deep.png", b"deep", "image/png").unwrap();
        s.put("z", b"", "application/octet-stream").unwrap();
        assert_eq!(
            s.get("z").unwrap().as_deref(),
            Some(&b""[..]),
            "empty object"
        );

        let all = sorted(&["a/b.png", "a/c.webp", "ab/d.jpg", "x/y/z/deep.png", "z"]);
        assert_eq!(s.list("").unwrap(), all);
        assert_eq!(s.list("a/").unwrap(), sorted(&["a/b.png", "a/c.webp"]));
        assert_eq!(
            s.list("a").unwrap(),
            sorted(&["a/b.png", "a/c.webp", "ab/d.jpg"]),
            "a prefix need not be a whole segment"
        );
        assert_eq!(s.list("a/c").unwrap(), sorted(&["a/c.webp"]));
        assert_eq!(s.list("a/b.png").unwrap(), sorted(&["a/b.png"]));
        assert_eq!(s.list("x/y/").unwrap(), sorted(&["x/y/z/deep.png"]));
        assert_eq!(s.list("x/y/z/d").unwrap(), sorted(&["x/y/z/deep.png"]));
        assert!(s.list("nope/").unwrap().is_empty());
        assert!(s.list("q").unwrap().is_empty());
        assert!(s.list("a//").unwrap().is_empty());

        // A key that is only a prefix of others is no object.
        assert_eq!(s.get("a").unwrap(), None);
        assert!(!s.exists("x/y").unwrap());
        assert!(!s.delete("a").unwrap());
        // Below an object there is nothing.
        assert_eq!(s.get("z/below").unwrap(), None);
        assert!(!s.exists("z/below").unwrap());
        assert!(!s.delete("z/below").unwrap());

        for bad in [
            "../x", "a/../b", "/abs", "a\\b", "a\0b", "a//b", "a/", "", "./a",
        ] {
            assert_storage_err(s.put(bad, b"x", "image/png"), &format!("put {bad:?}"));
            assert_storage_err(s.get(bad), &format!("get {bad:?}"));
            assert_storage_err(s.exists(bad), &format!("exists {bad:?}"));
            assert_storage_err(s.delete(bad), &format!("delete {bad:?}"));
        }
        for bad in ["..", "../", "a/../", "/a", "a\\", "a\0"] {
            assert_storage_err(s.list(bad), &format!("list {bad:?}"));
        }

        assert!(s.delete("a/b.png").unwrap());
        assert!(!s.delete("a/b.png").unwrap(), "second delete");
        assert_eq!(s.get("a/b.png").unwrap(), None);
        assert!(!s.exists("a/b.png").unwrap());
        assert_eq!(s.list("a/").unwrap(), sorted(&["a/c.webp"]));
        s.put("a/b.png", b"again", "image/png").unwrap();
        assert_eq!(s.get("a/b.png").unwrap().as_deref(), Some(&b"again"[..]));

        for key in s.list("").unwrap() {
            assert!(s.delete(&key).unwrap(), "{key}");
        }
        assert!(s.list("").unwrap().is_empty());
    }

    #[test]
    fn memory_storage_meets_the_contract() {
        let s = MemoryStorage::new();
        exercise(&s);
        assert!(s.is_empty());
    }

    #[test]
    fn storage_wrappers_forward() {
        let s = std::sync::Arc::new(MemoryStorage::new());
        exercise(&s);
        let boxed: Box<dyn Storage> = Box::new(MemoryStorage::new());
        exercise(&boxed);
        exercise(&&*boxed);
    }

    #[test]
    fn memory_storage_keeps_content_types() {
        let s = MemoryStorage::new();
        assert!(s.is_empty());
        s.put("a/b.webp", b"x", "image/webp").unwrap();
        s.put("c.png", b"yy", "image/png").unwrap();
        assert_eq!(s.len(), 2);
        assert!(!s.is_empty());
        assert_eq!(s.content_type("a/b.webp").as_deref(), Some("image/webp"));
        assert_eq!(s.content_type("c.png").as_deref(), Some("image/png"));
        assert_eq!(s.content_type("nope"), None);
        s.put("c.png", b"z", "image/x-test").unwrap();
        assert_eq!(s.content_type("c.png").as_deref(), Some("image/x-test"));
        let debug = format!("{s:?}");
        assert!(
            debug.contains("a/b.webp") && debug.contains("MemoryStorage"),
            "{debug}"
        );
    }

    /// One encoded variant with the right hash.
    fn variant(name: &str, format: OutputFormat, bytes: &[u8]) -> VariantOutput {
        use sha2::{Digest, Sha256};
        let sha256: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        VariantOutput {
            name: name.into(),
            width: 4,
            height: 3,
            format,
            size: bytes.len(),
            sha256,
            bytes: bytes.to_vec(),
        }
    }

    fn output(variants: Vec<VariantOutput>) -> Output {
        Output {
            variants,
            dominant_color: None,
            palette: Vec::new(),
            placeholder: None,
            source: SourceReport {
                format: Format::Png,
                bytes: 100,
                stored_width: 4,
                stored_height: 3,
                orientation: 1,
                width: 4,
                height: 3,
                frames: 1,
                has_alpha: false,
                metadata: MetadataFound::default(),
                icc_description: None,
                color_converted: false,
                trailing_bytes: 0,
            },
        }
    }

    fn sample_output() -> Output {
        output(vec![
            variant("thumb", OutputFormat::Webp, b"thumb bytes"),
            variant("large", OutputFormat::Png, b"large bytes"),
            variant("photo", OutputFormat::Jpeg, b"photo bytes"),
            // Same bytes and format as "thumb": same key, stored once.
            variant("thumb_again", OutputFormat::Webp, b"thumb bytes"),
        ])
    }

    fn check_store_twice(s: &dyn Storage, prefix: &str) {
        let out = sample_output();
        let first = store_output(s, &out, prefix).unwrap();
        assert_eq!(first.len(), out.variants.len());
        for (stored, v) in first.iter().zip(&out.variants) {
            assert_eq!(stored.name, v.name);
            let want = format!(
                "{prefix}{}/{}.{}",
                &v.sha256[..2],
                v.sha256,
                v.format.extension()
            );
            assert_eq!(stored.key, want);
            assert_eq!(stored.size, v.bytes.len());
            assert_eq!(stored.content_type, v.format.mime_type());
            assert_eq!(s.get(&stored.key).unwrap().as_deref(), Some(&v.bytes[..]));
        }
        assert!(first[1].key.ends_with(".png") && first[2].key.ends_with(".jpg"));
        assert_eq!(first[0].key, first[3].key);
        let after_first = s.list("").unwrap();
        assert_eq!(after_first.len(), 3, "{after_first:?}");

        let second = store_output(s, &out, prefix).unwrap();
        assert_eq!(first, second, "keys are content-addressed");
        assert_eq!(s.list("").unwrap(), after_first);
    }

    /// Counts puts, and can fail the Nth one.
    struct CountingStorage {
        inner: MemoryStorage,
        puts: AtomicUsize,
        fail_put: Option<usize>,
    }

    impl CountingStorage {
        fn new(fail_put: Option<usize>) -> CountingStorage {
            CountingStorage {
                inner: MemoryStorage::new(),
                puts: AtomicUsize::new(0),
                fail_put,
            }
        }
    }

    impl Storage for CountingStorage {
        fn put(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error> {
            let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
            if Some(n) == self.fail_put {
                return Err(Error::Storage {
                    detail: format!("injected failure of put #{n}"),
                    source: Some(std::io::Error::other("disk full")),
                });
            }
            self.inner.put(key, bytes, content_type)
        }
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
            self.inner.get(key)
        }
        fn delete(&self, key: &str) -> Result<bool, Error> {
            self.inner.delete(key)
        }
        // `exists` uses the trait's default.
        fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
            self.inner.list(prefix)
        }
    }

    #[test]
    fn store_output_is_content_addressed_and_deduplicated() {
        check_store_twice(&MemoryStorage::new(), "");
        check_store_twice(&MemoryStorage::new(), "images/v1/");

        let s = CountingStorage::new(None);
        let out = sample_output();
        store_output(&s, &out, "").unwrap();
        assert_eq!(s.puts.load(Ordering::SeqCst), 3, "the duplicate is not put");
        store_output(&s, &out, "").unwrap();
        assert_eq!(
            s.puts.load(Ordering::SeqCst),
            3,
            "the second call writes nothing"
        );

        let mem = MemoryStorage::new();
        let stored = store_output(&mem, &out, "").unwrap();
        assert_eq!(
            mem.content_type(&stored[1].key).as_deref(),
            Some("image/png")
        );
    }

    #[test]
    fn store_output_of_no_variants_stores_nothing() {
        let s = MemoryStorage::new();
        assert!(
            store_output(&s, &output(Vec::new()), "p/")
                .unwrap()
                .is_empty()
        );
        assert!(s.is_empty());
    }

    #[test]
    fn store_output_rolls_back_a_failed_call() {
        let out = sample_output();
        let photo_key = variant_key("", &out.variants[2]).unwrap();
        for fail_put in 1..=2 {
            let s = CountingStorage::new(Some(fail_put + 1));
            // Objects that are there before the call.
            s.inner
                .put("other/object.png", b"keep", "image/png")
                .unwrap();
            s.put(&photo_key, b"photo bytes", "image/jpeg").unwrap();
            let before = s.list("").unwrap();

            let err = store_output(&s, &out, "").unwrap_err();
            assert_eq!(err.code(), ErrorCode::Storage);
            assert!(err.to_string().contains("injected failure"), "{err}");
            assert_eq!(s.list("").unwrap(), before, "failing put #{fail_put}");
            assert_eq!(
                s.get(&photo_key).unwrap().as_deref(),
                Some(&b"photo bytes"[..])
            );
        }
    }

    /// A storage whose deletes fail too.
    struct StuckStorage(CountingStorage);

    impl Storage for StuckStorage {
        fn put(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<(), Error> {
            self.0.put(key, bytes, content_type)
        }
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
            self.0.get(key)
        }
        fn delete(&self, _key: &str) -> Result<bool, Error> {
            Err(storage_error("delete refused"))
        }
        fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
            self.0.list(prefix)
        }
    }

    #[test]
    fn store_output_reports_a_failed_rollback() {
        let s = StuckStorage(CountingStorage::new(Some(2)));
        let err = store_output(&s, &sample_output(), "").unwrap_err();
        assert_eq!(err.code(), ErrorCode::Storage);
        let msg = err.to_string();
        assert!(
            msg.contains("injected failure") && msg.contains("1 object(s) remain"),
            "{msg}"
        );
    }

    #[test]
    fn store_output_checks_prefix_and_hash_before_writing() {
        let s = CountingStorage::new(None);
        let out = sample_output();
        for prefix in [
            "images", "/images/", "a//", "../", "a/../", "./", "a\\/", ".tmp-x/",
        ] {
            assert_storage_err(
                store_output(&s, &out, prefix),
                &format!("prefix {prefix:?}"),
            );
        }
        let mut bad = sample_output();
        bad.variants[1].sha256 = "ABC".into();
        assert_storage_err(store_output(&s, &bad, ""), "short sha");
        bad.variants[1].sha256 = "G".repeat(64);
        assert_storage_err(store_output(&s, &bad, ""), "non-hex sha");
        bad.variants[1].sha256 = out.variants[1].sha256.to_uppercase();
        assert_storage_err(store_output(&s, &bad, ""), "upper-case sha");
        let long_prefix = format!("{}/", "p".repeat(1000));
        assert_storage_err(store_output(&s, &out, &long_prefix), "key too long");
        assert_eq!(s.puts.load(Ordering::SeqCst), 0);
        assert!(s.list("").unwrap().is_empty());
    }

    #[cfg(feature = "fs")]
    mod fs {
        use super::*;
        use std::path::Path;

        /// Every file name under `dir`, recursively, relative, with `/`.
        fn files(dir: &Path) -> Vec<String> {
            fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
                for entry in std::fs::read_dir(dir).unwrap() {
                    let entry = entry.unwrap();
                    let name = format!("{rel}{}", entry.file_name().to_string_lossy());
                    if entry.file_type().unwrap().is_dir() {
                        walk(&entry.path(), &format!("{name}/"), out);
                    } else {
                        out.push(name);
                    }
                }
            }
            let mut out = Vec::new();
            walk(dir, "", &mut out);
            out.sort();
            out
        }

        fn temp_files(dir: &Path) -> Vec<String> {
            files(dir)
                .into_iter()
                .filter(|f| f.rsplit('/').next().unwrap().starts_with(".tmp-"))
                .collect()
        }

        #[test]
        fn fs_storage_meets_the_contract() {
            let dir = tempfile::tempdir().unwrap();
            let s = FsStorage::new(dir.path()).unwrap();
            exercise(&s);
            assert!(temp_files(dir.path()).is_empty());
        }

        #[test]
        fn fs_new_creates_the_root() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("x").join("y");
            let s = FsStorage::new(&root).unwrap();
            assert!(root.is_dir());
            assert!(s.root().is_absolute());
            assert_eq!(s.root(), root.canonicalize().unwrap());
            s.put("k/v.png", b"1", "image/png").unwrap();
            assert_eq!(std::fs::read(root.join("k").join("v.png")).unwrap(), b"1");
            // Another handle on the same root sees the same objects.
            let again = FsStorage::new(&root).unwrap().clone();
            assert_eq!(again.list("").unwrap(), ["k/v.png"]);

            let file = dir.path().join("file");
            std::fs::write(&file, b"x").unwrap();
            assert_storage_err(FsStorage::new(&file), "root is a file");
        }

        #[test]
        fn fs_put_leaves_no_temp_files() {
            let dir = tempfile::tempdir().unwrap();
            let s = FsStorage::new(dir.path()).unwrap();
            for i in 0..5u8 {
                s.put("a/b.webp", &[i; 100], "image/webp").unwrap();
                s.put(&format!("c/d/{i}.png"), &[i; 10], "image/png")
                    .unwrap();
            }
            assert!(temp_files(dir.path()).is_empty(), "{:?}", files(dir.path()));
            let want: Vec<String> = std::iter::once("a/b.webp".to_string())
                .chain((0..5).map(|i| format!("c/d/{i}.png")))
                .collect();
            assert_eq!(files(dir.path()), want);
            assert_eq!(s.list("").unwrap(), want);
        }

        #[test]
        fn fs_list_skips_temp_and_foreign_files() {
            let dir = tempfile::tempdir().unwrap();
            let s = FsStorage::new(dir.path()).unwrap();
            s.put("a/b.png", b"b", "image/png").unwrap();
            std::fs::write(dir.path().join(".tmp-1-0"), b"half").unwrap();
            std::fs::write(dir.path().join("a").join(".tmp-999-7"), b"half").unwrap();
            std::fs::create_dir(dir.path().join(".tmp-dir")).unwrap();
            std::fs::write(dir.path().join(".tmp-dir").join("x"), b"x").unwrap();
            std::fs::write(dir.path().join("a").join("not a key"), b"x").unwrap();
            assert_eq!(s.list("").unwrap(), ["a/b.png"]);
            assert_eq!(s.list("a/").unwrap(), ["a/b.png"]);
            assert_eq!(s.list("a/.tmp").unwrap(), Vec::<String>::new());
            assert_eq!(s.list(".tmp").unwrap(), Vec::<String>::new());
            assert_storage_err(s.get("a/.tmp-999-7"), "temp files are not objects");
        }

        #[test]
        fn fs_keys_cannot_escape_the_root() {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            let s = FsStorage::new(&root).unwrap();
            for key in [
                "../escaped",
                "a/../../escaped",
                "/tmp/escaped",
                "..\\escaped",
                "a/..",
                "..",
            ] {
                assert_storage_err(s.put(key, b"x", "image/png"), key);
                assert_storage_err(s.get(key), key);
                assert_storage_err(s.delete(key), key);
            }
            assert_storage_err(s.list("../"), "list ../");
            let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(entries.len(), 1, "only the root is in its parent");
            assert!(files(&root).is_empty());
        }

        #[cfg(unix)]
        #[test]
        fn fs_symlinks_are_not_followed() {
            use std::os::unix::fs::symlink;
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            let outside = dir.path().join("outside");
            std::fs::create_dir(&outside).unwrap();
            std::fs::write(outside.join("secret"), b"secret").unwrap();
            let s = FsStorage::new(&root).unwrap();
            symlink(&outside, root.join("link")).unwrap();
            symlink(outside.join("secret"), root.join("secret")).unwrap();

            assert_storage_err(s.put("link/x.png", b"x", "image/png"), "put through a link");
            assert_storage_err(
                s.put("link/deeper/x.png", b"x", "image/png"),
                "mkdir via link",
            );
            assert_storage_err(s.get("link/secret"), "get through a link");
            assert_storage_err(s.exists("link/secret"), "exists through a link");
            assert_storage_err(s.delete("link/secret"), "delete through a link");
            assert_storage_err(s.get("secret"), "get a link");
            assert_storage_err(s.put("secret", b"x", "image/png"), "put onto a link");
            assert_storage_err(s.delete("secret"), "delete a link");
            assert_eq!(s.list("").unwrap(), Vec::<String>::new());

            assert_eq!(files(&outside), ["secret"]);
            assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
            assert!(temp_files(&root).is_empty());
        }

        #[test]
        fn fs_put_onto_a_directory_fails_cleanly() {
            let dir = tempfile::tempdir().unwrap();
            let s = FsStorage::new(dir.path()).unwrap();
            std::fs::create_dir_all(dir.path().join("a").join("b")).unwrap();
            let err = s.put("a/b", b"x", "image/png").unwrap_err();
            assert_eq!(err.code(), ErrorCode::Storage);
            assert!(err.to_string().contains("directory"), "{err}");
            assert!(temp_files(dir.path()).is_empty(), "{:?}", files(dir.path()));
            assert!(dir.path().join("a").join("b").is_dir());

            // And under an object.
            s.put("f", b"f", "image/png").unwrap();
            assert_storage_err(s.put("f/g", b"x", "image/png"), "put below an object");
            assert_eq!(s.get("f").unwrap().as_deref(), Some(&b"f"[..]));
            assert!(temp_files(dir.path()).is_empty());
            assert_eq!(s.list("").unwrap(), ["f"]);
        }

        #[test]
        fn fs_store_output() {
            let dir = tempfile::tempdir().unwrap();
            let s = FsStorage::new(dir.path()).unwrap();
            check_store_twice(&s, "img/");
            assert!(temp_files(dir.path()).is_empty());
        }

        #[test]
        fn fs_concurrent_puts_and_gets_are_never_torn() {
            const THREADS: u8 = 8;
            const ROUNDS: usize = 25;
            const SIZE: usize = 256 * 1024;
            let dir = tempfile::tempdir().unwrap();
            let s = FsStorage::new(dir.path()).unwrap();
            let key = "shared/object.bin";
            s.put(key, &vec![0xFF; SIZE], "application/octet-stream")
                .unwrap();
            std::thread::scope(|scope| {
                for t in 0..THREADS {
                    let s = &s;
                    scope.spawn(move || {
                        let mine = vec![t; SIZE];
                        for _ in 0..ROUNDS {
                            s.put(key, &mine, "application/octet-stream").unwrap();
                            let got = s.get(key).unwrap().expect("the object is always there");
                            assert_eq!(got.len(), SIZE, "torn length");
                            assert!(got.iter().all(|&b| b == got[0]), "torn object");
                        }
                    });
                }
            });
            let last = s.get(key).unwrap().unwrap();
            assert!(last[0] < THREADS && last.iter().all(|&b| b == last[0]));
            assert!(temp_files(dir.path()).is_empty(), "{:?}", files(dir.path()));
            assert_eq!(s.list("").unwrap(), [key]);
        }
    }
}
