//! Password hashing: argon2id in the PHC string format (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
//!
//! Defaults are OWASP's recommendation for argon2id (m = 19 MiB, t = 2, p = 1). Verification
//! accepts any argon2 variant and version the PHC string names (so hashes made by
//! `@node-rs/argon2` or the reference implementation verify), within [`MAX_MEMORY_KIB`].

use argon2_rust::params::{Memory, TagLen};
use argon2_rust::{decode_phc, Algorithm, Argon2, Error as Argon2Error, Params, Version};

use crate::error::ErrorCode;
use crate::pool::scheduler::{TaskCtx, TaskError};

/// OWASP Password Storage Cheat Sheet, argon2id: 19 MiB, 2 iterations, 1 lane.
pub const DEFAULT_MEMORY_KIB: u32 = 19 * 1024;
pub const DEFAULT_TIME_COST: u32 = 2;
pub const DEFAULT_PARALLELISM: u32 = 1;
pub const DEFAULT_OUTPUT_LEN: u32 = 32;
/// Upper bound on memory cost, for hashing and for hashes presented to `passwordVerify`: a
/// crafted PHC string must not make a task allocate unbounded memory.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Upper bound on time cost (a crafted hash must not pin a thread for hours).
pub const MAX_TIME_COST: u32 = 1024;
pub const MAX_PARALLELISM: u32 = 64;

fn invalid(message: impl Into<String>) -> TaskError {
    TaskError::failed(ErrorCode::InvalidArg, message)
}

/// Checked cost parameters.
pub fn params(memory_kib: u32, time: u32, lanes: u32, output_len: u32) -> Result<Params, String> {
    if !(1..=MAX_PARALLELISM).contains(&lanes) {
        return Err(format!(
            "options.parallelism must be an integer from 1 to {MAX_PARALLELISM}, got {lanes}"
        ));
    }
    if !(1..=MAX_TIME_COST).contains(&time) {
        return Err(format!(
            "options.timeCost must be an integer from 1 to {MAX_TIME_COST}, got {time}"
        ));
    }
    if memory_kib < 8 * lanes || memory_kib > MAX_MEMORY_KIB {
        return Err(format!(
            "options.memoryCost must be an integer from 8 × parallelism to {MAX_MEMORY_KIB} (KiB), got {memory_kib}"
        ));
    }
    if !(4..=1024).contains(&output_len) {
        return Err(format!(
            "options.outputLength must be an integer from 4 to 1024, got {output_len}"
        ));
    }
    Params::builder()
        .memory(Memory::kib(memory_kib as u64))
        .passes(time)
        .lanes(lanes)
        .threads(1)
        .tag_len(TagLen::bytes(output_len as u64))
        .build()
        .map_err(|e| e.to_string())
}

/// Hashes `password` with a fresh random 16-byte salt; returns the PHC string.
pub fn hash_password(password: &[u8], params: Params, ctx: &TaskCtx) -> Result<String, TaskError> {
    ctx.check()?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_random_salt(password)
        .map_err(|e| match e {
            Argon2Error::OsRandom => TaskError::failed(
                ErrorCode::System,
                format!("the system's random generator failed: {e}"),
            ),
            e => invalid(format!("argon2 failed: {e}")),
        })
}

/// Whether `password` matches the PHC string `phc`. A malformed string, or one asking for more
/// than the cost limits, is `ERR_INVALID_ARG`.
pub fn verify_password(phc: &str, password: &[u8], ctx: &TaskCtx) -> Result<bool, TaskError> {
    ctx.check()?;
    let decoded = decode_phc(phc)
        .map_err(|e| invalid(format!("hash is not a valid argon2 PHC string: {e}")))?;
    let p = decoded.params;
    if p.memory_kib() > MAX_MEMORY_KIB || p.passes() > MAX_TIME_COST || p.lanes() > MAX_PARALLELISM
    {
        return Err(invalid(format!(
            "hash asks for more than the limits (m ≤ {MAX_MEMORY_KIB}, t ≤ {MAX_TIME_COST}, p ≤ {MAX_PARALLELISM})"
        )));
    }
    // Lanes run one after the other on this pool thread.
    let p = p
        .to_builder()
        .threads(1)
        .build()
        .map_err(|e| invalid(format!("hash has invalid argon2 parameters: {e}")))?;
    // The tag comparison is constant-time.
    match Argon2::new(decoded.algorithm, decoded.version, p).verify(
        password,
        &decoded.salt,
        &decoded.hash,
    ) {
        Ok(()) => Ok(true),
        Err(Argon2Error::VerifyMismatch) => Ok(false),
        Err(e) => Err(invalid(format!("hash cannot be verified: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TaskCtx {
        crate::pool::scheduler::tests_support::ctx()
    }

    #[test]
    fn hash_then_verify() {
        let p = params(64, 1, 1, 32).unwrap();
        let phc = hash_password(b"correct horse", p, &ctx()).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(verify_password(&phc, b"correct horse", &ctx()).unwrap());
        assert!(!verify_password(&phc, b"battery staple", &ctx()).unwrap());
        // A fresh salt each time.
        assert_ne!(
            phc,
            hash_password(b"correct horse", params(64, 1, 1, 32).unwrap(), &ctx()).unwrap()
        );
    }

    #[test]
    fn reference_vector() {
        // Produced by the reference `argon2` CLI: echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1
        let phc = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert!(verify_password(phc, b"password", &ctx()).unwrap());
        assert!(!verify_password(phc, b"passwort", &ctx()).unwrap());
    }

    #[test]
    fn rejects_bad_hashes_and_params() {
        for bad in ["", "nope", "$argon2id$v=19$m=64,t=1,p=1$", "$bcrypt$xyz"] {
            let err = verify_password(bad, b"x", &ctx()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArg, "{bad}");
        }
        let greedy = "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert_eq!(
            verify_password(greedy, b"x", &ctx()).unwrap_err().code(),
            ErrorCode::InvalidArg
        );
        assert!(params(7, 1, 1, 32).is_err());
        assert!(params(64, 0, 1, 32).is_err());
        assert!(params(64, 1, 0, 32).is_err());
        assert!(params(64, 1, 1, 3).is_err());
        assert!(params(MAX_MEMORY_KIB + 1, 1, 1, 32).is_err());
    }
}
