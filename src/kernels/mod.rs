//! Native kernels run as pool tasks, one file per family.

mod numeric;
mod testing;
