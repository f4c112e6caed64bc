//! libFuzzer target: GGUF parsing, model description and conversion of every tensor.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    claimlab_weights::fuzzing::gguf(data);
});
