//! Hash kernel benchmark (written by the hash-kernel work; placeholder until then).
fn main() {}
