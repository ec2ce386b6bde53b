//! The thin napi layer over counter regions, used by `lib/counters.js`.
//!
//! Counter operations themselves run in JS on a `BigInt64Array` over the region (an external
//! array buffer over this object's own mapping): a call into native code would cost more than
//! the atomic add. Native code creates, opens and validates regions, wakes waiters and waits.

use crate::sync::lock;
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use super::layout::{Kind, SlotSpec, SLOT_STRIDE, WAITERS_OFFSET};
use super::region::{Region, RegionError, View, WaitCondition, WaitOutcome};
use super::Counters;
use crate::error::{check, js_error, napi_failure, Code, CodedError, ErrorCode};
use crate::values::RawValue;
use corepool_core::pool::timer::{self, millis};

fn to_js(e: RegionError) -> CodedError {
    match e {
        RegionError::Shm(m) => js_error(ErrorCode::Shm, m),
        RegionError::InvalidArg(m) => js_error(ErrorCode::InvalidArg, m),
    }
}

/// A slot's kind, as JS names it (the region stores `Kind`).
#[napi(string_enum)]
pub enum SlotKind {
    #[napi(value = "counter")]
    Counter,
    #[napi(value = "gauge")]
    Gauge,
    #[napi(value = "histogram")]
    Histogram,
    /// A gauge with one value per process, summed on read.
    #[napi(value = "processGauge")]
    ProcessGauge,
}

impl From<SlotKind> for Kind {
    fn from(k: SlotKind) -> Kind {
        match k {
            SlotKind::Counter => Kind::Counter,
            SlotKind::Gauge => Kind::Gauge,
            SlotKind::Histogram => Kind::Histogram,
            SlotKind::ProcessGauge => Kind::ProcessGauge,
        }
    }
}

impl From<Kind> for SlotKind {
    fn from(k: Kind) -> SlotKind {
        match k {
            Kind::Counter => SlotKind::Counter,
            Kind::Gauge => SlotKind::Gauge,
            Kind::Histogram => SlotKind::Histogram,
            Kind::ProcessGauge => SlotKind::ProcessGauge,
        }
    }
}

/// One slot of a new region: its name, kind and, for a histogram, its upper bounds.
#[napi(object)]
pub struct SlotDefinition {
    pub name: String,
    pub kind: SlotKind,
    /// A histogram's upper bounds; absent for the other kinds.
    pub buckets: Option<Vec<f64>>,
}

impl From<SlotDefinition> for SlotSpec {
    fn from(d: SlotDefinition) -> SlotSpec {
        SlotSpec {
            name: d.name,
            kind: d.kind.into(),
            buckets: d.buckets.unwrap_or_default(),
        }
    }
}

/// What `wait` waits for: the slot's value at least the operand, or different from it.
#[napi(string_enum)]
pub enum WaitMode {
    #[napi(value = "atLeast")]
    AtLeast,
    #[napi(value = "notEqual")]
    NotEqual,
}

type Waits = Arc<Mutex<HashMap<u32, (usize, Arc<AtomicBool>)>>>;

/// The native half of `SharedCounters`: one mapping of a region.
#[napi]
pub struct NativeCounters {
    view: Arc<View>,
    waits: Waits,
}

impl NativeCounters {
    fn from_region(region: Arc<Region>) -> napi::Result<NativeCounters, Code> {
        Ok(NativeCounters {
            view: Arc::new(region.view().map_err(to_js)?),
            waits: Arc::default(),
        })
    }

    /// The region this object maps (for other modules that keep counts in it).
    pub fn region(&self) -> &Arc<Region> {
        self.view.region()
    }

    fn index(&self, index: u32) -> napi::Result<usize, Code> {
        let i = index as usize;
        if i < self.view.len() {
            Ok(i)
        } else {
            Err(js_error(
                ErrorCode::InvalidArg,
                format!("counter index {index} out of range"),
            ))
        }
    }
}

#[napi]
impl NativeCounters {
    /// A new anonymous region (this process only).
    #[napi(factory)]
    pub fn anonymous(
        slots: Vec<SlotDefinition>,
        processes: u32,
    ) -> napi::Result<NativeCounters, Code> {
        let slots = slots.into_iter().map(SlotSpec::from).collect();
        Self::from_region(Region::anonymous_with(slots, processes as usize).map_err(to_js)?)
    }

    /// Reopens an anonymous region of this process by id.
    #[napi(factory)]
    pub fn from_anonymous_id(id: f64) -> napi::Result<NativeCounters, Code> {
        let region = Region::find_anonymous(id as u64).ok_or_else(|| {
            js_error(
                ErrorCode::Shm,
                "the anonymous region of this handle no longer exists in this process \
                 (anonymous regions live while a SharedCounters over them is alive, in the \
                 process that created them)",
            )
        })?;
        Self::from_region(region)
    }

