#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_fuzz_targets::nsq_parsers::nsq_response(data));
