//! `hash`, `hashMany`, `hashFile` and the streaming hasher; see `corepool_core::kernels::hash`.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Either, Uint8ArraySlice};
use napi_derive::napi;

use corepool_core::kernels::hash::{
    hash_bytes, hash_file, hash_filling, hash_packed, Algorithm, Filling, Packed, Stream, CHUNK,
    PIPELINE_MIN,
};

use crate::buffers::{to_vec, JsBytes};
use crate::pool::binding::{NativePool, RawValue, TaskOptions};
use crate::pool::scheduler::TaskCtx;

/// A hash algorithm.
#[napi(string_enum)]
pub enum HashAlgorithm {
    #[napi(value = "sha256")]
    Sha256,
    #[napi(value = "sha512")]
    Sha512,
    #[napi(value = "sha1")]
    Sha1,
    #[napi(value = "md5")]
    Md5,
    #[napi(value = "blake3")]
    Blake3,
    #[napi(value = "xxh3-64")]
    Xxh3_64,
    #[napi(value = "xxh3-128")]
    Xxh3_128,
    #[napi(value = "xxh64")]
    Xxh64,
}

impl From<HashAlgorithm> for Algorithm {
    fn from(a: HashAlgorithm) -> Self {
        match a {
            HashAlgorithm::Sha256 => Algorithm::Sha256,
            HashAlgorithm::Sha512 => Algorithm::Sha512,
            HashAlgorithm::Sha1 => Algorithm::Sha1,
            HashAlgorithm::Md5 => Algorithm::Md5,
            HashAlgorithm::Blake3 => Algorithm::Blake3,
            HashAlgorithm::Xxh3_64 => Algorithm::Xxh3_64,
            HashAlgorithm::Xxh3_128 => Algorithm::Xxh3_128,
            HashAlgorithm::Xxh64 => Algorithm::Xxh64,
        }
    }
}

/// Native `hash`; see `lib/kernels.js`.
#[napi(js_name = "hash", ts_return_type = "Promise<Buffer>")]
pub fn hash_task(
    pool: &NativePool,
    algorithm: HashAlgorithm,
    #[napi(ts_arg_type = "string | Uint8Array")] data: JsBytes,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let algorithm = Algorithm::from(algorithm);
    if let Either::B(slice) = &data {
        if slice.len() >= PIPELINE_MIN {
            // The copy overlaps the hash (see `Filling`).
            let filling = Filling::new(slice.len());
            let input = Arc::clone(&filling);
            let job = move |ctx: &TaskCtx| hash_filling(algorithm, &input, ctx);
            let promise = pool.submit_task(task, Ok(job))?;
            for chunk in slice.chunks(CHUNK) {
                filling.append(chunk);
            }
            return Ok(promise);
        }
    }
    let data = to_vec(data);
    let job = move |ctx: &TaskCtx| hash_bytes(algorithm, &data, ctx);
    pool.submit_task(task, Ok(job))
}

/// Native `hashMany`: `items` are `Uint8Array`s (the JS wrapper turns strings into Buffers),
/// copied back to back into one recycled buffer while the task's pool thread, and idle threads
/// of the same pool, already hash them (see `hash_packed`).
/// Resolves to one `Buffer` holding every digest. (Measured: reading the array here costs less
/// than packing it in JS.)
#[napi(js_name = "hashMany", ts_return_type = "Promise<Buffer>")]
pub fn hash_many_array_task(
    pool: &NativePool,
    algorithm: HashAlgorithm,
    items: Vec<Uint8ArraySlice>,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let algorithm = Algorithm::from(algorithm);
    let mut offsets = Vec::with_capacity(items.len() + 1);
    offsets.push(0);
    for item in &items {
        offsets.push(offsets[offsets.len() - 1] + item.len());
    }
    let data = Filling::new(offsets[items.len()]);
    let packed = Packed {
        data: Arc::clone(&data),
        offsets,
    };
    let job = move |ctx: &TaskCtx| hash_packed(algorithm, &packed, ctx);
    let promise = pool.submit_task(task, Ok(job))?;
    for item in &items {
        data.append(item);
    }
    Ok(promise)
}

/// Native `hashFile`.
#[napi(js_name = "hashFile", ts_return_type = "Promise<Buffer>")]
pub fn hash_file_task(
    pool: &NativePool,
    algorithm: HashAlgorithm,
    path: String,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let algorithm = Algorithm::from(algorithm);
    let job = move |ctx: &TaskCtx| hash_file(algorithm, &path, ctx);
    pool.submit_task(task, Ok(job))
}

/// The native half of a streaming hasher (`createHasher`).
#[napi]
pub struct NativeHasher {
    stream: Arc<Stream>,
}

#[napi]
impl NativeHasher {
    #[napi(constructor)]
    pub fn new(algorithm: HashAlgorithm) -> Self {
        NativeHasher {
            stream: Arc::new(Stream::new(algorithm.into())),
        }
    }

    /// The digest of everything hashed so far; the hasher cannot be used afterwards.
    /// Returns `null` when it was already finished or failed. Call it only once every update
    /// has settled (it never waits).
    #[napi]
    pub fn finish(&self) -> Option<Buffer> {
        self.stream.finish().map(Buffer::from)
    }
}

/// Native `hasherUpdate`: queues a copy of `data` and hashes the queue on the pool.
#[napi(js_name = "hasherUpdate", ts_return_type = "Promise<void>")]
pub fn hasher_update_task(
    pool: &NativePool,
    hasher: &NativeHasher,
    #[napi(ts_arg_type = "string | Uint8Array")] data: JsBytes,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    hasher.stream.push(to_vec(data));
    let stream = Arc::clone(&hasher.stream);
    pool.submit_task(task, Ok(move |ctx: &TaskCtx| stream.drain(ctx)))
}
