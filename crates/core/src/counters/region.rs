//! Shared-memory regions: creating, opening and mapping them, atomic slot operations and
//! native waiting (futex). No napi types here.
//!
//! A region is a file descriptor (a memfd for an anonymous region, a file in /dev/shm for a
//! named one) plus its validated [`Layout`]. Every user of a region maps it separately
//! ([`View`]): two JS objects over one region then never share a data pointer, which V8 does not
//! allow for external array buffers, and futexes still meet because Linux keys shared futexes
//! by the underlying page, not the address.

use crate::sync::lock;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::layout::{
    validate_region_name, validate_slots, Kind, Layout, Slot, SlotSpec, MAX_PROCESSES,
    PROCESS_ENTRY,
};

/// Where named regions live.
const SHM_DIR: &str = "/dev/shm";
/// Longest sleep of a waiter between two checks of its slot. Writes made through this module or
/// the JS methods wake waiters at once; raw writes (`Atomics.add` on `counters.array`, another
/// program) are seen within this interval.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Why a region could not be created, opened or validated (→ `ERR_SHM`), or why the caller's
/// arguments are wrong (→ `ERR_INVALID_ARG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionError {
    Shm(String),
    InvalidArg(String),
}

impl std::fmt::Display for RegionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegionError::Shm(m) | RegionError::InvalidArg(m) => f.write_str(m),
        }
    }
}

fn shm(message: impl Into<String>) -> RegionError {
    RegionError::Shm(message.into())
}

fn io_error(what: &str, e: &io::Error) -> RegionError {
    let name = match e.kind() {
        io::ErrorKind::NotFound => "ENOENT",
        io::ErrorKind::PermissionDenied => "EACCES",
        io::ErrorKind::AlreadyExists => "EEXIST",
        _ => "",
    };
    if name.is_empty() {
        shm(format!("{what}: {e}"))
    } else {
        shm(format!("{what}: {name} ({e})"))
    }
}

/// A region's file and layout, shared by all views of it in this process.
#[derive(Debug)]
pub struct Region {
    file: File,
    layout: Layout,
    /// `Some(name)` for a region in /dev/shm.
    name: Option<String>,
    /// Process-local id of an anonymous region (see [`Region::find_anonymous`]); 0 for named.
    anon_id: u64,
}

