//! Numeric kernels.

use crate::pool::scheduler::{TaskCtx, TaskError};

/// Iterations between two cancel checks: ~0.1 ms of work, so a cancel is seen promptly.
const CHUNK: u64 = 1 << 16;

/// Largest integer that JS represents exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Accumulators of `sqrt_sum`: lane `k` sums `sqrt(i)` for the `i` that are `k` modulo 8.
const LANES: usize = 8;

/// Sum of `sqrt(i)` for `0 <= i < n`, checking for cancellation every chunk.
///
/// Eight independent accumulators break the add dependency chain, so the loop runs at the
/// throughput of the vector square root instead of the latency of one add; on x86-64 the same
/// loop is compiled for AVX-512 and AVX as well, and the widest the CPU has is used (one check,
/// cached by std). Every version adds the same numbers in the same order per lane, so the
/// result is bit-for-bit the same on every CPU; it differs from a sequential JS loop only in
/// the last bits (relative error far below 1e-9).
pub fn sqrt_sum(n: u64, ctx: &TaskCtx) -> Result<f64, TaskError> {
    sqrt_sum_with(n, ctx, sqrt_chunk_fn())
}

fn sqrt_sum_with(n: u64, ctx: &TaskCtx, chunk: SqrtChunk) -> Result<f64, TaskError> {
    let mut acc = [0.0f64; LANES];
    let mut start = 0u64;
    while start < n {
        ctx.check()?;
        // CHUNK is a multiple of LANES: only the last chunk leaves a tail.
        let end = n.min(start + CHUNK);
        let whole = end - (end - start) % LANES as u64;
        chunk(&mut acc, start, whole);
        for i in whole..end {
            acc[(i % LANES as u64) as usize] += (i as f64).sqrt();
        }
        start = end;
    }
    Ok(lanes_total(&acc))
}

/// The lanes added up, in a fixed order.
fn lanes_total(acc: &[f64; LANES]) -> f64 {
    let pairs = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (pairs[0] + pairs[1]) + (pairs[2] + pairs[3])
}

type SqrtChunk = fn(&mut [f64; LANES], u64, u64);

/// Adds `sqrt(i)` for `start <= i < end` (`end - start` a multiple of `LANES`, `start` too)
/// into the lanes.
#[inline(always)]
fn sqrt_chunk_body(acc: &mut [f64; LANES], start: u64, end: u64) {
    // Exact: every integer below 2^53 is a double.
    let mut x = [0.0f64; LANES];
    for (k, v) in x.iter_mut().enumerate() {
        *v = (start + k as u64) as f64;
    }
    let mut i = start;
    while i < end {
        for (a, v) in acc.iter_mut().zip(x.iter_mut()) {
            *a += v.sqrt();
            *v += LANES as f64;
        }
        i += LANES as u64;
    }
}

