// With no std there is no libc on the link line; the host target still needs
// it for memcpy/memset and the C start-up code that calls `main`.
fn main() {
    println!("cargo:rustc-link-arg-bins=-lc");
}