fn anonymous_registry() -> &'static Mutex<HashMap<u64, Weak<Region>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Weak<Region>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl Region {
    /// A new zeroed region private to this process (and its worker threads).
    pub fn anonymous(slots: Vec<SlotSpec>) -> Result<Arc<Region>, RegionError> {
        Region::anonymous_with(slots, super::layout::DEFAULT_PROCESSES)
    }

    /// [`Region::anonymous`] with a process table of `processes` entries.
    pub fn anonymous_with(
        slots: Vec<SlotSpec>,
        processes: usize,
    ) -> Result<Arc<Region>, RegionError> {
        validate_slots(&slots).map_err(RegionError::InvalidArg)?;
        check_processes(processes)?;
        let layout = Layout::with_processes(slots, processes);
        let file = memfd().map_err(|e| io_error("cannot create an anonymous region", &e))?;
        write_region(&file, &layout)
            .map_err(|e| io_error("cannot initialize an anonymous region", &e))?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let anon_id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let region = Arc::new(Region {
            file,
            layout,
            name: None,
            anon_id,
        });
        let mut registry = lock(anonymous_registry());
        registry.retain(|_, r| r.strong_count() > 0);
        registry.insert(anon_id, Arc::downgrade(&region));
        Ok(region)
    }

    /// The anonymous region `id` of this process, if something still holds it.
    pub fn find_anonymous(id: u64) -> Option<Arc<Region>> {
        lock(anonymous_registry()).get(&id).and_then(Weak::upgrade)
    }

    /// Opens the named region, creating it with `slots` if `create` is set and it does not
    /// exist. When `slots` is given, an existing region must have exactly these slots.
    pub fn open(
        name: &str,
        slots: Option<Vec<SlotSpec>>,
        create: bool,
    ) -> Result<Arc<Region>, RegionError> {
        Region::open_with(name, slots, create, super::layout::DEFAULT_PROCESSES)
    }

    /// [`Region::open`]; a region it creates gets a process table of `processes` entries.
    pub fn open_with(
        name: &str,
        slots: Option<Vec<SlotSpec>>,
        create: bool,
        processes: usize,
    ) -> Result<Arc<Region>, RegionError> {
        validate_region_name(name).map_err(shm)?;
        check_processes(processes)?;
        if let Some(slots) = &slots {
            validate_slots(slots).map_err(RegionError::InvalidArg)?;
        }
        let path = region_path(name);
        if create {
            let Some(slots) = slots.clone() else {
                return Err(RegionError::InvalidArg(
                    "options.names is required with create: true".into(),
                ));
            };
            match create_named(name, &path, Layout::with_processes(slots, processes)) {
                Ok(()) => {}
                // Another process created it first: open theirs (and check it matches).
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error(&format!("cannot create region {name:?}"), &e)),
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| {
                let hint = if e.kind() == io::ErrorKind::NotFound && !create {
                    " (pass create: true to create it)"
                } else {
                    ""
                };
                io_error(&format!("cannot open region {name:?}{hint}"), &e)
            })?;
        let meta = file
            .metadata()
            .map_err(|e| io_error(&format!("cannot stat region {name:?}"), &e))?;
        if !meta.is_file() {
            return Err(shm(format!("region {name:?} is not a regular file")));
        }
        // Mode 0600 already keeps other users out; this also refuses a file planted by another
        // user that we could open through group/other permissions.
        // SAFETY: geteuid has no preconditions and cannot fail.
        if meta.uid() != unsafe { libc::geteuid() } {
            return Err(shm(format!("region {name:?} belongs to another user")));
        }
        let layout = read_layout(&file, meta.len())
            .map_err(|e| shm(format!("cannot open region {name:?}: {e}")))?;
        if let Some(slots) = slots {
            if slots != layout.slots {
                let have: Vec<&str> = layout.slots.iter().map(|s| s.name.as_str()).collect();
                return Err(shm(format!(
                    "region {name:?} exists with other counters ({}); unlink it or open it \
                     with the same names, kinds and order",
                    have.join(", ")
                )));
            }
        }
        Ok(Arc::new(Region {
            file,
            layout,
            name: Some(name.to_owned()),
            anon_id: 0,
        }))
    }

    /// Removes a named region's file. Processes that have it open keep using it; returns false
    /// if there was no such region.
    pub fn unlink(name: &str) -> Result<bool, RegionError> {
        validate_region_name(name).map_err(shm)?;
        match std::fs::remove_file(region_path(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&format!("cannot unlink region {name:?}"), &e)),
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn anon_id(&self) -> u64 {
        self.anon_id
    }

    /// Maps the region into memory once more.
    pub fn view(self: &Arc<Self>) -> Result<View, RegionError> {
        let map = Mapping::new(&self.file, self.layout.total_len)
            .map_err(|e| io_error("cannot map the region", &e))?;
        Ok(View {
            region: Arc::clone(self),
            map,
        })
    }
}

fn check_processes(processes: usize) -> Result<(), RegionError> {
    if (1..=MAX_PROCESSES).contains(&processes) {
        Ok(())
    } else {
        Err(RegionError::InvalidArg(format!(
            "processes must be an integer from 1 to {MAX_PROCESSES}, got {processes}"
        )))
    }
}

fn region_path(name: &str) -> PathBuf {
    PathBuf::from(SHM_DIR).join(name)
}

/// Reads and validates a region's header with `pread` (nothing is mapped before it is valid).
fn read_layout(file: &File, file_len: u64) -> Result<Layout, String> {
    let mut fixed = vec![0u8; super::layout::FIXED_HEADER.min(file_len as usize)];
    file.read_exact_at(&mut fixed, 0)
        .map_err(|e| e.to_string())?;
    if fixed.len() < super::layout::FIXED_HEADER {
        return Layout::parse(&fixed, file_len).map_err(|e| e.0);
    }
    // The fixed part says how long the whole header is; read it all (bounded by the file).
    let header_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as u64;
    let want = header_len.clamp(fixed.len() as u64, file_len.min(1 << 22)) as usize;
    let mut bytes = vec![0u8; want];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| e.to_string())?;
    Layout::parse(&bytes, file_len).map_err(|e| e.0)
}

