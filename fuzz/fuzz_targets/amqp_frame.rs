#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_fuzz_targets::amqp_frame::amqp_frame(data));