fn sqrt_chunk_generic(acc: &mut [f64; LANES], start: u64, end: u64) {
    sqrt_chunk_body(acc, start, end)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sqrt_chunk_avx512(acc: &mut [f64; LANES], start: u64, end: u64) {
    sqrt_chunk_body(acc, start, end)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn sqrt_chunk_avx(acc: &mut [f64; LANES], start: u64, end: u64) {
    sqrt_chunk_body(acc, start, end)
}

/// The versions of the loop this CPU runs, narrowest first.
fn sqrt_chunk_versions() -> impl Iterator<Item = SqrtChunk> {
    let generic: SqrtChunk = sqrt_chunk_generic;
    #[cfg(target_arch = "x86_64")]
    let wider: [Option<SqrtChunk>; 2] = [
        // SAFETY (both): the closure exists only when the CPU has the feature (checked here).
        std::arch::is_x86_feature_detected!("avx")
            .then_some(|acc, start, end| unsafe { sqrt_chunk_avx(acc, start, end) }),
        std::arch::is_x86_feature_detected!("avx512f")
            .then_some(|acc, start, end| unsafe { sqrt_chunk_avx512(acc, start, end) }),
    ];
    #[cfg(not(target_arch = "x86_64"))]
    let wider: [Option<SqrtChunk>; 0] = [];
    std::iter::once(generic).chain(wider.into_iter().flatten())
}

/// The widest version of the loop this CPU runs.
fn sqrt_chunk_fn() -> SqrtChunk {
    sqrt_chunk_versions().last().unwrap_or(sqrt_chunk_generic)
}

/// Validates `n` as a non-negative safe integer.
pub fn parse_count(name: &str, n: f64) -> Result<u64, String> {
    if (0.0..=MAX_SAFE_INTEGER).contains(&n) && n.fract() == 0.0 {
        Ok(n as u64)
    } else {
        Err(format!(
            "{name} must be a non-negative safe integer (0 to 2^53 - 1), got {n}"
        ))
    }
}

/// Odd numbers per sieve segment (covers 2 × this range of integers; 256 KiB of flags).
const SIEVE_SEGMENT: usize = 1 << 18;

/// The number of primes `p <= limit` (π(limit)), by an odd-only segmented sieve of
/// Eratosthenes; checks for cancellation between segments.
pub fn count_primes(limit: u64, ctx: &TaskCtx) -> Result<u64, TaskError> {
    if limit < 2 {
        return Ok(0);
    }
    // Base primes up to sqrt(limit) by a simple sieve (at most ~9.5e7 for limit = 2^53).
    let root = (limit as f64).sqrt() as u64 + 1;
    let root = (root.saturating_sub(2)..=root + 1)
        .rev()
        .find(|r| r.saturating_mul(*r) <= limit)
        .unwrap_or(1);
    let mut small = vec![true; root as usize + 1];
    let mut base: Vec<u64> = Vec::new();
    for i in 2..=root as usize {
        if small[i] {
            if i > 2 {
                base.push(i as u64);
            }
            let mut j = i * i;
            while j <= root as usize {
                small[j] = false;
                j += i;
            }
        }
    }
    drop(small);
    // Count 2, then the odd primes of [3, limit] segment by segment; index k stands for 2k + 1.
    let mut count = 1u64;
    let last = (limit - 1) / 2; // index of the largest odd number <= limit
    let mut flags = vec![true; SIEVE_SEGMENT];
    let mut lo = 1u64; // first index of the segment (the number 3)
    while lo <= last {
        ctx.check()?;
        let hi = (lo + SIEVE_SEGMENT as u64 - 1).min(last);
        let len = (hi - lo + 1) as usize;
        flags[..len].fill(true);
        let first_number = 2 * lo + 1;
        let last_number = 2 * hi + 1;
        for &p in &base {
            if p * p > last_number {
                break;
            }
            // First odd multiple of p that is >= max(p², first_number).
            let mut m = (first_number.div_ceil(p) * p).max(p * p);
            if m % 2 == 0 {
                m += p;
            }
            let mut k = ((m - 1) / 2 - lo) as usize;
            while k < len {
                flags[k] = false;
                k += p as usize;
            }
        }
        count += flags[..len].iter().filter(|&&f| f).count() as u64;
        lo = hi + 1;
    }
    Ok(count)
}

/// Elements sorted or scanned between two cancel checks.
const F64_CHUNK: usize = 1 << 20;

/// The order of `TypedArray.prototype.sort`: ascending, -0 before +0, NaN last.
fn js_order(a: &f64, b: &f64) -> std::cmp::Ordering {
    a.total_cmp(b)
}

/// Sorts `values` in place in JS typed-array order: chunks are sorted one by one, then merged
/// bottom-up, checking for cancellation between chunks.
pub fn sort_f64(values: &mut Vec<f64>, ctx: &TaskCtx) -> Result<(), TaskError> {
    // Every NaN becomes the positive quiet NaN so that `total_cmp` puts them all last (JS does
    // not distinguish NaN payloads).
    for chunk in values.chunks_mut(F64_CHUNK) {
        ctx.check()?;
        for v in chunk.iter_mut() {
            if v.is_nan() {
                *v = f64::NAN;
            }
        }
        chunk.sort_unstable_by(js_order);
    }
    let n = values.len();
    let mut width = F64_CHUNK;
    let mut src = std::mem::take(values);
    let mut dst = vec![0.0f64; if n > F64_CHUNK { n } else { 0 }];
    while width < n {
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            merge(&src[start..mid], &src[mid..end], &mut dst[start..end], ctx)?;
            start = end;
        }
        std::mem::swap(&mut src, &mut dst);
        width *= 2;
    }
    *values = src;
    Ok(())
}

fn merge(a: &[f64], b: &[f64], out: &mut [f64], ctx: &TaskCtx) -> Result<(), TaskError> {
    let (mut i, mut j) = (0, 0);
    for (k, slot) in out.iter_mut().enumerate() {
        if k % F64_CHUNK == F64_CHUNK - 1 {
            ctx.check()?;
        }
        // Stable: ties take from the left run first.
        if j >= b.len() || (i < a.len() && js_order(&a[i], &b[j]) != std::cmp::Ordering::Greater) {
            *slot = a[i];
            i += 1;
        } else {
            *slot = b[j];
            j += 1;
        }
    }
    Ok(())
}

/// Summary of a `Float64Array`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F64Stats {
    pub count: f64,
    /// Compensated (Neumaier) sum: exact to within one rounding for most inputs.
    pub sum: f64,
    pub mean: f64,
    /// `Math.min` semantics: NaN if any element is NaN, -0 below +0, +Infinity when empty.
    pub min: f64,
    /// `Math.max` semantics: NaN if any element is NaN, +0 above -0, -Infinity when empty.
    pub max: f64,
}

