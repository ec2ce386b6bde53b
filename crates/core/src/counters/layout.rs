//! The byte layout of a counters region: a header (magic, version, sizes, slot names and a
//! checksum), one cache-line padded slot per metric, then the data of histograms and
//! per-process gauges.
//!
//! Everything here works on plain byte slices so it can be tested without mapping anything.
//! All integers are little-endian; regions are only shared between processes of one machine, but
//! a fixed byte order keeps the format well defined.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CPCNTRS\x01"
//!      8     4  version (3)
//!     12     4  header_len: offset of slot 0, a multiple of the slot stride
//!     16     4  slot_count
//!     20     4  slot_stride (bytes between two slots; a padded cache line)
//!     24     8  total_len: header_len + slot_count * slot_stride
//!     32     4  names_len: bytes of the names block
//!     36     4  processes: entries of the process table (0 when no per-process gauge)
//!     40     8  checksum: FNV-1a 64 over bytes 8..40 and the names block
//!     48    16  reserved (0)
//!     64     …  names block: per slot, kind (u8), name length (u8), name bytes; a histogram
//!               adds its bucket count (u8) and upper bounds (f64 each, increasing, finite)
//! ```
//!
//! A slot is `CachePadded<Slot>`: the 64-bit value at offset 0, then two 32-bit words used to
//! park and wake waiters (`seq`, bumped on a change someone waits for, and `waiters`).
//!
//! After the slots (at `slots_end`, a multiple of the stride) comes the data area, each part
//! starting on a slot-stride boundary:
//!
//! - the process table when `processes > 0`: per entry a pid (u32, 0 = free), a worker tag (u32,
//!   0 = none, else id + 1) and the claim time (u64, ms since the epoch);
//! - per histogram, `buckets + 1` 64-bit counts (not cumulative; the last one is `+Inf`). The
//!   histogram's sum is the f64 bit pattern in its slot's value;
//! - per per-process gauge, one value per process-table entry: the bit pattern of an f64
//!   (version 3; version 2 held integers), so a gauge can hold 0.73 and integers stay exact up
//!   to 2^53.
//!
//! A metric name may carry constant labels, `name{k="v",...}` (Prometheus text syntax): slots
//! sharing a base name form one metric family, which must have one kind.

use std::fmt;
use std::mem::size_of;
use std::sync::atomic::{AtomicI64, AtomicU32};

use crossbeam_utils::CachePadded;

/// First 8 bytes of every region.
pub const MAGIC: [u8; 8] = *b"CPCNTRS\x01";
/// Bumped whenever the layout changes; a region of another version is refused.
pub const VERSION: u32 = 3;
/// Fixed part of the header, before the names block.
pub const FIXED_HEADER: usize = 64;
/// Most slots a region may have.
pub const MAX_SLOTS: usize = 4096;
/// Longest counter name (labels included), in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Most buckets of a histogram (besides `+Inf`).
pub const MAX_BUCKETS: usize = 64;
/// Most entries of a process table.
pub const MAX_PROCESSES: usize = 4096;
/// Process-table entries a region gets by default when it has per-process gauges.
pub const DEFAULT_PROCESSES: usize = 64;
/// Bytes of one process-table entry.
pub const PROCESS_ENTRY: usize = 16;
/// Longest region name (a file name in /dev/shm), in bytes.
pub const MAX_REGION_NAME_LEN: usize = 200;

/// One counter's words. `value` comes first so a `BigInt64Array` over the slots sees it at
/// element `slot * SLOT_STRIDE / 8`.
#[repr(C)]
pub struct Slot {
    pub value: AtomicI64,
    /// Futex word: bumped by a writer that saw `waiters > 0`, so sleeping waiters re-check.
    pub seq: AtomicU32,
    /// Number of threads (of any process) currently waiting on this slot.
    pub waiters: AtomicU32,
}

/// Bytes from one slot to the next: a slot padded to the cache-line size crossbeam uses for
/// this architecture (128 on x86_64, because of the adjacent-line prefetcher).
pub const SLOT_STRIDE: usize = size_of::<CachePadded<Slot>>();
/// Byte offset of `waiters` inside a slot (JS reads it to decide whether to wake anyone).
pub const WAITERS_OFFSET: usize = std::mem::offset_of!(Slot, waiters);

