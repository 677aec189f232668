//! The commit log behind [`Durability::Immediate`](crate::Durability::Immediate).
//!
//! A durable commit straight through sled costs two waits on the disk: sled's `flush` (which
//! ends in `sync_file_range`, not a durability barrier) and then `fdatasync` of its files. So
//! in Immediate mode every logical write is first appended, as one frame listing its
//! single-key writes, to this log: a preallocated file made durable by one `fdatasync`,
//! shared by every writer waiting at the time (group commit). Only then are the writes
//! applied to the engine, under the commit's locks. The engine therefore never holds a write
//! whose frame is not durable, and recovery is to re-apply, in order, every frame of the
//! current generation: the writes carry absolute values, so re-applying what the engine
//! already holds is harmless, and in the end each key has its last durable value.
//!
//! A checkpoint makes the engine durable on its own (sled's flush, then `fdatasync` of its
//! files and blobs) and starts a new generation, whose frames are written from the start of
//! the file again; frames of older generations are ignored. Checkpoints run when the log
//! reaches [`CAPACITY`], at [`Store::flush`](crate::Store::flush), at close, and after writes
//! that bypass the log (bulk loads).
//!
//! A frame is the payload's length (u32 LE), a CRC-32 of payload and generation (u32 LE), the
//! generation (u64 LE) and the payload: the tagged list of writes. Replay stops at the first
//! frame that is cut short, of another generation, or fails its checksum: the tail of a write
//! that a crash interrupted, which no writer was told had succeeded.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::backend::Backend;
use crate::codec::{self, JOURNAL};
use crate::durability::GroupCommit;
use crate::engine::commit::LoggedWrite;
use crate::meta::Meta;
use crate::{Error, Result};

const FILE_NAME: &str = "journal";
const GENERATION_KEY: &str = "journal-generation";
/// The file's preallocated size; a checkpoint starts the next generation once frames fill it.
/// A frame larger than what is left still goes in, extending the file.
const CAPACITY: u64 = 16 << 20;
const HEADER_LEN: usize = 16;

pub(crate) struct Journal {
    file: File,
    meta: Arc<Meta>,
    backend: Arc<dyn Backend>,
    state: Mutex<State>,
    /// Frames appended whose writes the engine does not hold yet. Raised under `state`.
    unapplied: AtomicUsize,
    /// Signalled (under `state`) when `unapplied` drops to 0 and when a checkpoint ends.
    settled: Condvar,
    group: GroupCommit,
}

struct State {
    generation: u64,
    /// Bytes of this generation handed to the file.
    written: u64,
    /// Frames appended since, for the next group write.
    pending: Vec<u8>,
    checkpointing: bool,
}

/// A frame whose writes are not applied yet; dropped once they are (or failed).
struct Unapplied<'j>(&'j Journal);

impl Drop for Unapplied<'_> {
    fn drop(&mut self) {
        if self.0.unapplied.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock, so a checkpoint cannot miss it between its check and its wait.
            let _state = self.0.state.lock();
            self.0.settled.notify_all();
        }
    }
}

impl Journal {
    /// Opens the log of the store in `dir`: re-applies what a crash left in it (see
    /// [`recover`]), then preallocates the file if it is new.
    pub(crate) fn open(
        dir: &Path,
        meta: Arc<Meta>,
        backend: Arc<dyn Backend>,
        before_checkpoint: &dyn Fn() -> Result<()>,
    ) -> Result<Self> {
        let generation = recover(dir, &meta, backend.as_ref(), before_checkpoint)?;
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if file.metadata()?.len() < CAPACITY {
            // Zeros, not a sparse file: a write into it then changes no file metadata, so
            // its `fdatasync` is one flush of data.
            let zeros = vec![0; 1 << 20];
            for offset in (0..CAPACITY).step_by(zeros.len()) {
                file.write_all_at(&zeros, offset)?;
            }
            file.sync_all()?;
            File::open(dir)?.sync_all()?;
        }
        Ok(Self {
            file,
            meta,
            backend,
            state: Mutex::new(State {
                generation,
                written: 0,
                pending: Vec::new(),
                checkpointing: false,
            }),
            unapplied: AtomicUsize::new(0),
            settled: Condvar::new(),
            group: GroupCommit::new(),
        })
    }

