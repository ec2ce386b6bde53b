//! Numeric kernels.

use napi_derive::napi;

use crate::error::ErrorCode;
use crate::pool::binding::{NativePool, Output, RawValue};
use crate::pool::scheduler::{TaskCtx, TaskError};

/// Iterations between two cancel checks: ~0.1 ms of work, so a cancel is seen promptly.
const CHUNK: u64 = 1 << 16;

/// Largest integer that JS represents exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Sum of `sqrt(i)` for `0 <= i < n`, checking for cancellation every chunk.
///
/// Four independent accumulators break the add dependency chain so the loop runs at the
/// throughput of `sqrtpd` instead of the latency of `addsd`; the result differs from a
/// sequential JS loop only in the last bits (relative error far below 1e-9).
pub fn sqrt_sum(n: u64, ctx: &TaskCtx) -> Result<f64, TaskError> {
    let mut acc = [0.0f64; 4];
    let mut start = 0u64;
    while start < n {
        ctx.check()?;
        let end = n.min(start + CHUNK);
        // Exact: every integer below 2^53 is a double.
        let mut x = start as f64;
        let mut i = start;
        while i + 4 <= end {
            acc[0] += x.sqrt();
            acc[1] += (x + 1.0).sqrt();
            acc[2] += (x + 2.0).sqrt();
            acc[3] += (x + 3.0).sqrt();
            x += 4.0;
            i += 4;
        }
        while i < end {
            acc[0] += (i as f64).sqrt();
            i += 1;
        }
        start = end;
    }
    Ok((acc[0] + acc[1]) + (acc[2] + acc[3]))
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

/// Native `sqrtSum`; see `lib/kernels.js` for the public wrapper.
#[allow(dead_code)] // registered with Node by #[napi]
#[napi(js_name = "sqrtSum")]
pub fn sqrt_sum_task(
    pool: &NativePool,
    n: f64,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    match parse_count("n", n) {
        Ok(n) => pool.submit(
            Box::new(move |ctx| sqrt_sum(n, ctx).map(Output::Number)),
            priority,
            timeout_ms,
            cancel_key,
        ),
        Err(message) => pool.reject(ErrorCode::InvalidArg, &message),
    }
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
}
