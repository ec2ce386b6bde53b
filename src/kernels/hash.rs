//! `hash`, `hashMany`, `hashFile` and the streaming hasher; see `corepool_core::kernels::hash`.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Either, Uint8ArraySlice};
use napi_derive::napi;

use corepool_core::kernels::hash::{
    hash_bytes, hash_file, hash_filling, hash_packed, Algorithm, Filling, Packed, Stream, CHUNK,
    PIPELINE_MIN,
};

use crate::buffers::{to_vec, JsBytes};
use crate::error::{js_error, CodedError, ErrorCode};
use crate::pool::binding::{NativePool, RawValue, TaskArgs};
use crate::pool::scheduler::TaskCtx;

/// Native `hash`; see `lib/kernels.js`.
#[napi(js_name = "hash")]
pub fn hash_task(
    pool: &NativePool,
    algorithm: String,
    data: JsBytes,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    let algorithm = Algorithm::parse(&algorithm);
    if let (Either::B(slice), true) = (&data, algorithm.is_ok()) {
        if slice.len() >= PIPELINE_MIN {
            // The copy overlaps the hash (see `Filling`).
            let filling = Filling::new(slice.len());
            let input = Arc::clone(&filling);
            let job = algorithm.map(|a| move |ctx: &TaskCtx| hash_filling(a, &input, ctx));
            let promise = pool.submit_task(task, job)?;
            for chunk in slice.chunks(CHUNK) {
                filling.append(chunk);
            }
            return Ok(promise);
        }
    }
    let job = algorithm.map(|a| {
        let data = to_vec(data);
        move |ctx: &TaskCtx| hash_bytes(a, &data, ctx)
    });
    pool.submit_task(task, job)
}

/// Native `hashMany`: `items` are `Uint8Array`s (the JS wrapper turns strings into Buffers),
/// copied back to back into one recycled buffer while the pool thread already hashes them.
/// Resolves to one `Buffer` holding every digest. (Measured: reading the array here costs less
/// than packing it in JS.)
#[napi(js_name = "hashMany")]
pub fn hash_many_array_task(
    pool: &NativePool,
    algorithm: String,
    items: Vec<Uint8ArraySlice>,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    let algorithm = Algorithm::parse(&algorithm);
    let copy = algorithm.is_ok();
    let mut offsets = Vec::with_capacity(items.len() + 1);
    offsets.push(0);
    for item in &items {
        offsets.push(offsets[offsets.len() - 1] + item.len());
    }
    let data = Filling::new(if copy { offsets[items.len()] } else { 0 });
    let packed = Packed {
        data: Arc::clone(&data),
        offsets,
    };
    let job = algorithm.map(|a| move |ctx: &TaskCtx| hash_packed(a, &packed, ctx));
    let promise = pool.submit_task(task, job)?;
    if copy {
        for item in &items {
            data.append(item);
        }
    }
    Ok(promise)
}

/// Native `hashFile`.
#[napi(js_name = "hashFile")]
pub fn hash_file_task(
    pool: &NativePool,
    algorithm: String,
    path: String,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    let job = Algorithm::parse(&algorithm).map(|a| move |ctx: &TaskCtx| hash_file(a, &path, ctx));
    pool.submit_task(task, job)
}

/// The native half of a streaming hasher (`createHasher`).
#[napi]
pub struct NativeHasher {
    stream: Arc<Stream>,
}

#[napi]
impl NativeHasher {
    /// Throws for an unknown algorithm (the JS wrapper validates first).
    #[napi(constructor)]
    pub fn new(algorithm: String) -> std::result::Result<Self, CodedError> {
        let algorithm = Algorithm::parse(&algorithm)
            .map_err(|message| js_error(ErrorCode::InvalidArg, message))?;
        Ok(NativeHasher {
            stream: Arc::new(Stream::new(algorithm)),
        })
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
#[napi(js_name = "hasherUpdate")]
pub fn hasher_update_task(
    pool: &NativePool,
    hasher: &NativeHasher,
    data: JsBytes,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    hasher.stream.push(to_vec(data));
    let stream = Arc::clone(&hasher.stream);
    pool.submit_task(task, Ok(move |ctx: &TaskCtx| stream.drain(ctx)))
}