    /// Makes `writes` durable in the log, then runs `apply`, which makes them in the engine.
    /// `before_checkpoint` runs first if the log is full (see [`Self::checkpoint`]).
    pub(crate) fn commit<R>(
        &self,
        writes: &[LoggedWrite],
        apply: impl FnOnce() -> Result<R>,
        before_checkpoint: &dyn Fn() -> Result<()>,
    ) -> Result<R> {
        let payload = codec::encode_tagged(JOURNAL, writes)
            .map_err(|e| Error::encode(e, "a journal frame".into()))?;
        let payload_len = u32::try_from(payload.len())
            .map_err(|_| Error::Io(io::Error::other("a write of more than 4 GiB")))?;
        // The generation is known only under the lock; the payload is summed outside it.
        let mut payload_crc = crc32fast::Hasher::new();
        payload_crc.update(&payload);
        let _unapplied = loop {
            let mut state = self.state.lock();
            while state.checkpointing {
                self.settled.wait(&mut state);
            }
            if state.written + state.pending.len() as u64 >= CAPACITY {
                self.checkpoint_holding(state, before_checkpoint)?;
                continue;
            }
            let generation = state.generation.to_le_bytes();
            let mut crc = payload_crc.clone();
            crc.update(&generation);
            state.pending.extend_from_slice(&payload_len.to_le_bytes());
            state
                .pending
                .extend_from_slice(&crc.finalize().to_le_bytes());
            state.pending.extend_from_slice(&generation);
            state.pending.extend_from_slice(&payload);
            self.unapplied.fetch_add(1, Ordering::AcqRel);
            break Unapplied(self);
        };
        self.group.sync(|| self.write_pending())?;
        apply()
    }

    /// The group commit's sync: writes every frame appended so far, then `fdatasync`.
    fn write_pending(&self) -> Result<()> {
        let (frames, offset) = {
            let mut state = self.state.lock();
            let frames = std::mem::take(&mut state.pending);
            let offset = state.written;
            state.written += frames.len() as u64;
            (frames, offset)
        };
        self.file.write_all_at(&frames, offset)?;
        self.file.sync_data()?;
        Ok(())
    }

    /// Makes the engine durable on its own and starts the next generation of the log. New
    /// frames wait meanwhile; frames already appended are applied first.
    /// `before_checkpoint` runs once they are, before the engine's sync: it is where the
    /// change feed records that its entries are applied, so that they are not redone over
    /// newer writes after the frames that follow them are gone.
    pub(crate) fn checkpoint(&self, before_checkpoint: &dyn Fn() -> Result<()>) -> Result<()> {
        self.checkpoint_holding(self.state.lock(), before_checkpoint)
    }

    fn checkpoint_holding(
        &self,
        mut state: MutexGuard<'_, State>,
        before_checkpoint: &dyn Fn() -> Result<()>,
    ) -> Result<()> {
        // One already running may have synced the engine before the caller's last writes.
        while state.checkpointing {
            self.settled.wait(&mut state);
        }
        state.checkpointing = true;
        while self.unapplied.load(Ordering::Acquire) > 0 {
            self.settled.wait(&mut state);
        }
        let next = state.generation + 1;
        drop(state);
        let result = start_generation(&self.meta, self.backend.as_ref(), next, before_checkpoint);
        let mut state = self.state.lock();
        if result.is_ok() {
            state.generation = next;
            state.written = 0;
        }
        state.checkpointing = false;
        self.settled.notify_all();
        result
    }

    /// Marks the log's frames as redundant at close, where the engine's own sync follows
    /// (no writer is left to wait for).
    pub(crate) fn retire(&self) -> Result<()> {
        let next = self.state.lock().generation + 1;
        self.meta.put(GENERATION_KEY, &next)
    }
}

