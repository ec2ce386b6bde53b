//! Hash kernels: one-shot `hash`, batched `hashMany`, a streaming hasher and `hashFile`.
//!
//! Digests are the algorithms' canonical byte strings (big-endian for the xxHash family, as in
//! the reference implementation's canonical representation).

use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::Digest;

use crate::buffers::{buffer_for, recycle, Input};
use crate::error::ErrorCode;
use crate::pool::scheduler::{TaskCtx, TaskError};
use crate::sync::lock;

/// Bytes hashed between two cancel checks.
pub const CHUNK: usize = 1 << 20;
/// Most items in a `hashMany` batch: the unit that one thread claims, hashes once the copy has
/// passed its end, and follows with a cancel check.
const BATCH_ITEMS: usize = 64;
/// A batch ends after the item that brings it to this many bytes, so that a batch stays short
/// (threads share large items evenly, and a helper soon leaves for a queued task).
const BATCH_BYTES: usize = 256 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
    Sha1,
    Md5,
    Blake3,
    Xxh3_64,
    Xxh3_128,
    Xxh64,
}

impl Algorithm {
    pub const NAMES: &'static str = "sha256, sha512, sha1, md5, blake3, xxh3-64, xxh3-128, xxh64";

    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "sha1" => Algorithm::Sha1,
            "md5" => Algorithm::Md5,
            "blake3" => Algorithm::Blake3,
            "xxh3-64" => Algorithm::Xxh3_64,
            "xxh3-128" => Algorithm::Xxh3_128,
            "xxh64" => Algorithm::Xxh64,
            _ => {
                return Err(format!(
                    "algorithm must be one of {}, got {name:?}",
                    Self::NAMES
                ))
            }
        })
    }

    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 | Algorithm::Blake3 => 32,
            Algorithm::Sha512 => 64,
            Algorithm::Sha1 => 20,
            Algorithm::Md5 | Algorithm::Xxh3_128 => 16,
            Algorithm::Xxh3_64 | Algorithm::Xxh64 => 8,
        }
    }

    /// Digest of `data` in one call (no cancel checks: used for small items).
    pub fn digest_into(self, data: &[u8], out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + self.digest_len(), 0);
        self.digest_to(data, &mut out[at..]);
    }

    /// Digest of `data` in one call into `out`, which is `digest_len()` bytes long.
    pub fn digest_to(self, data: &[u8], out: &mut [u8]) {
        match self {
            Algorithm::Sha256 => out.copy_from_slice(&sha2::Sha256::digest(data)),
            Algorithm::Sha512 => out.copy_from_slice(&sha2::Sha512::digest(data)),
            Algorithm::Sha1 => out.copy_from_slice(&sha1::Sha1::digest(data)),
            Algorithm::Md5 => out.copy_from_slice(&md5::Md5::digest(data)),
            Algorithm::Blake3 => out.copy_from_slice(blake3::hash(data).as_bytes()),
            Algorithm::Xxh3_64 => {
                out.copy_from_slice(&xxhash_rust::xxh3::xxh3_64(data).to_be_bytes())
            }
            Algorithm::Xxh3_128 => {
                out.copy_from_slice(&xxhash_rust::xxh3::xxh3_128(data).to_be_bytes())
            }
            Algorithm::Xxh64 => {
                out.copy_from_slice(&xxhash_rust::xxh64::xxh64(data, 0).to_be_bytes())
            }
        }
    }
}

/// An incremental hasher of any supported algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Blake3(Box<blake3::Hasher>),
    Xxh3_64(Box<xxhash_rust::xxh3::Xxh3>),
    Xxh3_128(Box<xxhash_rust::xxh3::Xxh3>),
    Xxh64(xxhash_rust::xxh64::Xxh64),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            Algorithm::Blake3 => Hasher::Blake3(Box::default()),
            Algorithm::Xxh3_64 => Hasher::Xxh3_64(Box::default()),
            Algorithm::Xxh3_128 => Hasher::Xxh3_128(Box::default()),
            Algorithm::Xxh64 => Hasher::Xxh64(xxhash_rust::xxh64::Xxh64::new(0)),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
            Hasher::Blake3(h) => {
                h.update(data);
            }
            Hasher::Xxh3_64(h) | Hasher::Xxh3_128(h) => h.update(data),
            Hasher::Xxh64(h) => h.update(data),
        }
    }

    /// Feeds `data` in chunks, checking for cancellation between them.
    pub fn update_checked(&mut self, data: &[u8], ctx: &TaskCtx) -> Result<(), TaskError> {
        for chunk in data.chunks(CHUNK) {
            ctx.check()?;
            self.update(chunk);
        }
        Ok(())
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Blake3(h) => h.finalize().as_bytes().to_vec(),
            Hasher::Xxh3_64(h) => h.digest().to_be_bytes().to_vec(),
            Hasher::Xxh3_128(h) => h.digest128().to_be_bytes().to_vec(),
            Hasher::Xxh64(h) => h.digest().to_be_bytes().to_vec(),
        }
    }
}

