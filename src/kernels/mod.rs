//! Native kernels run as pool tasks, one file per family.

mod hash;
mod numeric;
mod testing;
