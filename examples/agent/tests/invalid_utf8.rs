//! Lines with invalid UTF-8, NUL bytes and JSON-special characters arrive
//! (invalid bytes as U+FFFD, NUL as \u0000) and break nothing around them.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn invalid_utf8_and_nul_bytes_arrive() {
    let env = Env::new();
    env.write_config(&["*.log"], "");
    let mut agent = env.spawn(AGENT);
    agent.wait_started();

    let odd: Vec<&[u8]> = vec![
        b"plain before",
        b"bad \xff byte",
        b"cut multibyte \xe6\x97",
        b"overlong \xc0\xaf and surrogate \xed\xa0\x80",
        b"nul \x00 inside",
        b"\x00\x00\x00",
        b"ctrl \x01\x1f\x7f bell \x07",
        b"quote \" backslash \\ tab \t cr \r end",
        "valid utf-8 \u{e9}\u{65e5}\u{672c} \u{1f600}".as_bytes(),
        b"\xff",
        b"plain after",
    ];
    let mut data = Vec::new();
    for l in &odd {
        data.extend_from_slice(l);
        data.push(b'\n');
    }
    // Normal lines after them must be unaffected.
    for s in 0..100 {
        data.extend_from_slice(seq_line(s, 40).as_bytes());
        data.push(b'\n');
    }
    std::fs::write(env.logs.join("odd.log"), &data).unwrap();

    let mut out = OutReader::new(&env.out, 40);
    out.keep_json = true;
    let report = wait_all_arrived(&mut out, 100, Duration::from_secs(10));
    agent.terminate();
    assert_eq!(report, SeqReport::default());
    let want: Vec<String> = odd
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    assert_eq!(out.others, want);

    // The raw output: one valid JSON object per line, NUL escaped.
    let raw = std::fs::read(&env.out).unwrap();
    let text = std::str::from_utf8(&raw).expect("out.jsonl is UTF-8");
    assert!(!raw.contains(&0), "raw NUL byte in out.jsonl");
    assert!(text.contains(r#""nul \u0000 inside""#), "{text}");
    assert_eq!(text.lines().count(), odd.len() + 100);
    for v in &out.json {
        assert!(v["__time__"]
            .as_str()
            .is_some_and(|t| t.parse::<u64>().is_ok()));
        assert_eq!(
            v["__tag__:__path__"].as_str(),
            Some(env.logs.join("odd.log").to_str().unwrap())
        );
    }
}
