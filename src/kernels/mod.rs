//! The kernels' #[napi] entry points, one file per family: argument conversion, submit, result
//! conversion. The compute is `corepool_core::kernels`.

mod compress;
mod hash;
mod image;
mod numeric;
mod password;
mod testing;
