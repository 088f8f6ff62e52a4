use super::*;
use crate::sls::sign::{sign_v1, sign_v4};

const T: u64 = 1_262_507_627; // 2010-01-03 08:33:47 UTC, a Sunday

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn req<'a>(sig: &'a SignatureVersion, body: &'a [u8]) -> PutLogs<'a> {
    PutLogs {
        project: "proj",
        logstore: "app",
        host: "proj.cn-hangzhou.log.aliyuncs.com",
        hash_key: None,
        compress: CompressType::Lz4,
        raw_size: 4096,
        body,
        body_md5: None,
        date: at(T),
        signature: sig,
    }
}

fn view(r: &HttpRequest) -> Vec<(&str, &str)> {
    r.headers
        .iter()
        .filter(|(k, _)| k != "authorization")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn v1_request_has_every_header_and_a_valid_signature() {
    let creds = Credentials::new("id", "secret", None);
    let r = put_logs(&req(&SignatureVersion::V1, b"BODY"), &creds);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path_and_query, "/logstores/app/shards/lb");
    let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "content-type",
            "content-length",
            "content-md5",
            "host",
            "x-log-apiversion",
            "x-log-bodyrawsize",
            "x-log-compresstype",
            "date",
            "x-log-signaturemethod",
            "authorization"
        ]
    );
    assert_eq!(r.header("Content-Type"), Some("application/x-protobuf"));
    assert_eq!(r.header("content-length"), Some("4"));
    assert_eq!(r.header("content-md5"), Some(content_md5(b"BODY").as_str()));
    assert_eq!(r.header("host"), Some("proj.cn-hangzhou.log.aliyuncs.com"));
    assert_eq!(r.header("x-log-apiversion"), Some("0.6.0"));
    assert_eq!(r.header("x-log-bodyrawsize"), Some("4096"));
    assert_eq!(r.header("x-log-compresstype"), Some("lz4"));
    assert_eq!(r.header("date"), Some("Sun, 03 Jan 2010 08:33:47 GMT"));
    assert_eq!(r.header("x-log-signaturemethod"), Some("hmac-sha1"));
    assert_eq!(r.header("x-log-project"), None);
    assert_eq!(r.header("x-acs-security-token"), None);
    let want = sign_v1(&creds, "POST", "/logstores/app/shards/lb", &[], &view(&r));
    assert_eq!(r.header("authorization"), Some(want.as_str()));
}

#[test]
fn content_md5_is_uppercase_hex() {
    assert_eq!(content_md5(b""), "D41D8CD98F00B204E9800998ECF8427E");
    assert_eq!(content_md5(b"abc"), "900150983CD24FB0D6963F7D28E17F72");
}

#[test]
fn uncompressed_bodies_have_no_compresstype() {
    let creds = Credentials::new("id", "secret", None);
    let mut p = req(&SignatureVersion::V1, b"raw");
    p.compress = CompressType::None;
    let r = put_logs(&p, &creds);
    assert_eq!(r.header("x-log-compresstype"), None);
    p.compress = CompressType::Zstd;
    assert_eq!(
        put_logs(&p, &creds).header("x-log-compresstype"),
        Some("zstd")
    );
}

#[test]
fn hash_key_routes_and_is_signed_in_the_query() {
    let creds = Credentials::new("id", "secret", None);
    let mut p = req(&SignatureVersion::V1, b"x");
    p.hash_key = Some("5f1a");
    let r = put_logs(&p, &creds);
    assert_eq!(r.path_and_query, "/logstores/app/shards/route?key=5f1a");
    let want = sign_v1(
        &creds,
        "POST",
        "/logstores/app/shards/route",
        &[("key", "5f1a")],
        &view(&r),
    );
    assert_eq!(r.header("authorization"), Some(want.as_str()));
    // A key needing escapes is escaped in the target.
    p.hash_key = Some("a b/c");
    assert_eq!(
        put_logs(&p, &creds).path_and_query,
        "/logstores/app/shards/route?key=a%20b%2Fc"
    );
}

#[test]
fn bare_hosts_get_x_log_project() {
    let creds = Credentials::new("id", "secret", None);
    for (host, project_header) in [
        ("127.0.0.1:8080", true),
        ("cn-hangzhou.log.aliyuncs.com", true),
        ("projx.cn-hangzhou.log.aliyuncs.com", true),
        ("proj.cn-hangzhou.log.aliyuncs.com", false),
    ] {
        let mut p = req(&SignatureVersion::V1, b"x");
        p.host = host;
        let r = put_logs(&p, &creds);
        assert_eq!(r.header("host"), Some(host));
        assert_eq!(
            r.header("x-log-project"),
            project_header.then_some("proj"),
            "{host}"
        );
    }
}

#[test]
fn sts_token_is_sent_signed_and_redacted_in_debug() {
    let creds = Credentials::new("id", "SECRETKEY", Some("STSTOKEN".into()));
    let r = put_logs(&req(&SignatureVersion::V1, b"x"), &creds);
    assert_eq!(r.header("x-acs-security-token"), Some("STSTOKEN"));
    let want = sign_v1(&creds, "POST", "/logstores/app/shards/lb", &[], &view(&r));
    assert_eq!(r.header("authorization"), Some(want.as_str()));
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("STSTOKEN"), "{dbg}");
    assert!(!dbg.contains(r.header("authorization").unwrap()), "{dbg}");
    assert!(!dbg.contains("SECRETKEY"), "{dbg}");
    assert!(dbg.contains("x-log-bodyrawsize"), "{dbg}");
}

