//! The sled 0.34 engine.
//!
//! Only single-key operations are used: sled's `apply_batch` and transactions run 10-40x slower
//! here and, once used, put every later operation in the process behind one global lock.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::space::SpaceGuard;
use super::{Backend, Bytes, Entries, KeyRange, Tree};
use crate::{Error, Result};

/// sled stores a value larger than a quarter of its 512 KiB segments as a file of its own under
/// `blobs/` and never syncs it; revkv does, after any write that may have produced one.
const BLOB_THRESHOLD: usize = 64 * 1024;

/// A sled database in a directory that this process holds exclusively.
pub(crate) struct SledBackend {
    db: ::sled::Db,
    dir: PathBuf,
    /// sled's log; `sync` ends with `fdatasync` on it because sled's own flush only issues
    /// `sync_file_range`, which is not a durability barrier.
    log: File,
    blobs: Arc<BlobSync>,
    failed: Arc<Failed>,
    space: Arc<SpaceGuard>,
    // Declared last so the lock is released after sled has shut down.
    _lock: File,
}

impl SledBackend {
    /// Opens the database in `dir`, failing with [`Error::Locked`] if any other open store
    /// (in this process or another) holds it. Writes are refused once less than
    /// `free_space_reserve` bytes are free on its file system.
    pub(crate) fn open(dir: &Path, cache_bytes: u64, free_space_reserve: u64) -> Result<Self> {
        fs::create_dir_all(dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("revkv.lock"))?;
        // A child process forked (by any thread of this process) between `fork` and `exec`
        // briefly holds copies of every open file, and with them their locks: wait a moment.
        lock_within(&lock, dir, Duration::from_secs(1))?;
        let engine_log = match File::open(dir.join("db")) {
            Ok(log) => Some(log),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None, // a new store
            Err(e) => return Err(e.into()),
        };
        if let Some(engine_log) = engine_log {
            // sled locks its log too, and releases that lock only when the last of its
            // background threads lets go of the file, a moment after a `Db` is dropped. So a
            // store this process just closed can still hold it: holding `revkv.lock`, no other
            // store of the directory is open, so wait for it. Found by the `ops` fuzz target.
            lock_within(&engine_log, dir, Duration::from_secs(10))?;
        }
        let db = ::sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(storage_error)?;
        let log = File::open(dir.join("db"))?;
        File::open(dir)?.sync_all()?;
        Ok(Self {
            db,
            dir: dir.to_path_buf(),
            log,
            blobs: Arc::new(BlobSync::default()),
            failed: Arc::new(Failed::default()),
            space: Arc::new(SpaceGuard::new(dir.to_path_buf(), free_space_reserve)),
            _lock: lock,
        })
    }
}

impl Backend for SledBackend {
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        let tree = self.failed.check(self.db.open_tree(name))?;
        Ok(Arc::new(SledTree {
            tree,
            blobs: Arc::clone(&self.blobs),
            failed: Arc::clone(&self.failed),
            space: Arc::clone(&self.space),
        }))
    }

    fn sync(&self) -> Result<()> {
        self.failed.refuse_if_failed()?;
        self.space.before_sync()?;
        self.failed.check(self.db.flush())?;
        self.log.sync_data()?;
        self.blobs.sync_new(&self.dir.join("blobs"))
    }

    fn admit(&self) -> Result<()> {
        self.failed.refuse_if_failed()?;
        self.space.admit()
    }
}

/// Set once sled reports an I/O error or corruption. From then on writes and syncs are
/// refused: sled 0.34 keeps accepting writes into memory after its log failed (on a full disk,
/// say), and its next flush can then wait forever.
#[derive(Default)]
struct Failed(AtomicBool);

impl Failed {
    fn check<T>(&self, result: ::sled::Result<T>) -> Result<T> {
        result.map_err(|e| {
            let error = storage_error(e);
            if matches!(error, Error::Io(_) | Error::Corrupt { .. }) {
                self.0.store(true, Ordering::Release);
            }
            error
        })
    }

    fn refuse_if_failed(&self) -> Result<()> {
        if self.0.load(Ordering::Acquire) {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }
}

/// Takes `file`'s exclusive lock, trying for at most `patience` before reporting the store
/// as held by someone else. Dropping `file` releases the lock.
fn lock_within(file: &File, dir: &Path, patience: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < patience => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(fs::TryLockError::Error(io)) => return Err(Error::Io(io)),
        }
    }
}

struct SledTree {
    tree: ::sled::Tree,
    blobs: Arc<BlobSync>,
    failed: Arc<Failed>,
    space: Arc<SpaceGuard>,
}

impl SledTree {
    /// What every write checks first: the engine has not failed, and the disk has room. A
    /// value large enough to be a blob file is remembered for the next sync.
    fn admit(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.failed.refuse_if_failed()?;
        let len = value.map_or(0, <[u8]>::len);
        self.space.before_write(key.len() + len)?;
        if len >= BLOB_THRESHOLD {
            self.blobs.pending.store(true, Ordering::Release);
        }
        Ok(())
    }
}

/// sled's entries with owned keys.
fn owned(entry: ::sled::Result<(::sled::IVec, Bytes)>) -> Result<(Vec<u8>, Bytes)> {
    let (k, v) = entry.map_err(storage_error)?;
    Ok((k.to_vec(), v))
}

impl Tree for SledTree {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.failed.check(self.tree.get(key))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.admit(key, Some(value))?;
        self.failed.check(self.tree.insert(key, value))?;
        Ok(())
    }

    fn swap(&self, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool> {
        self.admit(key, new)?;
        // sled's compare-and-swap does less work than its insert, which also returns the old
        // value: measured here, 8.5k against 9.7k instructions for a 100-byte value.
        let swapped = self
            .failed
            .check(self.tree.compare_and_swap(key, old, new))?;
        Ok(swapped.is_ok())
    }

    fn remove(&self, key: &[u8]) -> Result<()> {
        self.admit(key, None)?;
        self.failed.check(self.tree.remove(key))?;
        Ok(())
    }

    fn range(&self, range: &KeyRange, reverse: bool) -> Entries {
        if range.is_empty() {
            return Box::new(std::iter::empty());
        }
        let entries = self.tree.range::<&[u8], _>(range.bounds());
        if reverse {
            Box::new(entries.rev().map(owned))
        } else {
            Box::new(entries.map(owned))
        }
    }
}

/// Syncs the blob files sled wrote since the last sync, and their directory.
#[derive(Default)]
struct BlobSync {
    pending: AtomicBool,
    synced: Mutex<HashSet<std::ffi::OsString>>,
}

impl BlobSync {
    fn sync_new(&self, dir: &Path) -> Result<()> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let mut synced = self.synced.lock();
        let result = (|| {
            let mut present = HashSet::new();
            for entry in fs::read_dir(dir)? {
                let name = entry?.file_name();
                if !synced.contains(&name) {
                    File::open(dir.join(&name))?.sync_all()?;
                }
                present.insert(name);
            }
            File::open(dir)?.sync_all()?;
            *synced = present;
            Ok(())
        })();
        if result.is_err() {
            // Try again on the next sync rather than silently leave blobs unsynced.
            self.pending.store(true, Ordering::Release);
        }
        result
    }
}

pub(crate) fn storage_error(error: ::sled::Error) -> Error {
    match error {
        ::sled::Error::Io(io) => Error::Io(io),
        ::sled::Error::Corruption { at, .. } => Error::Corrupt {
            location: format!("the storage engine's log ({at:?})"),
            reason: "sled found a damaged log entry".into(),
        },
        other => Error::Storage(Box::new(other)),
    }
}
