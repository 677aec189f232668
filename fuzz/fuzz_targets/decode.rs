//! Arbitrary bytes where revkv expects its stored bytes; the body is `revkv::fuzzing::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| revkv::fuzzing::decode(data));
