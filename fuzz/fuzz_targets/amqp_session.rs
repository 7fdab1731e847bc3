#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_fuzz_targets::amqp_session::amqp_session(data));
