//! Decoding arbitrary bytes as GBK or UTF-16 (either order), framed in
//! arbitrary chunk cuts: always valid UTF-8, never a panic; every
//! replacement is a U+FFFD in the output; UTF-16 framing in pieces gives
//! the lines of framing at once, on unit boundaries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::file::{
    Decoder, FileEncoding, Framer, FramerOptions, LongLinePolicy, Utf16Order,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let enc = match data[0] % 3 {
        0 => FileEncoding::Gbk,
        1 => FileEncoding::Utf16,
        _ => FileEncoding::Utf8,
    };
    let order = if data[0] & 4 == 0 {
        Utf16Order::Le
    } else {
        Utf16Order::Be
    };
    let body = &data[3..];
    let d = Decoder::new(enc, order);
    let mut out = Vec::new();
    let replaced = d.decode_into(body, data[0] & 8 != 0, &mut out);
    if enc == FileEncoding::Utf8 {
        assert_eq!(out, body);
    } else {
        let s = std::str::from_utf8(&out).expect("decoders write UTF-8");
        assert!(s.matches('\u{FFFD}').count() as u64 >= replaced);
    }

    let mut opts = FramerOptions::default();
    opts.max_line_bytes = 1 + data[1] as usize % 64;
    opts.long_lines = if data[0] & 16 == 0 {
        LongLinePolicy::Split
    } else {
        LongLinePolicy::Truncate
    };
    opts.strip_cr = data[0] & 32 != 0;
    let frame = |cuts: &[usize]| {
        let mut f = Framer::utf16(opts, order);
        let mut lines = Vec::new();
        let mut pos = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        ends.push(body.len());
        ends.sort_unstable();
        for end in ends {
            if end < pos {
                continue;
            }
            let buf = &body[pos..end];
            let n = f.frame(buf, |r| {
                assert!(r.start % 2 == 0 && r.end % 2 == 0 && r.end <= buf.len());
                lines.push(body[pos + r.start..pos + r.end].to_vec());
            });
            assert!(n <= buf.len() && n.is_multiple_of(2));
            pos += n;
        }
        let rest = &body[pos..];
        assert_eq!(
            f.flush_partial(rest, |r| lines.push(rest[r].to_vec())),
            rest.len()
        );
        lines
    };
    let whole = frame(&[]);
    let cut = frame(&[data[2] as usize, data[1] as usize * 3]);
    assert_eq!(whole, cut);
    let mut out = Vec::new();
    for l in &whole {
        Decoder::new(FileEncoding::Utf16, order).decode_into(l, false, &mut out);
    }
    assert!(std::str::from_utf8(&out).is_ok());
});