#[test]
fn v4_request_has_date_and_sha_and_a_valid_signature() {
    let creds = Credentials::new("id", "secret", None);
    let sig = SignatureVersion::V4 {
        region: "cn-hangzhou".into(),
    };
    let r = put_logs(&req(&sig, b"BODY"), &creds);
    assert_eq!(r.header("x-log-date"), Some("20100103T083347Z"));
    let sha = crate::sls::content_sha256(b"BODY");
    assert_eq!(r.header("x-log-content-sha256"), Some(sha.as_str()));
    assert_eq!(r.header("date"), None);
    assert_eq!(r.header("x-log-signaturemethod"), None);
    let want = sign_v4(
        &creds,
        "cn-hangzhou",
        "POST",
        "/logstores/app/shards/lb",
        &[],
        &view(&r),
        &sha,
    );
    let auth = r.header("authorization").unwrap();
    assert_eq!(auth, want);
    assert!(auth.starts_with(
        "SLS4-HMAC-SHA256 Credential=id/20100103/cn-hangzhou/sls/aliyun_v4_request,Signature="
    ));
}

#[test]
fn empty_body_has_no_md5_and_the_empty_sha() {
    let creds = Credentials::new("id", "secret", None);
    let sig = SignatureVersion::V4 { region: "r".into() };
    let r = put_logs(&req(&sig, b""), &creds);
    assert_eq!(r.header("content-md5"), None);
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(
        r.header("x-log-content-sha256"),
        Some(crate::sls::sign::EMPTY_SHA256)
    );
}

#[test]
fn http_dates() {
    assert_eq!(http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(at(T)), "Sun, 03 Jan 2010 08:33:47 GMT");
    assert_eq!(http_date(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(
        http_date(at(4_102_444_799)),
        "Thu, 31 Dec 2099 23:59:59 GMT"
    );
    // Before the epoch: clamped.
    assert_eq!(
        http_date(UNIX_EPOCH - Duration::from_secs(5)),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
    assert_eq!(iso8601_basic(at(T)), "20100103T083347Z");
}

#[test]
fn http_dates_round_trip_every_day_for_decades() {
    let mut t = 0u64;
    while t < 4_102_444_800 {
        let s = http_date(at(t));
        assert_eq!(parse_http_date(&s), Some(at(t)), "{s}");
        t += 86_400 + 3_661;
    }
}

#[test]
fn parse_http_date_accepts_variants_and_rejects_junk() {
    assert_eq!(parse_http_date("Mon, 3 Jan 2010 08:33:47 GMT"), Some(at(T)));
    assert_eq!(
        parse_http_date(" Sun, 03 Jan 2010 08:33:47 UTC "),
        Some(at(T))
    );
    for bad in [
        "",
        "Sun, 03 Jan 2010 08:33:47",
        "Sun, 03 Jan 2010 08:33:47 PST",
        "Sunday, 03-Jan-10 08:33:47 GMT",
        "Sun Jan  3 08:33:47 2010",
        "Sun, 31 Feb 2010 08:33:47 GMT",
        "Sun, 03 Foo 2010 08:33:47 GMT",
        "Sun, 03 Jan 2010 24:00:00 GMT",
        "Sun, 03 Jan 2010 08:33 GMT",
        "Sun, 03 Jan 1969 08:33:47 GMT",
        "Sun, +3 Jan 2010 08:33:47 GMT",
        "Sun, 03 Jan 2010 08:33:47 GMT extra",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad:?}");
    }
}

#[test]
fn a_precomputed_body_md5_makes_the_same_request() {
    let creds = Credentials::new("id", "secret", None);
    let body = b"compressed body bytes";
    let computed = put_logs(&req(&SignatureVersion::V1, body), &creds);
    let given = put_logs(
        &PutLogs {
            body_md5: Some(crate::sls::md5_lanes::md5_one(body)),
            ..req(&SignatureVersion::V1, body)
        },
        &creds,
    );
    assert_eq!(computed.headers, given.headers);
    assert_eq!(
        given.header("content-md5"),
        Some(content_md5(body).as_str())
    );
}

/// An IP endpoint's `Host` is `{project}.{ip}[:port]`; v4 signs it as
/// sent (v1 does not cover `Host`), so a server that sees another Host
/// computes another signature.
#[test]
fn v4_signs_the_project_host_of_an_ip_endpoint() {
    let creds = Credentials::new("id", "secret", None);
    let sig = SignatureVersion::V4 {
        region: "cn-hangzhou".into(),
    };
    let mut p = req(&sig, b"BODY");
    p.host = "proj.10.0.0.5:8080";
    let r = put_logs(&p, &creds);
    assert_eq!(r.header("host"), Some("proj.10.0.0.5:8080"));
    assert_eq!(r.header("x-log-project"), None);
    let sha = crate::sls::sign::content_sha256(b"BODY");
    let canonical = crate::sls::sign::canonical_request_v4(
        "POST",
        "/logstores/app/shards/lb",
        &[],
        &view(&r),
        &sha,
    );
    assert!(
        canonical.contains("\nhost:proj.10.0.0.5:8080\n"),
        "{canonical}"
    );
    let want = sign_v4(
        &creds,
        "cn-hangzhou",
        "POST",
        "/logstores/app/shards/lb",
        &[],
        &view(&r),
        &sha,
    );
    assert_eq!(r.header("authorization"), Some(want.as_str()));
    // The same request seen with the bare IP as Host does not verify.
    let bare: Vec<(&str, &str)> = view(&r)
        .into_iter()
        .map(|(k, v)| {
            if k == "host" {
                (k, "10.0.0.5:8080")
            } else {
                (k, v)
            }
        })
        .collect();
    let other = sign_v4(
        &creds,
        "cn-hangzhou",
        "POST",
        "/logstores/app/shards/lb",
        &[],
        &bare,
        &sha,
    );
    assert_ne!(r.header("authorization"), Some(other.as_str()));
}
