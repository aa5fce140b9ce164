#![no_main]
// Placeholder: filled by its owner.
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});