/// Counter (monotonic, exported as a Prometheus counter), gauge (goes up and down, one value
/// for all processes), histogram (fixed buckets) or per-process gauge (one value per process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
    ProcessGauge = 3,
}

impl Kind {
    pub fn from_u8(k: u8) -> Option<Kind> {
        match k {
            0 => Some(Kind::Counter),
            1 => Some(Kind::Gauge),
            2 => Some(Kind::Histogram),
            3 => Some(Kind::ProcessGauge),
            _ => None,
        }
    }
}

/// A named slot. `buckets` (upper bounds) is non-empty exactly for a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotSpec {
    pub name: String,
    pub kind: Kind,
    pub buckets: Vec<f64>,
}

impl SlotSpec {
    /// A counter, gauge or per-process gauge (no buckets).
    pub fn new(name: impl Into<String>, kind: Kind) -> SlotSpec {
        SlotSpec {
            name: name.into(),
            kind,
            buckets: Vec::new(),
        }
    }

    /// A histogram with these upper bounds.
    pub fn histogram(name: impl Into<String>, buckets: Vec<f64>) -> SlotSpec {
        SlotSpec {
            name: name.into(),
            kind: Kind::Histogram,
            buckets,
        }
    }

    /// The metric family name: the name without its labels.
    pub fn base_name(&self) -> &str {
        base_name(&self.name)
    }
}

/// `name` up to its labels (`{`).
pub fn base_name(name: &str) -> &str {
    name.split_once('{').map_or(name, |(b, _)| b)
}

/// Why a region's bytes were refused. Every variant becomes `ERR_SHM` (or `ERR_INVALID_ARG` for
/// a bad slot list given by the caller, see [`validate_slots`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, LayoutError> {
    Err(LayoutError(message.into()))
}

/// A validated layout: which slots exist and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub slots: Vec<SlotSpec>,
    pub header_len: usize,
    pub total_len: usize,
    /// Entries of the process table (0: none).
    pub processes: usize,
    /// Byte offset of the process table (meaningful when `processes > 0`).
    pub process_table: usize,
    /// Per slot: byte offset of its data (histogram counts, per-process values); 0 for none.
    pub data: Vec<usize>,
}

fn encoded_len(s: &SlotSpec) -> usize {
    2 + s.name.len()
        + if s.kind == Kind::Histogram {
            1 + 8 * s.buckets.len()
        } else {
            0
        }
}

fn stride_ceil(n: usize) -> usize {
    n.div_ceil(SLOT_STRIDE) * SLOT_STRIDE
}

impl Layout {
    /// Builds the layout for a slot list (already checked by [`validate_slots`]). `processes`
    /// is the size of the process table, used only when there is a per-process gauge.
    pub fn new(slots: Vec<SlotSpec>) -> Layout {
        Layout::with_processes(slots, DEFAULT_PROCESSES)
    }

    /// [`Layout::new`] with a process table of `processes` entries (1..=[`MAX_PROCESSES`]).
    pub fn with_processes(slots: Vec<SlotSpec>, processes: usize) -> Layout {
        let names_len: usize = slots.iter().map(encoded_len).sum();
        let header_len = stride_ceil(FIXED_HEADER + names_len);
        let slots_end = header_len + slots.len() * SLOT_STRIDE;
        let processes = if slots.iter().any(|s| s.kind == Kind::ProcessGauge) {
            processes
        } else {
            0
        };
        let process_table = slots_end;
        let mut at = slots_end + stride_ceil(processes * PROCESS_ENTRY);
        let data = slots
            .iter()
            .map(|s| {
                let words = match s.kind {
                    Kind::Histogram => s.buckets.len() + 1,
                    Kind::ProcessGauge => processes,
                    Kind::Counter | Kind::Gauge => return 0,
                };
                let offset = at;
                at += stride_ceil(words * 8);
                offset
            })
            .collect();
        Layout {
            slots,
            header_len,
            total_len: at,
            processes,
            process_table,
            data,
        }
    }

