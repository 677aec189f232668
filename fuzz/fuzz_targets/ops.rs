//! Operation sequences checked against a model; the body is `revkv::fuzzing::ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| revkv::fuzzing::ops(data));