    /// Opens (or with `create`, creates) a named region in /dev/shm.
    #[napi(factory)]
    pub fn open(
        name: String,
        slots: Option<Vec<SlotDefinition>>,
        create: bool,
        processes: u32,
    ) -> napi::Result<NativeCounters, Code> {
        let slots = slots.map(|s| s.into_iter().map(SlotSpec::from).collect());
        Self::from_region(
            Region::open_with(&name, slots, create, processes as usize).map_err(to_js)?,
        )
    }

    /// Removes a named region; false if it did not exist.
    #[napi]
    pub fn unlink(name: String) -> napi::Result<bool, Code> {
        Region::unlink(&name).map_err(to_js)
    }

    /// Slot names, in slot order.
    #[napi(getter)]
    pub fn names(&self) -> Vec<String> {
        self.view
            .layout()
            .slots
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// Per slot: its kind.
    #[napi(getter)]
    pub fn kinds(&self) -> Vec<SlotKind> {
        self.view
            .layout()
            .slots
            .iter()
            .map(|s| s.kind.into())
            .collect()
    }

    /// Per slot: a histogram's upper bounds (empty for other kinds).
    #[napi(getter)]
    pub fn buckets(&self) -> Vec<Vec<f64>> {
        self.view
            .layout()
            .slots
            .iter()
            .map(|s| s.buckets.clone())
            .collect()
    }

    /// Per slot: byte offset of its data (histogram counts, per-process values) from the start
    /// of `buffer()`; 0 for counters and gauges.
    #[napi(getter)]
    pub fn data_offsets(&self) -> Vec<u32> {
        let layout = self.view.layout();
        layout
            .data
            .iter()
            .map(|&d| {
                if d == 0 {
                    0
                } else {
                    (d - layout.header_len) as u32
                }
            })
            .collect()
    }

    /// Entries of the process table (0 without per-process gauges).
    #[napi(getter)]
    pub fn processes(&self) -> u32 {
        self.view.layout().processes as u32
    }

    /// This process's entry of the process table (claimed on first call) with worker tag
    /// `tag` (worker id + 1, or 0).
    #[napi]
    pub fn claim_process(&self, tag: u32) -> napi::Result<u32, Code> {
        Ok(self.view.claim_process(tag).map_err(to_js)? as u32)
    }

    /// Gives up this process's entry of the process table.
    #[napi]
    pub fn release_process(&self, entry: u32) {
        if (entry as usize) < self.view.layout().processes {
            self.view.release_process(entry as usize);
        }
    }

    /// The live entries of the process table, flattened: entry, pid, tag, entry, pid, tag, ...
    #[napi]
    pub fn live_processes(&self) -> Vec<u32> {
        self.view
            .live_processes()
            .into_iter()
            .flat_map(|e| [e.entry as u32, e.pid, e.tag])
            .collect()
    }

    /// Bytes from one slot to the next.
    #[napi(getter)]
    pub fn stride(&self) -> u32 {
        SLOT_STRIDE as u32
    }

    /// Byte offset of a slot's waiter count (a 32-bit word) from the slot's start.
    #[napi(getter)]
    pub fn waiters_offset(&self) -> u32 {
        WAITERS_OFFSET as u32
    }

    /// The region's name, or null for an anonymous region.
    #[napi(getter)]
    pub fn region_name(&self) -> Option<String> {
        self.view.region().name().map(str::to_owned)
    }

    /// The process-local id of an anonymous region (null for a named one).
    #[napi(getter)]
    pub fn anonymous_id(&self) -> Option<f64> {
        let region = self.view.region();
        region.name().is_none().then(|| region.anon_id() as f64)
    }

    /// An ArrayBuffer over the slots (not the header) of this object's mapping. It keeps the
    /// mapping alive until it is garbage collected.
    #[napi(ts_return_type = "ArrayBuffer")]
    pub fn buffer(&self, env: Env) -> napi::Result<RawValue> {
        let offset = self.view.layout().header_len;
        let len = self.view.mapping().len() - offset;
        // SAFETY: `offset < len` of the mapping, so the pointer stays inside it.
        let data = unsafe { self.view.mapping().as_ptr().add(offset) };
        let hint = Box::into_raw(Box::new(Arc::clone(&self.view)));
        let mut value = ptr::null_mut();
        // SAFETY: `data..data+len` lies in a mapping owned by the `Arc<View>` passed as the
        // finalize hint, which is released only by `release_view` when V8 frees the buffer.
        // This object's mapping is its own (see `region.rs`), so no other buffer shares `data`.
        let status = unsafe {
            sys::napi_create_external_arraybuffer(
                env.raw(),
                data.cast(),
                len,
                Some(release_view),
                hint.cast(),
                &mut value,
            )
        };
        if let Err(e) = check(status) {
            // SAFETY: the buffer was not created, so the hint was not handed to V8.
            drop(unsafe { Box::from_raw(hint) });
            return Err(e);
        }
        Ok(RawValue(value))
    }

    /// Wakes the waiters of slot `index` (JS calls it after a write when the slot's waiter
    /// count is non-zero).
    #[napi]
    pub fn wake(&self, index: u32) -> napi::Result<(), Code> {
        self.view.wake(self.index(index)?);
        Ok(())
    }

    /// Waits on a native thread until slot `index` is >= `operand` (`atLeast`) or != `operand`
    /// (`notEqual`). Resolves with the value, or null on timeout or after `cancelWait(key)`.
    /// No `timeout_ms`: no time limit. The pending promise keeps Node alive.
    #[napi(ts_return_type = "Promise<bigint | null>")]
    pub fn wait(
        &self,
        env: Env,
        index: u32,
        mode: WaitMode,
        operand: BigInt,
        timeout_ms: Option<f64>,
        key: u32,
    ) -> napi::Result<RawValue, Code> {
        let index = self.index(index)?;
        let (operand, lossless) = operand.get_i64();
        if !lossless {
            return Err(js_error(
                ErrorCode::InvalidArg,
                "wait operand out of 64-bit range",
            ));
        }
        let condition = match mode {
            WaitMode::AtLeast => WaitCondition::AtLeast(operand),
            WaitMode::NotEqual => WaitCondition::NotEqual(operand),
        };
        // A timeout too large to represent as a deadline is the same as none.
        let deadline = timeout_ms.and_then(millis).and_then(timer::deadline);
        let cancel = Arc::new(AtomicBool::new(false));
        lock(&self.waits).insert(key, (index, Arc::clone(&cancel)));
        let (deferred, promise) = env.create_deferred().map_err(napi_failure)?;
        let view = Arc::clone(&self.view);
        let waits = Arc::clone(&self.waits);
        let spawned = std::thread::Builder::new()
            .name("corepool-wait".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let outcome = view.wait(index, condition, deadline, &cancel);
                lock(&waits).remove(&key);
                deferred.resolve(move |_env| {
                    Ok(match outcome {
                        WaitOutcome::Satisfied(v) => Some(BigInt::from(v)),
                        WaitOutcome::TimedOut | WaitOutcome::Cancelled => None,
                    })
                });
            });
        if let Err(e) = spawned {
            lock(&self.waits).remove(&key);
            return Err(js_error(
                ErrorCode::System,
                format!("cannot start a waiting thread: {e}"),
            ));
        }
        Ok(RawValue(promise.raw()))
    }