/// Digest of one buffer, cancellable between 1 MiB chunks.
pub fn hash_bytes(algorithm: Algorithm, data: &[u8], ctx: &TaskCtx) -> Result<Vec<u8>, TaskError> {
    if data.len() <= CHUNK {
        let mut out = Vec::with_capacity(algorithm.digest_len());
        algorithm.digest_into(data, &mut out);
        return Ok(out);
    }
    let mut hasher = Hasher::new(algorithm);
    hasher.update_checked(data, ctx)?;
    Ok(hasher.finish())
}

/// Items copied back to back into a [`Filling`]: item `i` is `offsets[i]..offsets[i + 1]`.
pub struct Packed {
    pub data: Arc<Filling>,
    pub offsets: Vec<usize>,
}

impl Packed {
    /// The number of items.
    pub fn count(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// Where the batches of a `hashMany` call start, by item, and where the last one ends: up to
/// [`BATCH_ITEMS`] items each, ending early once a batch reaches [`BATCH_BYTES`].
fn batches(offsets: &[usize]) -> Vec<usize> {
    let n = offsets.len() - 1;
    let mut starts = vec![0];
    let mut first = 0;
    for i in 1..=n {
        if i - first == BATCH_ITEMS || offsets[i] - offsets[first] >= BATCH_BYTES || i == n {
            starts.push(i);
            first = i;
        }
    }
    starts
}

/// The digests of every item, concatenated (`digest_len` bytes each), computed while the items
/// are still being copied in: the items are cut into short batches (see [`batches`]), each
/// hashed once the copy has passed its end, and the batches are shared through
/// [`TaskCtx::parallel`] by the task's pool thread and the idle threads of its pool (never
/// more threads than the pool has). Each batch's digests land in their own part of the result,
/// so the order is the items' whichever thread hashed them.
pub fn hash_packed(
    algorithm: Algorithm,
    items: &Packed,
    ctx: &TaskCtx,
) -> Result<Vec<u8>, TaskError> {
    let len = algorithm.digest_len();
    let n = items.count();
    let bounds = batches(&items.offsets);
    let mut out = vec![0u8; n * len];
    let mut parts = Vec::with_capacity(bounds.len() - 1);
    let mut rest = &mut out[..];
    for w in bounds.windows(2) {
        let (head, tail) = rest.split_at_mut((w[1] - w[0]) * len);
        parts.push(Mutex::new(head));
        rest = tail;
    }
    ctx.parallel(parts.len(), &|b| {
        let (first, last) = (bounds[b], bounds[b + 1]);
        let ready = items.data.wait_for(items.offsets[last], ctx)?;
        // Claimed by one thread only: the lock is never contended.
        let mut digests = lock(&parts[b]);
        for (i, digest) in (first..last).zip(digests.chunks_exact_mut(len)) {
            let data = &ready[items.offsets[i]..items.offsets[i + 1]];
            if data.len() > CHUNK {
                digest.copy_from_slice(&hash_bytes(algorithm, data, ctx)?);
            } else {
                algorithm.digest_to(data, digest);
            }
        }
        Ok(())
    })?;
    drop(parts);
    Ok(out)
}

/// Digest of a file read in 1 MiB chunks (never loaded whole).
pub fn hash_file(algorithm: Algorithm, path: &str, ctx: &TaskCtx) -> Result<Vec<u8>, TaskError> {
    let io_error = |e: std::io::Error| {
        TaskError::failed(
            ErrorCode::InvalidArg,
            format!("cannot read {path:?}: {e} ({:?})", e.kind()),
        )
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; CHUNK];
    loop {
        ctx.check()?;
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

/// Inputs at least this large are copied and hashed as a pipeline (see [`Filling`]).
pub const PIPELINE_MIN: usize = 4 << 20;

/// A private copy that the JS thread is still filling while a pool thread already hashes its
/// prefix: the copy (which must finish on the JS thread, before the call returns, so JS can
/// never touch memory a task reads) then overlaps the hash instead of preceding it.
pub struct Filling {
    /// Owns the memory; not accessed again until `drop` (only through `ptr` meanwhile).
    buf: Vec<u8>,
    ptr: *mut u8,
    len: usize,
    /// Bytes written so far: only the writer stores it (Release), readers load it (Acquire).
    copied: AtomicUsize,
}

// SAFETY: the single writer (the JS thread, in `append`) only writes bytes at or after
// `copied`, readers only read bytes before it, and `copied` is published with Release/Acquire,
// so no byte is ever accessed by two threads at once; `buf` owns the memory and is only
// touched again in `drop`, when no other reference exists.
unsafe impl Send for Filling {}
// SAFETY: as above.
unsafe impl Sync for Filling {}

impl Filling {
    pub fn new(len: usize) -> Arc<Self> {
        let mut buf = buffer_for(len);
        let ptr = buf.as_mut_ptr();
        Arc::new(Filling {
            buf,
            ptr,
            len,
            copied: AtomicUsize::new(0),
        })
    }

    /// Appends `src`; called by one thread only. Panics past `len` (a bug, never input).
    pub fn append(&self, src: &[u8]) {
        let at = self.copied.load(Ordering::Relaxed);
        assert!(src.len() <= self.len - at, "Filling overflow");
        // SAFETY: `buf` has capacity >= `len` (from `buffer_for`), so `at..at + src.len()` is
        // inside the allocation; no reader touches bytes at or after `copied`.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(at), src.len()) };
        self.copied.store(at + src.len(), Ordering::Release);
    }

    /// The bytes written so far once there are at least `end` of them (cancellable wait).
    pub fn wait_for(&self, end: usize, ctx: &TaskCtx) -> Result<&[u8], TaskError> {
        loop {
            let ready = self.ready();
            if ready.len() >= end {
                return Ok(ready);
            }
            ctx.check()?;
            std::thread::yield_now();
        }
    }

    /// The bytes written so far.
    pub fn ready(&self) -> &[u8] {
        let n = self.copied.load(Ordering::Acquire);
        // SAFETY: the first `n` bytes were initialised by `append` before `copied` was released
        // and are never written again.
        unsafe { std::slice::from_raw_parts(self.ptr, n) }
    }
}

impl Drop for Filling {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.buf));
    }
}

/// Hashes a [`Filling`] as its bytes arrive, checking for cancellation between chunks.
pub fn hash_filling(
    algorithm: Algorithm,
    input: &Filling,
    ctx: &TaskCtx,
) -> Result<Vec<u8>, TaskError> {
    let mut hasher = Hasher::new(algorithm);
    let mut done = 0;
    while done < input.len {
        let ready = input.ready();
        if ready.len() > done {
            hasher.update_checked(&ready[done..], ctx)?;
            done = ready.len();
        } else {
            ctx.check()?;
            std::thread::yield_now();
        }
    }
    Ok(hasher.finish())
}

/// A streaming hasher's state. `update` queues a copy of its chunk here and submits a task that
/// drains the queue in order under the lock, so chunks are hashed in call order whichever pool
/// thread runs first; a task whose chunk another task already drained just waits for the lock.
struct StreamState {
    hasher: Option<Hasher>,
    pending: std::collections::VecDeque<Input>,
    /// The first failure (cancel, timeout): the hasher is unusable afterwards.
    error: Option<TaskError>,
}

/// A streaming hasher (`createHasher`): chunks are queued with [`Stream::push`] and hashed in
/// call order by [`Stream::drain`] on whichever pool thread runs first.
pub struct Stream {
    state: Mutex<StreamState>,
}

impl Stream {
    pub fn new(algorithm: Algorithm) -> Self {
        Stream {
            state: Mutex::new(StreamState {
                hasher: Some(Hasher::new(algorithm)),
                pending: Default::default(),
                error: None,
            }),
        }
    }