pub fn stats_f64(values: &[f64], ctx: &TaskCtx) -> Result<F64Stats, TaskError> {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut nan = false;
    for chunk in values.chunks(F64_CHUNK) {
        ctx.check()?;
        for &x in chunk {
            let t = sum + x;
            if sum.abs() >= x.abs() {
                comp += (sum - t) + x;
            } else {
                comp += (x - t) + sum;
            }
            sum = t;
            if x.is_nan() {
                nan = true;
            } else {
                if x < min || (x == 0.0 && min == 0.0 && x.is_sign_negative()) {
                    min = x;
                }
                if x > max || (x == 0.0 && max == 0.0 && x.is_sign_positive()) {
                    max = x;
                }
            }
        }
    }
    // With infinities the compensation is NaN; the plain sum is then the right answer.
    let total = if comp.is_finite() { sum + comp } else { sum };
    let count = values.len() as f64;
    Ok(F64Stats {
        count,
        sum: total,
        mean: if values.is_empty() {
            f64::NAN
        } else {
            total / count
        },
        min: if nan { f64::NAN } else { min },
        max: if nan { f64::NAN } else { max },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequential(n: u64) -> f64 {
        (0..n).map(|i| (i as f64).sqrt()).sum()
    }

    #[test]
    fn matches_the_sequential_loop() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        for n in [0, 1, 2, 3, 4, 5, 7, 100, 65_537, 1_000_003] {
            let got = sqrt_sum(n, &ctx).unwrap();
            let want = sequential(n);
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "n={n}: {got} vs {want}"
            );
        }
    }

    /// The eight-lane sum written out plainly: what every compiled version must give, bit for bit.
    fn by_lanes(n: u64) -> f64 {
        let mut acc = [0.0f64; LANES];
        for i in 0..n {
            acc[(i % LANES as u64) as usize] += (i as f64).sqrt();
        }
        lanes_total(&acc)
    }

    #[test]
    fn every_cpu_version_gives_the_same_bits() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        for n in [0, 1, 7, 8, 9, 65_535, 65_536, 65_537, 200_003] {
            let want = by_lanes(n).to_bits();
            assert_eq!(sqrt_sum(n, &ctx).unwrap().to_bits(), want, "n={n}");
            for chunk in sqrt_chunk_versions() {
                let got = sqrt_sum_with(n, &ctx, chunk).unwrap();
                assert_eq!(got.to_bits(), want, "n={n}");
            }
        }
    }

    #[test]
    fn rejects_bad_counts() {
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, 2f64.powi(53)] {
            assert!(parse_count("n", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_count("n", MAX_SAFE_INTEGER),
            Ok(MAX_SAFE_INTEGER as u64)
        );
    }

    #[test]
    fn counts_primes() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let known = [
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (10, 4),
            (100, 25),
            (1_000, 168),
            (7_919, 1_000),
            (1_000_000, 78_498),
            (10_000_000, 664_579),
        ];
        for (limit, want) in known {
            assert_eq!(count_primes(limit, &ctx).unwrap(), want, "pi({limit})");
        }
        // Segment boundaries: compare with a plain sieve around them.
        let top = 1_048_577usize;
        let mut prime = vec![true; top + 1];
        prime[0] = false;
        prime[1] = false;
        for i in 2..=top {
            if prime[i] && i * i <= top {
                (i * i..=top).step_by(i).for_each(|j| prime[j] = false);
            }
        }
        for limit in [524_287usize, 524_288, 524_289, 1_048_575, 1_048_577] {
            let want = prime[..=limit].iter().filter(|&&p| p).count() as u64;
            assert_eq!(
                count_primes(limit as u64, &ctx).unwrap(),
                want,
                "pi({limit})"
            );
        }
    }

    #[test]
    fn sorts_like_typed_arrays() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let mut v = vec![
            3.0,
            f64::NAN,
            -0.0,
            0.0,
            -1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -f64::NAN,
            2.0,
        ];
        sort_f64(&mut v, &ctx).unwrap();
        assert_eq!(
            &v[..7].iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            &[f64::NEG_INFINITY, -1.5, -0.0, 0.0, 2.0, 3.0, f64::INFINITY].map(f64::to_bits)
        );
        assert!(v[7].is_nan() && v[8].is_nan());
        // Several chunks, so the merge passes run.
        let n = 3 * F64_CHUNK + 12_345;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut big: Vec<f64> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 1_000_000) as f64 - 500_000.0
            })
            .collect();
        let mut want = big.clone();
        want.sort_by(f64::total_cmp);
        sort_f64(&mut big, &ctx).unwrap();
        assert!(big == want);
    }

    #[test]
    fn stats() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let s = stats_f64(&[1.0, 2.0, 3.0, 4.0], &ctx).unwrap();
        assert_eq!(
            (s.count, s.sum, s.mean, s.min, s.max),
            (4.0, 10.0, 2.5, 1.0, 4.0)
        );
        // Compensated: 1e100 + 1 - 1e100 is 1, not 0.
        assert_eq!(stats_f64(&[1e100, 1.0, -1e100], &ctx).unwrap().sum, 1.0);
        let e = stats_f64(&[], &ctx).unwrap();
        assert!(
            e.sum == 0.0 && e.mean.is_nan() && e.min == f64::INFINITY && e.max == f64::NEG_INFINITY
        );
        let n = stats_f64(&[1.0, f64::NAN], &ctx).unwrap();
        assert!(n.sum.is_nan() && n.min.is_nan() && n.max.is_nan());
        let z = stats_f64(&[0.0, -0.0], &ctx).unwrap();
        assert!(z.min.is_sign_negative() && z.max.is_sign_positive());
        assert_eq!(
            stats_f64(&[f64::INFINITY, 1.0], &ctx).unwrap().sum,
            f64::INFINITY
        );
    }
}
