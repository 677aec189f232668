//! Arbitrary bytes where revkv expects its stored bytes; the body is `revkv_fuzz::decode` (`fuzz/bodies/decode.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| revkv_fuzz::decode(data));