    /// Byte offset of slot `index` from the start of the region.
    pub fn slot_offset(&self, index: usize) -> usize {
        self.header_len + index * SLOT_STRIDE
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// The complete header (`header_len` bytes), magic included.
    pub fn encode_header(&self) -> Vec<u8> {
        let mut names = Vec::new();
        for s in &self.slots {
            names.push(s.kind as u8);
            names.push(s.name.len() as u8);
            names.extend_from_slice(s.name.as_bytes());
            if s.kind == Kind::Histogram {
                names.push(s.buckets.len() as u8);
                for b in &s.buckets {
                    names.extend_from_slice(&b.to_le_bytes());
                }
            }
        }
        let mut h = vec![0u8; self.header_len];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(self.header_len as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(self.slots.len() as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(SLOT_STRIDE as u32).to_le_bytes());
        h[24..32].copy_from_slice(&(self.total_len as u64).to_le_bytes());
        h[32..36].copy_from_slice(&(names.len() as u32).to_le_bytes());
        h[36..40].copy_from_slice(&(self.processes as u32).to_le_bytes());
        h[FIXED_HEADER..FIXED_HEADER + names.len()].copy_from_slice(&names);
        let sum = checksum(&h[8..40], &names);
        h[40..48].copy_from_slice(&sum.to_le_bytes());
        h
    }

    /// Parses and checks a region's first bytes. `file_len` is the region's actual size, so a
    /// truncated region is refused before anything maps past its end.
    pub fn parse(bytes: &[u8], file_len: u64) -> Result<Layout, LayoutError> {
        if bytes.len() < FIXED_HEADER || file_len < FIXED_HEADER as u64 {
            return err(format!(
                "region is truncated ({file_len} bytes, a header needs at least {FIXED_HEADER})"
            ));
        }
        if bytes[0..8] != MAGIC {
            return err("not a corepool counters region (bad magic)");
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return err(format!(
                "region has layout version {version}, this corepool reads version {VERSION}"
            ));
        }
        let header_len = u32_at(bytes, 12) as usize;
        let count = u32_at(bytes, 16) as usize;
        let stride = u32_at(bytes, 20) as usize;
        let total_len = u64_at(bytes, 24);
        let names_len = u32_at(bytes, 32) as usize;
        let processes = u32_at(bytes, 36) as usize;
        if processes > MAX_PROCESSES {
            return err(format!(
                "region header is corrupt (process table of {processes})"
            ));
        }
        if stride != SLOT_STRIDE {
            return err(format!(
                "region has slot stride {stride}, this build uses {SLOT_STRIDE}"
            ));
        }
        if count == 0 || count > MAX_SLOTS {
            return err(format!("region header is corrupt (slot count {count})"));
        }
        if !header_len.is_multiple_of(SLOT_STRIDE) || FIXED_HEADER + names_len > header_len {
            return err("region header is corrupt (header length)");
        }
        if bytes.len() < FIXED_HEADER + names_len {
            return err("region is truncated (names block)");
        }
        let names = &bytes[FIXED_HEADER..FIXED_HEADER + names_len];
        if checksum(&bytes[8..40], names) != u64_at(bytes, 40) {
            return err("region header is corrupt (checksum mismatch)");
        }
        let mut slots = Vec::with_capacity(count);
        let mut at = 0;
        for _ in 0..count {
            if at + 2 > names.len() {
                return err("region header is corrupt (names block too short)");
            }
            let kind = Kind::from_u8(names[at])
                .ok_or_else(|| LayoutError("region header is corrupt (slot kind)".into()))?;
            let len = names[at + 1] as usize;
            let Some(raw) = names.get(at + 2..at + 2 + len) else {
                return err("region header is corrupt (names block too short)");
            };
            let Ok(name) = std::str::from_utf8(raw) else {
                return err("region header is corrupt (slot name not UTF-8)");
            };
            at += 2 + len;
            let mut buckets = Vec::new();
            if kind == Kind::Histogram {
                let Some(&n) = names.get(at) else {
                    return err("region header is corrupt (names block too short)");
                };
                let Some(raw) = names.get(at + 1..at + 1 + 8 * n as usize) else {
                    return err("region header is corrupt (names block too short)");
                };
                buckets = raw
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect();
                at += 1 + 8 * n as usize;
            }
            slots.push(SlotSpec {
                name: name.to_owned(),
                kind,
                buckets,
            });
        }
        if at != names.len() {
            return err("region header is corrupt (names block length)");
        }
        validate_slots(&slots)
            .map_err(|e| LayoutError(format!("region header is corrupt ({e})")))?;
        let has_process_gauges = slots.iter().any(|s| s.kind == Kind::ProcessGauge);
        if has_process_gauges != (processes > 0) {
            return err(format!(
                "region header is corrupt (process table of {processes})"
            ));
        }
        let layout = Layout::with_processes(slots, processes);
        if layout.header_len != header_len {
            return err("region header is corrupt (header length)");
        }
        if total_len != layout.total_len as u64 {
            return err("region header is corrupt (total length)");
        }
        if file_len < total_len {
            return err(format!(
                "region is truncated ({file_len} bytes, its header says {total_len})"
            ));
        }
        Ok(layout)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// FNV-1a, 64-bit: enough to catch a corrupt or half-written header (not an integrity seal).
fn checksum(fixed: &[u8], names: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in fixed.iter().chain(names) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A counter name is a Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), so the exposition
/// never needs escaping, optionally followed by constant labels in Prometheus text syntax
/// (`{route="/health",code="200"}`: label names `[a-zA-Z_][a-zA-Z0-9_]*` not starting with
/// `__`, values with `\\`, `\"` and `\n` escaped), of at most [`MAX_NAME_LEN`] bytes.
pub fn validate_counter_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "counter name must be 1 to {MAX_NAME_LEN} characters, got {} characters",
            name.len()
        ));
    }
    let (base, labels) = match name.split_once('{') {
        Some((b, l)) => (b, Some(l)),
        None => (name, None),
    };
    let ok = !base.is_empty()
        && base.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit())
        });
    if !ok {
        return Err(format!(
            "counter name {name:?} must match [a-zA-Z_:][a-zA-Z0-9_:]* (a Prometheus metric name), \
             optionally followed by labels {{k=\"v\",...}}"
        ));
    }
    if let Some(labels) = labels {
        validate_labels(labels).map_err(|why| format!("counter name {name:?}: {why}"))?;
    }
    Ok(())
}

