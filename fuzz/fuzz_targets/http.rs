//! Arbitrary header values and bodies through the HTTP adapter; the body is `revkv_fuzz::http` (`fuzz/bodies/http.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| revkv_fuzz::http(data));