/// Sizes a fresh file and writes its header. Slots are zero (a new file reads as zeros).
fn write_region(file: &File, layout: &Layout) -> io::Result<()> {
    file.set_len(layout.total_len as u64)?;
    file.write_all_at(&layout.encode_header(), 0)
}

/// Creates the region under a temporary name, then links it into place: other processes see
/// either no region or a complete one, never a half-written header.
fn create_named(name: &str, path: &PathBuf, layout: Layout) -> io::Result<()> {
    let (tmp, file) = create_private(Path::new(SHM_DIR), name)?;
    let result = write_region(&file, &layout).and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    result
}

#[cfg(target_os = "linux")]
fn memfd() -> io::Result<File> {
    // The raw system call (Linux 3.17): glibc's wrapper only exists from glibc 2.27, and the
    // release binaries link against glibc 2.17.
    // SAFETY: the name is a NUL-terminated literal; memfd_create has no other preconditions.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            c"corepool-counters".as_ptr(),
            libc::MFD_CLOEXEC,
        )
    } as libc::c_int;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

// Without memfd: an unlinked temporary file (mapped MAP_SHARED, it is still process-shared).
#[cfg(not(target_os = "linux"))]
fn memfd() -> io::Result<File> {
    let (path, file) = create_private(&std::env::temp_dir(), "anon")?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// A new file in `dir` with a name no other call uses, readable by this user only, never
/// through a symlink.
fn create_private(dir: &Path, what: &str) -> io::Result<(PathBuf, File)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!(
        ".corepool-{}-{}-{what}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)?;
    Ok((path, file))
}

/// One shared mapping of a region; unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics (see `Mapping::slot`)
// and unmapped once, on drop; moving or sharing the pointer between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(file: &File, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh MAP_SHARED mapping of `len` bytes of an open file; the kernel picks the
        // address, so no existing memory is affected. The file was checked to be >= len bytes.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap: null"))?;
        Ok(Mapping { ptr, len })
    }

    /// Base address of the mapping (for the JS array over it).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot at byte `offset`, which the caller takes from the region's layout.
    fn slot(&self, offset: usize) -> &Slot {
        assert!(offset.is_multiple_of(8) && offset + std::mem::size_of::<Slot>() <= self.len);
        // SAFETY: in bounds and 8-byte aligned (asserted; the base is page aligned). The bytes
        // are only ever accessed atomically — by `Slot`'s atomics here, by `Atomics.*` in JS,
        // by other processes through the same types — and live as long as `self`.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<Slot>() }
    }

    /// The 64-bit word at byte `offset` of the data area (histogram counts, per-process values).
    fn word(&self, offset: usize) -> &AtomicI64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len);
        // SAFETY: in bounds and aligned (asserted); only ever accessed atomically, as above.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicI64>() }
    }

    /// The 32-bit word at byte `offset` (process-table fields).
    fn word32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len);
        // SAFETY: in bounds and aligned (asserted); only ever accessed atomically, as above.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicU32>() }
    }
}

/// One live entry of a region's process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessEntry {
    pub entry: usize,
    pub pid: u32,
    /// Worker id + 1, or 0 when the process gave none.
    pub tag: u32,
    pub claimed_ms: u64,
}

/// Whether `pid` names a live process (one we may not signal still counts).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission; it sends nothing.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing borrows from the mapping
        // any more (slot references are tied to `&self`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// value >= n
    AtLeast(i64),
    /// value != n (used to re-evaluate a JS predicate on every change)
    NotEqual(i64),
}