/// Re-applies, in order, the frames of the current generation found in `dir`'s log, then
/// starts the next generation; returns it.
pub(crate) fn recover(
    dir: &Path,
    meta: &Meta,
    backend: &dyn Backend,
    before_checkpoint: &dyn Fn() -> Result<()>,
) -> Result<u64> {
    let generation = meta.get::<u64>(GENERATION_KEY)?.unwrap_or(0);
    match File::open(dir.join(FILE_NAME)) {
        Ok(file) => replay(&file, generation, backend)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    start_generation(meta, backend, generation + 1, before_checkpoint)?;
    Ok(generation + 1)
}

/// For a store opened without a journal: if the last session left one (it ran in Immediate
/// mode), re-applies what it holds ([`recover`]), then removes it.
pub(crate) fn recover_and_remove(
    dir: &Path,
    meta: &Meta,
    backend: &dyn Backend,
    before_checkpoint: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let path = dir.join(FILE_NAME);
    if !path.exists() {
        return Ok(());
    }
    recover(dir, meta, backend, before_checkpoint)?;
    std::fs::remove_file(path)?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn start_generation(
    meta: &Meta,
    backend: &dyn Backend,
    generation: u64,
    before_checkpoint: &dyn Fn() -> Result<()>,
) -> Result<()> {
    before_checkpoint()?;
    meta.put(GENERATION_KEY, &generation)?;
    backend.sync()
}

/// Applies the valid frames of `generation`, from the start of the file.
fn replay(file: &File, generation: u64, backend: &dyn Backend) -> Result<()> {
    let len = file.metadata()?.len();
    let mut offset = 0;
    let mut header = [0; HEADER_LEN];
    while offset + HEADER_LEN as u64 <= len {
        file.read_exact_at(&mut header, offset)?;
        let (payload_len, rest) = header.split_at(4);
        let (crc, frame_generation) = rest.split_at(4);
        let payload_len = u64::from(u32::from_le_bytes(payload_len.try_into().expect("4")));
        let payload_start = offset + HEADER_LEN as u64;
        if payload_len == 0
            || u64::from_le_bytes(frame_generation.try_into().expect("8")) != generation
            || payload_start + payload_len > len
        {
            break;
        }
        let mut payload = vec![0; usize::try_from(payload_len).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut payload, payload_start)?;
        let mut computed = crc32fast::Hasher::new();
        computed.update(&payload);
        computed.update(frame_generation);
        if computed.finalize().to_le_bytes() != crc {
            break;
        }
        let writes: Vec<LoggedWrite> = codec::decode_tagged(JOURNAL, &payload)
            .map_err(|e| Error::decode(e, format!("the journal frame at byte {offset}")))?;
        for write in &writes {
            write.redo(backend)?;
        }
        offset = payload_start + payload_len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::backend::{Bytes, SledBackend};
    use crate::engine::local::journal::*;

    fn write(key: &str, value: &str) -> LoggedWrite {
        LoggedWrite {
            tree: "t".into(),
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A store directory whose journal holds `frames`, none of them applied to the engine
    /// (as after a crash that lost the engine's writes); returns the offset where each frame
    /// starts, and where the last one ends.
    fn journal_with(dir: &Path, frames: &[Vec<LoggedWrite>]) -> Result<Vec<u64>> {
        let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(dir, 1 << 20, 0)?);
        let meta = Arc::new(Meta::new(backend.tree("meta")?));
        let journal = Journal::open(dir, meta, backend, &|| Ok(()))?;
        let mut starts = Vec::new();
        for writes in frames {
            starts.push(journal.state.lock().written);
            journal.commit(writes, || Ok(()), &|| Ok(()))?;
        }
        starts.push(journal.state.lock().written);
        Ok(starts)
    }

    /// Recovers `dir`'s journal; returns the values of keys `a` and `b` afterwards.
    fn recovered(dir: &Path) -> Result<(Option<Bytes>, Option<Bytes>)> {
        let backend = SledBackend::open(dir, 1 << 20, 0)?;
        let meta = Meta::new(backend.tree("meta")?);
        recover(dir, &meta, &backend, &|| Ok(()))?;
        let tree = backend.tree("t")?;
        Ok((tree.get(b"a")?, tree.get(b"b")?))
    }

    #[test]
    fn frames_are_replayed_in_order_up_to_a_torn_tail_and_only_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let starts = journal_with(
            dir.path(),
            &[
                vec![write("a", "1")],
                vec![write("a", "2"), write("b", "1")],
            ],
        )?;
        // Half of a third frame: what a crash during its write leaves.
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(FILE_NAME))?;
        file.write_all_at(&[7; 9], starts[2])?;
        let (a, b) = recovered(dir.path())?;
        assert_eq!(a.as_deref(), Some(&b"2"[..]));
        assert_eq!(b.as_deref(), Some(&b"1"[..]));

        // Recovery started a new generation: the same frames are not applied again.
        let backend = SledBackend::open(dir.path(), 1 << 20, 0)?;
        backend.tree("t")?.put(b"a", b"3")?;
        backend.sync()?;
        drop(backend);
        assert_eq!(recovered(dir.path())?.0.as_deref(), Some(&b"3"[..]));
        Ok(())
    }

    #[test]
    fn a_frame_that_fails_its_checksum_ends_the_replay() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let starts = journal_with(dir.path(), &[vec![write("a", "1")], vec![write("b", "1")]])?;
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(FILE_NAME))?;
        // The last byte of the second frame's payload.
        file.write_all_at(b"X", starts[2] - 1)?;
        let (a, b) = recovered(dir.path())?;
        assert_eq!(a.as_deref(), Some(&b"1"[..]));
        assert_eq!(b, None);
        Ok(())
    }
}
