//! Arbitrary bytes as ConfigServer v2 messages, on both sides: decoding
//! gives a message or an error, never a panic, and whatever decodes encodes
//! and decodes again to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_sdk::fleet::proto::{
    FetchConfigRequest, FetchConfigResponse, HeartbeatRequest, HeartbeatResponse, Message,
};

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(m) = M::decode(data) {
        let again = M::decode(m.encode_to_vec().as_slice()).expect("re-decode");
        assert_eq!(again, m);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<HeartbeatRequest>(data);
    round_trip::<HeartbeatResponse>(data);
    round_trip::<FetchConfigRequest>(data);
    round_trip::<FetchConfigResponse>(data);
});