/// Checks `k="v",k2="v2"}` (the part after `{`).
fn validate_labels(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut seen = Vec::new();
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let label = &text[start..i];
        if label.is_empty() || label.as_bytes()[0].is_ascii_digit() {
            return Err("a label name must match [a-zA-Z_][a-zA-Z0-9_]*".into());
        }
        if label.starts_with("__") || label == "le" {
            return Err(format!("label name {label:?} is reserved"));
        }
        if seen.contains(&label) {
            return Err(format!("label {label:?} is given twice"));
        }
        seen.push(label);
        if b.get(i..i + 2) != Some(b"=\"") {
            return Err(format!("label {label:?} must be followed by =\"value\""));
        }
        i += 2;
        loop {
            match b.get(i) {
                None | Some(b'\n') => {
                    return Err(format!("label {label:?} has an unterminated value"))
                }
                Some(b'"') => break,
                Some(b'\\') => match b.get(i + 1) {
                    Some(b'\\' | b'"' | b'n') => i += 2,
                    _ => {
                        return Err(format!(
                            "label {label:?} has a bad escape (use \\\\, \\\" or \\n)"
                        ))
                    }
                },
                Some(_) => i += 1,
            }
        }
        i += 1;
        match b.get(i) {
            Some(b',') if b.get(i + 1) == Some(&b'}') && i + 2 == b.len() => return Ok(()),
            Some(b',') => i += 1,
            Some(b'}') if i + 1 == b.len() => return Ok(()),
            _ => {
                return Err(
                    "labels must be k=\"v\" pairs separated by commas and end with }".into(),
                )
            }
        }
    }
}

