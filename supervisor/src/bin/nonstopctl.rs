//! nonstopctl: placeholder replaced by the real client below.
fn main() {}
