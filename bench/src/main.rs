//! `courier-bench` binary: the command line lives in the library
//! ([`courier_bench::main_with_args`]) so `courier bench` can run it too.

#[global_allocator]
static ALLOCATOR: courier_bench::CountingAllocator = courier_bench::CountingAllocator;

fn main() {
    std::process::exit(courier_bench::main_with_args(std::env::args_os()));
}
