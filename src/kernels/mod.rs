//! Native kernels run as pool tasks, one file per family.

mod compress;
mod hash;
mod image;
mod numeric;
mod password;
mod testing;
