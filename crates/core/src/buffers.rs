//! A task's private copies of its input bytes, with large buffers recycled.

use std::sync::Mutex;

use crate::sync::lock;

/// A task's private copy of its input (the binding copies every input on submit, so the caller
/// may reuse, mutate or transfer its memory while the task runs). Large copies reuse recycled buffers: a fresh multi-MiB
/// allocation is returned to the OS when freed and costs a page fault per 4 KiB on the next
/// copy (measured: copying 64 MiB into fresh memory took longer than hashing it with SHA-NI).
pub struct Input(Vec<u8>);

impl Input {
    /// A private copy of `src`.
    pub fn copy_of(src: &[u8]) -> Self {
        let mut buf = buffer_for(src.len());
        buf.extend_from_slice(src);
        Input(buf)
    }
}

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.0));
    }
}

/// Buffers at least this large are recycled.
const RECYCLE_MIN: usize = 1 << 20;
/// At most this many bytes of idle buffers are kept (in at most `RECYCLE_COUNT` buffers).
const RECYCLE_TOTAL: usize = 128 << 20;
const RECYCLE_COUNT: usize = 4;
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with room for `len` bytes, recycled when one fits without wasting more than
/// half of it.
pub fn buffer_for(len: usize) -> Vec<u8> {
    if len >= RECYCLE_MIN {
        if let Some(buf) = take_fitting(&mut lock(&SPARE), len) {
            return buf;
        }
    }
    Vec::with_capacity(len)
}

fn take_fitting(spare: &mut Vec<Vec<u8>>, len: usize) -> Option<Vec<u8>> {
    let best = spare
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= len && b.capacity() / 2 <= len)
        .min_by_key(|(_, b)| b.capacity())
        .map(|(i, _)| i)?;
    let mut buf = spare.swap_remove(best);
    buf.clear();
    Some(buf)
}

/// Hands a buffer back for reuse by [`buffer_for`] (kept only when large enough and room is left).
pub fn recycle(buf: Vec<u8>) {
    if buf.capacity() >= RECYCLE_MIN {
        keep(&mut lock(&SPARE), buf);
    }
}

fn keep(spare: &mut Vec<Vec<u8>>, buf: Vec<u8>) {
    let held: usize = spare.iter().map(Vec::capacity).sum();
    if spare.len() < RECYCLE_COUNT && held + buf.capacity() <= RECYCLE_TOTAL {
        spare.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_recycled() {
        // On a private list: the global one is shared with tests running in parallel.
        let mut spare = Vec::new();
        let a = Vec::<u8>::with_capacity(3 << 20);
        let ptr = a.as_ptr();
        keep(&mut spare, a);
        let b = take_fitting(&mut spare, (3 << 20) - 5).unwrap();
        assert_eq!(b.as_ptr(), ptr, "reused");
        assert!(b.is_empty());
        keep(&mut spare, b);
        // Too big a waste: not reused.
        assert!(take_fitting(&mut spare, 1 << 20).is_none());
        // Bounded: never more than RECYCLE_COUNT buffers or RECYCLE_TOTAL bytes.
        for _ in 0..10 {
            keep(&mut spare, Vec::with_capacity(RECYCLE_TOTAL / 3));
        }
        assert!(spare.len() <= RECYCLE_COUNT);
        assert!(spare.iter().map(Vec::capacity).sum::<usize>() <= RECYCLE_TOTAL);
    }
}