impl WaitCondition {
    fn holds(self, v: i64) -> bool {
        match self {
            WaitCondition::AtLeast(n) => v >= n,
            WaitCondition::NotEqual(n) => v != n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    Satisfied(i64),
    TimedOut,
    Cancelled,
}

/// One mapping of a region, with the atomic operations on its slots. Indexes are slot numbers
/// (positions in the layout's slot list); an index out of range panics, as slice indexing does.
#[derive(Debug)]
pub struct View {
    region: Arc<Region>,
    map: Mapping,
}

impl View {
    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    pub fn layout(&self) -> &Layout {
        self.region.layout()
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.region.layout.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    fn slot(&self, index: usize) -> &Slot {
        assert!(index < self.len(), "counter index {index} out of range");
        self.map.slot(self.region.layout.slot_offset(index))
    }

    /// Adds `n` (wrapping at 64 bits) and returns the previous value.
    pub fn add(&self, index: usize, n: i64) -> i64 {
        let s = self.slot(index);
        let old = s.value.fetch_add(n, Ordering::SeqCst);
        notify(s);
        old
    }

    pub fn get(&self, index: usize) -> i64 {
        self.slot(index).value.load(Ordering::SeqCst)
    }

    /// Stores `v` and returns the previous value.
    pub fn set(&self, index: usize, v: i64) -> i64 {
        let s = self.slot(index);
        let old = s.value.swap(v, Ordering::SeqCst);
        notify(s);
        old
    }

    /// Stores `new` if the value is `expected`; returns the previous value either way.
    pub fn compare_exchange(&self, index: usize, expected: i64, new: i64) -> i64 {
        let s = self.slot(index);
        match s
            .value
            .compare_exchange(expected, new, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(old) => {
                notify(s);
                old
            }
            Err(old) => old,
        }
    }

    fn kind_data(&self, index: usize, kind: Kind) -> usize {
        let layout = self.layout();
        assert!(
            layout.slots[index].kind == kind,
            "slot {index} is not a {kind:?}"
        );
        layout.data[index]
    }

    /// Records `v` in histogram `index`: one bucket count (the first bound >= v, else +Inf) and
    /// the sum (an f64 in the slot's value, updated by compare-and-swap). NaN is not counted.
    pub fn observe(&self, index: usize, v: f64) {
        let data = self.kind_data(index, Kind::Histogram);
        if v.is_nan() {
            return;
        }
        let buckets = &self.layout().slots[index].buckets;
        let bucket = buckets.partition_point(|&b| b < v);
        self.map
            .word(data + 8 * bucket)
            .fetch_add(1, Ordering::SeqCst);
        let sum = &self.slot(index).value;
        let mut old = sum.load(Ordering::SeqCst);
        loop {
            let new = (f64::from_bits(old as u64) + v).to_bits() as i64;
            match sum.compare_exchange_weak(old, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(actual) => old = actual,
            }
        }
    }

    /// Histogram `index`: its per-bucket counts (not cumulative, `+Inf` last) and its sum.
    pub fn histogram(&self, index: usize) -> (Vec<u64>, f64) {
        let data = self.kind_data(index, Kind::Histogram);
        let n = self.layout().slots[index].buckets.len() + 1;
        let counts = (0..n)
            .map(|i| self.map.word(data + 8 * i).load(Ordering::SeqCst) as u64)
            .collect();
        let sum = f64::from_bits(self.slot(index).value.load(Ordering::SeqCst) as u64);
        (counts, sum)
    }

    fn entry_offset(&self, entry: usize) -> usize {
        assert!(entry < self.layout().processes);
        self.layout().process_table + entry * PROCESS_ENTRY
    }

    /// This process's entry of the process table, claimed on first use (a free entry, or one
    /// whose process is gone) with worker tag `tag`. The claimer zeroes the entry's values.
    pub fn claim_process(&self, tag: u32) -> Result<usize, RegionError> {
        // One claim at a time in this process, so two threads cannot take two entries.
        static CLAIMING: Mutex<()> = Mutex::new(());
        let _guard = lock(&CLAIMING);
        let layout = self.layout();
        if layout.processes == 0 {
            return Err(RegionError::InvalidArg(
                "this region has no per-process gauges".into(),
            ));
        }
        let me = std::process::id();
        for entry in 0..layout.processes {
            if self
                .map
                .word32(self.entry_offset(entry))
                .load(Ordering::SeqCst)
                == me
            {
                return Ok(entry);
            }
        }
        for entry in 0..layout.processes {
            let at = self.entry_offset(entry);
            let pid = self.map.word32(at);
            let current = pid.load(Ordering::SeqCst);
            if current != 0 && alive(current) {
                continue;
            }
            if pid
                .compare_exchange(current, me, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                continue;
            }
            for (i, s) in layout.slots.iter().enumerate() {
                if s.kind == Kind::ProcessGauge {
                    self.map
                        .word(layout.data[i] + 8 * entry)
                        .store(0, Ordering::SeqCst);
                }
            }
            self.map.word32(at + 4).store(tag, Ordering::SeqCst);
            self.map
                .word(at + 8)
                .store(now_ms() as i64, Ordering::SeqCst);
            return Ok(entry);
        }
        Err(shm(format!(
            "the region's process table is full ({} live processes use it)",
            layout.processes
        )))
    }

    /// Gives up this process's entry (at exit), so its values stop being exported at once.
    pub fn release_process(&self, entry: usize) {
        let at = self.entry_offset(entry);
        let me = std::process::id();
        let _ = self
            .map
            .word32(at)
            .compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The entries of live processes. Of several with one worker tag (a worker and its
    /// replacement during a reload), only the latest claim.
    pub fn live_processes(&self) -> Vec<ProcessEntry> {
        let mut out: Vec<ProcessEntry> = Vec::new();
        for entry in 0..self.layout().processes {
            let at = self.entry_offset(entry);
            let pid = self.map.word32(at).load(Ordering::SeqCst);
            if pid == 0 || !alive(pid) {
                continue;
            }
            let e = ProcessEntry {
                entry,
                pid,
                tag: self.map.word32(at + 4).load(Ordering::SeqCst),
                claimed_ms: self.map.word(at + 8).load(Ordering::SeqCst) as u64,
            };
            match out.iter_mut().find(|o| e.tag != 0 && o.tag == e.tag) {
                Some(o) if (o.claimed_ms, o.pid) < (e.claimed_ms, e.pid) => *o = e,
                Some(_) => {}
                None => out.push(e),
            }
        }
        out
    }

    /// The value of per-process gauge `index` for process-table entry `entry`: an f64's bit
    /// pattern (see the layout).
    pub fn process_value(&self, index: usize, entry: usize) -> &AtomicI64 {
        let data = self.kind_data(index, Kind::ProcessGauge);
        assert!(entry < self.layout().processes);
        self.map.word(data + 8 * entry)
    }

    /// Wakes every waiter of slot `index` so it re-checks its condition (used after raw writes
    /// from JS and to cancel a wait).
    pub fn wake(&self, index: usize) {
        let s = self.slot(index);
        s.seq.fetch_add(1, Ordering::SeqCst);
        futex_wake_all(&s.seq);
    }

    /// Blocks the calling thread until `condition` holds for slot `index`, `deadline` passes or
    /// `cancel` is set (the canceller then calls [`View::wake`]).
    pub fn wait(
        &self,
        index: usize,
        condition: WaitCondition,
        deadline: Option<Instant>,
        cancel: &AtomicBool,
    ) -> WaitOutcome {
        let s = self.slot(index);
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let outcome = loop {
            if cancel.load(Ordering::SeqCst) {
                break WaitOutcome::Cancelled;
            }
            // Read `seq` before the value: a writer that changes the value after this read
            // and sees `waiters > 0` bumps `seq`, so the futex wait below returns at once.
            let seq = s.seq.load(Ordering::SeqCst);
            let v = s.value.load(Ordering::SeqCst);
            if condition.holds(v) {
                break WaitOutcome::Satisfied(v);
            }
            let slice = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break WaitOutcome::TimedOut;
                    }
                    (d - now).min(POLL_INTERVAL)
                }
                None => POLL_INTERVAL,
            };
            futex_wait(&s.seq, seq, slice);
        };
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        outcome
    }
}

/// After a change: if anyone waits on this slot, bump its futex word and wake them.
fn notify(s: &Slot) {
    if s.waiters.load(Ordering::SeqCst) != 0 {
        s.seq.fetch_add(1, Ordering::SeqCst);
        futex_wake_all(&s.seq);
    }
}

#[cfg(target_os = "linux")]
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned 32-bit atomic (possibly in memory shared with other
    // processes, hence no FUTEX_PRIVATE_FLAG); `ts` outlives the call. FUTEX_WAIT only reads
    // the word; EAGAIN/EINTR/ETIMEDOUT all mean "re-check", which the caller does.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

#[cfg(target_os = "linux")]
fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE touches no memory.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

// Elsewhere waiters simply poll (named regions need /dev/shm anyway).
#[cfg(not(target_os = "linux"))]
fn futex_wait(_word: &AtomicU32, _expected: u32, timeout: Duration) {
    std::thread::sleep(timeout.min(Duration::from_millis(1)));
}

#[cfg(not(target_os = "linux"))]
fn futex_wake_all(_word: &AtomicU32) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::layout::Kind;
    use std::thread;

    fn specs(names: &[&str]) -> Vec<SlotSpec> {
        names
            .iter()
            .map(|n| SlotSpec::new(*n, Kind::Counter))
            .collect()
    }

    #[test]
    fn histograms_count_exactly_across_threads() {
        let region = Region::anonymous(vec![
            SlotSpec::new("c", Kind::Counter),
            SlotSpec::histogram("h", vec![1.0, 10.0]),
        ])
        .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let view = region.view().unwrap();
                thread::spawn(move || {
                    for i in 0..10_000 {
                        view.observe(1, [0.5, 1.0, 5.0, 100.0][i % 4]);
                    }
                    view.observe(1, f64::NAN);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let view = region.view().unwrap();
        let (counts, sum) = view.histogram(1);
        // 1.0 falls in the le="1" bucket (upper bounds are inclusive).
        assert_eq!(counts, vec![20_000, 10_000, 10_000]);
        assert_eq!(sum, 10_000.0 * (0.5 + 1.0 + 5.0 + 100.0));
        assert_eq!(view.get(0), 0);
    }

    #[test]
    fn process_table_claims_once_per_process_and_skips_the_dead() {
        let region = Region::anonymous_with(
            vec![
                SlotSpec::new("g", Kind::ProcessGauge),
                SlotSpec::new("c", Kind::Counter),
            ],
            2,
        )
        .unwrap();
        let view = region.view().unwrap();
        let e = view.claim_process(3).unwrap();
        assert_eq!(view.claim_process(9).unwrap(), e);
        view.process_value(0, e).store(42, Ordering::SeqCst);
        let live = view.live_processes();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].pid, live[0].tag), (std::process::id(), 3));
        // An entry of a process that is gone is not listed, and is taken over by a claim.
        let other = 1 - e;
        let at = view.entry_offset(other);
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        view.map.word32(at).store(dead_pid, Ordering::SeqCst);
        view.process_value(0, other).store(7, Ordering::SeqCst);
        assert_eq!(view.live_processes().len(), 1);
        view.release_process(e);
        assert!(view.live_processes().is_empty());
        let again = view.claim_process(0).unwrap();
        assert_eq!(view.process_value(0, again).load(Ordering::SeqCst), 0);
        assert!(matches!(
            Region::anonymous_with(specs(&["a"]), 0),
            Err(RegionError::InvalidArg(_))
        ));
    }

    fn unique(tag: &str) -> String {
        format!("corepool-test-{}-{tag}", std::process::id())
    }

    #[test]
    fn anonymous_region_counts_exactly_across_threads() {
        let region = Region::anonymous(specs(&["a", "b"])).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let view = region.view().unwrap();
                thread::spawn(move || {
                    for _ in 0..100_000 {
                        view.add(0, 1);
                        view.add(1, -1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let view = region.view().unwrap();
        assert_eq!(view.get(0), 400_000);
        assert_eq!(view.get(1), -400_000);
        assert_eq!(view.set(0, 7), 400_000);
        assert_eq!(view.compare_exchange(0, 7, 9), 7);
        assert_eq!(view.compare_exchange(0, 7, 11), 9);
        assert_eq!(view.get(0), 9);
        assert_eq!(
            Region::find_anonymous(region.anon_id()).unwrap().anon_id(),
            region.anon_id()
        );
    }

    #[test]
    fn anonymous_registry_forgets_dropped_regions() {
        let region = Region::anonymous(specs(&["a"])).unwrap();
        let id = region.anon_id();
        drop(region);
        assert!(Region::find_anonymous(id).is_none());
    }

    #[test]
    fn named_region_create_open_unlink() {
        let name = unique("named");
        let _ = Region::unlink(&name);
        let err = Region::open(&name, None, false).unwrap_err();
        assert!(matches!(err, RegionError::Shm(m) if m.contains("ENOENT")));

        let a = Region::open(&name, Some(specs(&["x", "y"])), true).unwrap();
        let b = Region::open(&name, None, false).unwrap();
        let c = Region::open(&name, Some(specs(&["x", "y"])), true).unwrap();
        assert_eq!(b.layout(), a.layout());
        let (va, vb, vc) = (a.view().unwrap(), b.view().unwrap(), c.view().unwrap());
        va.add(1, 5);
        assert_eq!(vb.get(1), 5);
        assert_eq!(vc.get(1), 5);
        assert_ne!(va.mapping().as_ptr(), vb.mapping().as_ptr());

        let mode = std::fs::metadata(region_path(&name)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);

        let other = Region::open(&name, Some(specs(&["x"])), true).unwrap_err();
        assert!(matches!(other, RegionError::Shm(m) if m.contains("other counters")));

        assert!(Region::unlink(&name).unwrap());
        assert!(!Region::unlink(&name).unwrap());
        // Existing views keep working after unlink.
        va.add(1, 1);
        assert_eq!(vb.get(1), 6);
    }

    #[test]
    fn concurrent_creators_share_one_region() {
        let name = unique("race");
        let _ = Region::unlink(&name);
        let opened: Vec<_> = (0..8)
            .map(|_| {
                let name = name.clone();
                thread::spawn(move || Region::open(&name, Some(specs(&["x"])), true).unwrap())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        for r in &opened {
            r.view().unwrap().add(0, 1);
        }
        assert_eq!(opened[0].view().unwrap().get(0), 8);
        // No temporary files are left behind.
        let leftovers = std::fs::read_dir(SHM_DIR)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(".corepool-") && n.ends_with(&name)
            })
            .count();
        assert_eq!(leftovers, 0);
        Region::unlink(&name).unwrap();
    }

    #[test]
    fn corrupt_named_regions_are_refused() {
        let name = unique("corrupt");
        let path = region_path(&name);
        let _ = Region::unlink(&name);
        let a = Region::open(&name, Some(specs(&["x"])), true).unwrap();
        let total = a.layout().total_len as u64;
        drop(a);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(total - 8).unwrap();
        let e = Region::open(&name, None, false).unwrap_err();
        assert!(
            matches!(e, RegionError::Shm(ref m) if m.contains("truncated")),
            "{e}"
        );
        f.set_len(0).unwrap();
        assert!(Region::open(&name, None, false).is_err());
        f.set_len(total).unwrap();
        let e = Region::open(&name, None, false).unwrap_err();
        assert!(
            matches!(e, RegionError::Shm(ref m) if m.contains("magic")),
            "{e}"
        );
        Region::unlink(&name).unwrap();

        for bad in ["../x", "a/b", "", ".x"] {
            assert!(matches!(
                Region::open(bad, Some(specs(&["x"])), true),
                Err(RegionError::Shm(_))
            ));
        }
        assert!(matches!(
            Region::open(&name, Some(specs(&["bad-name"])), true),
            Err(RegionError::InvalidArg(_))
        ));
    }

    #[test]
    fn wait_wakes_times_out_and_cancels() {
        let region = Region::anonymous(specs(&["a"])).unwrap();
        let view = Arc::new(region.view().unwrap());
        let never = AtomicBool::new(false);

        let start = Instant::now();
        let out = view.wait(
            0,
            WaitCondition::AtLeast(1),
            Some(start + Duration::from_millis(30)),
            &never,
        );
        assert_eq!(out, WaitOutcome::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(30));

        let writer = {
            let v = region.view().unwrap();
            thread::spawn(move || {
                for _ in 0..10 {
                    thread::sleep(Duration::from_millis(2));
                    v.add(0, 1);
                }
            })
        };
        let out = view.wait(0, WaitCondition::AtLeast(10), None, &never);
        assert_eq!(out, WaitOutcome::Satisfied(10));
        writer.join().unwrap();
        assert_eq!(
            view.wait(0, WaitCondition::NotEqual(3), None, &never),
            WaitOutcome::Satisfied(10)
        );

        let cancel = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (view, cancel) = (Arc::clone(&view), Arc::clone(&cancel));
            thread::spawn(move || view.wait(0, WaitCondition::AtLeast(100), None, &cancel))
        };
        thread::sleep(Duration::from_millis(10));
        cancel.store(true, Ordering::SeqCst);
        view.wake(0);
        assert_eq!(waiter.join().unwrap(), WaitOutcome::Cancelled);
    }
}