    /// Cancels the wait registered under `key`; its promise resolves with null.
    #[napi]
    pub fn cancel_wait(&self, key: u32) {
        let entry = lock(&self.waits).get(&key).cloned();
        if let Some((index, cancel)) = entry {
            cancel.store(true, Ordering::SeqCst);
            self.view.wake(index);
        }
    }
}

impl Drop for NativeCounters {
    // Runs when the JS object is collected or its environment (e.g. a worker thread) shuts
    // down: waiting threads must not outlive it waiting for a change that may never come.
    fn drop(&mut self) {
        let waits: Vec<_> = lock(&self.waits).drain().map(|(_, w)| w).collect();
        for (index, cancel) in waits {
            cancel.store(true, Ordering::SeqCst);
            self.view.wake(index);
        }
    }
}

unsafe extern "C" fn release_view(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Box<Arc<View>>` leaked by `buffer`; V8 finalizes a buffer once.
    drop(unsafe { Box::from_raw(hint.cast::<Arc<View>>()) });
}

/// Test hook: `threads` Rust threads each add 1 to slot `index` `iterations` times through the
/// Rust-side [`Counters`] API. Resolves when all are done.
#[napi(js_name = "countersTestHammer", ts_return_type = "Promise<boolean>")]
pub fn counters_test_hammer(
    env: Env,
    counters: &NativeCounters,
    index: u32,
    threads: u32,
    iterations: f64,
) -> napi::Result<RawValue, Code> {
    let index = counters.index(index)?;
    if threads == 0 || threads > 64 || !(0.0..=1e10).contains(&iterations) {
        return Err(js_error(
            ErrorCode::InvalidArg,
            "threads must be 1..64 and iterations 0..1e10",
        ));
    }
    let iterations = iterations as u64;
    let mut workers = Vec::new();
    for _ in 0..threads {
        workers.push(Counters::new(counters.view.region()).map_err(to_js)?);
    }
    let (deferred, promise) = env.create_deferred().map_err(napi_failure)?;
    std::thread::spawn(move || {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|c| {
                std::thread::spawn(move || {
                    for _ in 0..iterations {
                        c.inc(index);
                    }
                })
            })
            .collect();
        let ok = handles.into_iter().all(|h| h.join().is_ok());
        deferred.resolve(move |_env| Ok(ok));
    });
    Ok(RawValue(promise.raw()))
}