    /// Queues a chunk; a task then calls [`Stream::drain`].
    pub fn push(&self, chunk: Input) {
        lock(&self.state).pending.push_back(chunk);
    }

    /// Hashes every queued chunk, in order; the first failure makes the stream unusable.
    pub fn drain(&self, ctx: &TaskCtx) -> Result<(), TaskError> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        if let Some(e) = &state.error {
            return Err(e.clone());
        }
        while let Some(chunk) = state.pending.pop_front() {
            let result = match state.hasher.as_mut() {
                Some(hasher) => hasher.update_checked(&chunk, ctx),
                None => Err(TaskError::failed(
                    ErrorCode::InvalidState,
                    "the hasher was already finished by digest()",
                )),
            };
            if let Err(e) = result {
                state.error = Some(e.clone());
                state.pending.clear();
                state.hasher = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The digest of everything hashed so far; the stream cannot be used afterwards. `None`
    /// when it was already finished or failed, or chunks are still queued (it never waits).
    pub fn finish(&self) -> Option<Vec<u8>> {
        let mut state = lock(&self.state);
        if state.error.is_some() || !state.pending.is_empty() {
            return None;
        }
        Some(state.hasher.take()?.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn one(alg: &str, data: &[u8]) -> String {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        hex(&hash_bytes(Algorithm::parse(alg).unwrap(), data, &ctx).unwrap())
    }

    #[test]
    fn known_vectors() {
        assert_eq!(
            one("sha256", b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            one("sha1", b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(one("md5", b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            one("blake3", b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(one("xxh64", b""), "ef46db3751d8e999");
        assert_eq!(one("xxh3-64", b""), "2d06800538d394c2");
        assert_eq!(one("xxh3-128", b""), "99aa06d3014798d86001c324468d497f");
    }

    #[test]
    fn chunked_equals_one_shot() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i * 31 % 251) as u8).collect();
        for name in Algorithm::NAMES.split(", ") {
            let alg = Algorithm::parse(name).unwrap();
            let mut want = Vec::new();
            alg.digest_into(&data, &mut want);
            assert_eq!(hash_bytes(alg, &data, &ctx).unwrap(), want, "{name}");
            assert_eq!(want.len(), alg.digest_len(), "{name}");
        }
    }

    #[test]
    fn packed_matches_individual() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let items: Vec<Vec<u8>> = (0..300).map(|i| vec![i as u8; i * 7]).collect();
        let mut offsets = vec![0];
        for item in &items {
            offsets.push(offsets[offsets.len() - 1] + item.len());
        }
        let data = Filling::new(offsets[items.len()]);
        let packed = Packed {
            data: Arc::clone(&data),
            offsets,
        };
        // The copy runs while the items are hashed, as in the binding.
        let alg = Algorithm::Sha256;
        let out = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| hash_packed(alg, &packed, &ctx).unwrap());
            for item in &items {
                std::thread::sleep(std::time::Duration::from_micros(20));
                data.append(item);
            }
            hashing.join().unwrap()
        });
        for (i, item) in items.iter().enumerate() {
            let mut want = Vec::new();
            alg.digest_into(item, &mut want);
            assert_eq!(&out[i * 32..(i + 1) * 32], &want[..]);
        }
    }

    #[test]
    fn batches_cover_every_item_in_short_groups() {
        let offsets_of = |sizes: &[usize]| {
            let mut offsets = vec![0];
            for size in sizes {
                offsets.push(offsets[offsets.len() - 1] + size);
            }
            offsets
        };
        assert_eq!(batches(&[0]), vec![0], "no items: no batch");
        assert_eq!(batches(&offsets_of(&[0])), vec![0, 1]);
        assert_eq!(batches(&offsets_of(&[10; 130])), vec![0, 64, 128, 130]);
        // A large item ends its batch; so does the one that brings a batch to BATCH_BYTES.
        let sizes = [1, CHUNK + 1, 0, 0, BATCH_BYTES / 2, BATCH_BYTES / 2, 3];
        assert_eq!(batches(&offsets_of(&sizes)), vec![0, 2, 6, 7]);
    }

    #[test]
    fn streaming_in_order() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let stream = Stream::new(Algorithm::Sha256);
        stream.push(Input::copy_of(b"a"));
        stream.push(Input::copy_of(b"b"));
        stream.drain(&ctx).unwrap();
        stream.push(Input::copy_of(b"c"));
        assert_eq!(stream.finish(), None, "a chunk is still queued");
        stream.drain(&ctx).unwrap();
        stream.drain(&ctx).unwrap();
        let digest = stream.finish().unwrap();
        assert_eq!(hex(&digest), one("sha256", b"abc"));
        assert_eq!(stream.finish(), None, "finished once");
    }

    #[test]
    fn filling_is_hashed_while_it_is_written() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let data: Vec<u8> = (0..(5 * CHUNK + 123)).map(|i| (i % 253) as u8).collect();
        let want = one("sha256", &data);
        let filling = Filling::new(data.len());
        let reader = Arc::clone(&filling);
        let worker = std::thread::spawn(move || {
            let ctx = crate::pool::scheduler::tests_support::ctx();
            hash_filling(Algorithm::Sha256, &reader, &ctx).unwrap()
        });
        for chunk in data.chunks(4096) {
            filling.append(chunk);
        }
        assert_eq!(hex(&worker.join().unwrap()), want);
        // Complete before the reader starts, too.
        let filled = Filling::new(data.len());
        filled.append(&data);
        assert_eq!(
            hex(&hash_filling(Algorithm::Sha256, &filled, &ctx).unwrap()),
            want
        );
    }

    #[test]
    fn unknown_algorithm() {
        assert!(Algorithm::parse("sha3").is_err());
    }
}
