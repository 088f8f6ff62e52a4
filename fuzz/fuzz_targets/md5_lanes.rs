//! Arbitrary messages through the multi-buffer MD5 (AVX2 lanes): every
//! digest equals the one-at-a-time digest. The first byte picks how many
//! messages (1 to 12, so a second partial group of lanes too); the following
//! bytes give their lengths; the rest is cut into them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::sls::md5_lanes::{md5_many, md5_one};

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 12) + 1;
    if rest.len() < n {
        return;
    }
    let (lens, mut body) = rest.split_at(n);
    let mut messages = Vec::with_capacity(n);
    for &l in lens {
        // Lengths up to 255 * 3 bytes: one to thirteen blocks.
        let take = (usize::from(l) * 3).min(body.len());
        let (m, tail) = body.split_at(take);
        messages.push(m);
        body = tail;
    }
    let got = md5_many(&messages);
    assert_eq!(got.len(), messages.len());
    for (m, d) in messages.iter().zip(&got) {
        assert_eq!(*d, md5_one(m), "length {}", m.len());
    }
});
