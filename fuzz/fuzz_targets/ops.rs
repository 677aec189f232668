//! Operation sequences checked against a model; the body is `revkv_fuzz::ops` (`fuzz/bodies/ops.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| revkv_fuzz::ops(data));
