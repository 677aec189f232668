//! Arbitrary header values and bodies through the HTTP adapter; the body is
//! `revkv::fuzzing::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| revkv::fuzzing::http(data));