/// Checks a slot list given by a caller: 1 to [`MAX_SLOTS`] valid, distinct names; histograms
/// with 1 to [`MAX_BUCKETS`] finite, increasing bounds; one kind (and for histograms one set of
/// buckets) per metric family.
pub fn validate_slots(slots: &[SlotSpec]) -> Result<(), String> {
    if slots.is_empty() || slots.len() > MAX_SLOTS {
        return Err(format!(
            "names must list 1 to {MAX_SLOTS} counters, got {}",
            slots.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut families: std::collections::HashMap<&str, &SlotSpec> = Default::default();
    for s in slots {
        validate_counter_name(&s.name)?;
        if !seen.insert(s.name.as_str()) {
            return Err(format!("counter name {:?} is listed twice", s.name));
        }
        if s.kind == Kind::Histogram {
            if s.buckets.is_empty() || s.buckets.len() > MAX_BUCKETS {
                return Err(format!(
                    "histogram {:?} must have 1 to {MAX_BUCKETS} buckets, got {}",
                    s.name,
                    s.buckets.len()
                ));
            }
            let finite = s.buckets.iter().all(|b| b.is_finite());
            let increasing = s.buckets.windows(2).all(|w| w[0] < w[1]);
            if !finite || !increasing {
                return Err(format!(
                    "histogram {:?} buckets must be finite and increasing (+Inf is implied)",
                    s.name
                ));
            }
        } else if !s.buckets.is_empty() {
            return Err(format!("{:?} is not a histogram but has buckets", s.name));
        }
        let family = families.entry(s.base_name()).or_insert(s);
        if family.kind != s.kind || family.buckets != s.buckets {
            return Err(format!(
                "{:?} and {:?} belong to one metric family but differ in type or buckets",
                family.name, s.name
            ));
        }
    }
    Ok(())
}

/// A region name is one file name in /dev/shm: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most
/// [`MAX_REGION_NAME_LEN`] bytes. No `/` and no leading dot, so it cannot leave the directory
/// or collide with the temporary files used while creating a region.
pub fn validate_region_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_REGION_NAME_LEN {
        return Err(format!(
            "region name must be 1 to {MAX_REGION_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    let ok = name.bytes().enumerate().all(|(i, b)| {
        b.is_ascii_alphanumeric() || (i > 0 && (b == b'.' || b == b'_' || b == b'-'))
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "region name {name:?} must match [A-Za-z0-9][A-Za-z0-9._-]* (one file name in /dev/shm)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(names: &[&str]) -> Vec<SlotSpec> {
        names
            .iter()
            .map(|n| {
                SlotSpec::new(
                    *n,
                    if n.ends_with("_total") {
                        Kind::Counter
                    } else {
                        Kind::Gauge
                    },
                )
            })
            .collect()
    }

    #[test]
    fn histograms_and_process_gauges_round_trip() {
        let slots = vec![
            SlotSpec::new("req_total{route=\"/a\"}", Kind::Counter),
            SlotSpec::histogram("lat_seconds{route=\"/a\"}", vec![0.1, 1.0]),
            SlotSpec::histogram("lat_seconds{route=\"/b\"}", vec![0.1, 1.0]),
            SlotSpec::new("queue", Kind::ProcessGauge),
        ];
        validate_slots(&slots).unwrap();
        let l = Layout::with_processes(slots.clone(), 8);
        assert_eq!(l.processes, 8);
        assert_eq!(l.data[0], 0);
        assert_eq!(l.process_table, l.header_len + 4 * SLOT_STRIDE);
        assert_eq!(l.data[1], l.process_table + SLOT_STRIDE);
        assert_eq!(l.data[2], l.data[1] + SLOT_STRIDE);
        assert_eq!(l.data[3], l.data[2] + SLOT_STRIDE);
        assert_eq!(l.total_len, l.data[3] + SLOT_STRIDE);
        let h = l.encode_header();
        let parsed = Layout::parse(&h, l.total_len as u64).unwrap();
        assert_eq!(parsed, l);
        assert_eq!(parsed.slots[1].buckets, vec![0.1, 1.0]);
        assert!(Layout::parse(&h, l.total_len as u64 - 1)
            .unwrap_err()
            .0
            .contains("truncated"));
        // No per-process gauge: no process table.
        let plain = Layout::with_processes(specs(&["a_total"]), 8);
        assert_eq!(plain.processes, 0);
        assert_eq!(plain.total_len, plain.header_len + SLOT_STRIDE);
    }

    #[test]
    fn refuses_bad_histograms_and_families() {
        let bad = [
            vec![SlotSpec::histogram("h", vec![])],
            vec![SlotSpec::histogram("h", vec![1.0, 1.0])],
            vec![SlotSpec::histogram("h", vec![2.0, 1.0])],
            vec![SlotSpec::histogram("h", vec![f64::INFINITY])],
            vec![SlotSpec::histogram("h", vec![f64::NAN])],
            vec![SlotSpec::histogram("h", (0..65).map(f64::from).collect())],
            vec![SlotSpec {
                buckets: vec![1.0],
                ..SlotSpec::new("c", Kind::Counter)
            }],
            vec![
                SlotSpec::new("m{a=\"1\"}", Kind::Counter),
                SlotSpec::new("m{a=\"2\"}", Kind::Gauge),
            ],
            vec![
                SlotSpec::histogram("m{a=\"1\"}", vec![1.0]),
                SlotSpec::histogram("m{a=\"2\"}", vec![2.0]),
            ],
        ];
        for slots in bad {
            assert!(validate_slots(&slots).is_err(), "{slots:?}");
        }
    }
    #[test]
    fn slots_are_cache_line_padded() {
        const { assert!(SLOT_STRIDE >= 64 && SLOT_STRIDE.is_multiple_of(64)) };
        assert_eq!(size_of::<Slot>(), 16);
        assert_eq!(std::mem::offset_of!(Slot, value), 0);
        assert_eq!(WAITERS_OFFSET, 12);
        let l = Layout::new(specs(&["a_total", "b"]));
        assert_eq!(l.header_len % SLOT_STRIDE, 0);
        assert_eq!(l.slot_offset(1) - l.slot_offset(0), SLOT_STRIDE);
        assert_eq!(l.total_len, l.header_len + 2 * SLOT_STRIDE);
    }

    #[test]
    fn header_round_trips() {
        let l = Layout::new(specs(&["requests_total", "inflight", "x:y_total"]));
        let h = l.encode_header();
        assert_eq!(h.len(), l.header_len);
        let parsed = Layout::parse(&h, l.total_len as u64).unwrap();
        assert_eq!(parsed, l);
        assert_eq!(parsed.index_of("inflight"), Some(1));
        assert_eq!(parsed.index_of("nope"), None);
    }

    #[test]
    fn refuses_bad_regions() {
        let l = Layout::new(specs(&["a_total", "b_total"]));
        let h = l.encode_header();
        let total = l.total_len as u64;

        let mut magic = h.clone();
        magic[0] = b'X';
        assert!(Layout::parse(&magic, total)
            .unwrap_err()
            .0
            .contains("magic"));

        let mut version = h.clone();
        version[8] = 1;
        assert!(Layout::parse(&version, total)
            .unwrap_err()
            .0
            .contains("version 1"));

        let mut name = h.clone();
        name[FIXED_HEADER + 2] = b'z';
        assert!(Layout::parse(&name, total)
            .unwrap_err()
            .0
            .contains("checksum"));

        assert!(Layout::parse(&h, total - 1)
            .unwrap_err()
            .0
            .contains("truncated"));
        assert!(Layout::parse(&h[..10], 10)
            .unwrap_err()
            .0
            .contains("truncated"));
        assert!(Layout::parse(&[], 0).unwrap_err().0.contains("truncated"));
        assert!(Layout::parse(&vec![0u8; 4096], 4096)
            .unwrap_err()
            .0
            .contains("magic"));

        // A consistent header whose checksum was recomputed but whose count is absurd.
        let mut count = h.clone();
        count[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert!(Layout::parse(&count, total).is_err());
    }

    #[test]
    fn counter_names() {
        for ok in [
            "a",
            "_x",
            "http_requests_total",
            "a:b:c",
            "A9",
            "a{b=\"\"}",
            "a{route=\"/x y\",code=\"200\"}",
            "a{b=\"q\\\"\\\\\\n\",}",
        ] {
            assert!(validate_counter_name(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "9a",
            "a-b",
            "a b",
            "é",
            "../x",
            long.as_str(),
            "{a=\"1\"}",
            "a{",
            "a{}",
            "a{b}",
            "a{b=1}",
            "a{b=\"1\"",
            "a{b=\"1\"}x",
            "a{b=\"1\",b=\"2\"}",
            "a{__b=\"1\"}",
            "a{le=\"1\"}",
            "a{9=\"1\"}",
            "a{b=\"\\x\"}",
            "a{b=\"\n\"}",
        ] {
            assert!(validate_counter_name(bad).is_err(), "{bad}");
        }
        assert!(validate_slots(&specs(&["a", "a"])).is_err());
        assert!(validate_slots(&[]).is_err());
        assert!(validate_slots(&specs(&["a", "b"])).is_ok());
    }

    #[test]
    fn region_names() {
        for ok in ["app", "my-app.metrics_1", "A"] {
            assert!(validate_region_name(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(MAX_REGION_NAME_LEN + 1);
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-x",
            "a b",
            "x\0",
            long.as_str(),
        ] {
            assert!(validate_region_name(bad).is_err(), "{bad:?}");
        }
    }
}
