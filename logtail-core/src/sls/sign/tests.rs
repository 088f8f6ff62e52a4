use super::*;
use proptest::prelude::*;

fn creds(id: &str, secret: &str) -> Credentials {
    Credentials::new(id, secret, None)
}

// --- v1 -------------------------------------------------------------------

/// Published vector (Go SDK tests; the reference file).
#[test]
fn v1_published_vector() {
    let auth = sign_v1(
        &creds("mockAccessKeyID", "mockAccessKeySecret"),
        "GET",
        "/logstores",
        &[],
        &[
            ("x-log-apiversion", "0.6.0"),
            ("x-log-signaturemethod", "hmac-sha1"),
            ("x-log-bodyrawsize", "0"),
            ("Date", "Mon, 3 Jan 2010 08:33:47 GMT"),
        ],
    );
    assert_eq!(auth, "LOG mockAccessKeyID:Rwm6cTKzoti4HWoe+GKcb6Kv07E=");
}

/// Go SDK `TestSignV1Case2`: a protobuf body with Content-MD5 and type.
#[test]
fn v1_go_sdk_protobuf_body() {
    let body: &[u8] = &[
        10, 50, 10, 30, 8, 248, 178, 147, 158, 5, 18, 22, 10, 7, 84, 101, 115, 116, 75, 101, 121,
        18, 11, 84, 101, 115, 116, 67, 111, 110, 116, 101, 110, 116, 26, 0, 34, 14, 49, 48, 46, 50,
        51, 48, 46, 50, 48, 49, 46, 49, 49, 55,
    ];
    let md5 = crate::sls::content_md5(body);
    let auth = sign_v1(
        &creds("mockAccessKeyID", "mockAccessKeySecret"),
        "GET",
        "/logstores/app_log",
        &[],
        &[
            ("x-log-apiversion", "0.6.0"),
            ("x-log-signaturemethod", "hmac-sha1"),
            ("x-log-bodyrawsize", "50"),
            ("Content-MD5", &md5),
            ("Content-Type", "application/x-protobuf"),
            ("Content-Length", "50"),
            ("Date", "Mon, 3 Jan 2010 08:33:47 GMT"),
        ],
    );
    assert_eq!(auth, "LOG mockAccessKeyID:87xQWqFaOSewqRIma8kPjGYlXHc=");
}

/// The official Rust crate's own test cases (their tests pin the date to
/// the epoch).
#[test]
fn v1_official_rust_crate_cases() {
    const DATE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";
    let empty = sign_v1(
        &creds("", ""),
        "GET",
        "/",
        &[],
        &[
            ("x-log-apiversion", "0.6.0"),
            ("x-log-signaturemethod", "hmac-sha1"),
            ("content-length", "0"),
            ("date", DATE),
        ],
    );
    assert_eq!(empty, "LOG :SApFTtfTFKHmzdEdaMe5TjNn+RQ=");

    let body = "\n            {\"key\": \"value\"}\n        ";
    let md5 = crate::sls::content_md5(body.as_bytes());
    assert_eq!(md5, "CE688F8D1AC3ED309BA9BE0A5ABAFCE5");
    let base = [
        ("content-type", "application/json"),
        ("x-log-apiversion", "0.6.0"),
        ("x-log-signaturemethod", "hmac-sha1"),
        ("content-md5", md5.as_str()),
        ("content-length", "25"),
        ("date", DATE),
    ];
    let c = creds("test-access-key-id", "test-access-key");
    let q = [("type", "log"), ("offset", "0"), ("line", "100")];
    assert_eq!(
        sign_v1(&c, "POST", "/logstores/test-logstore", &q, &base),
        "LOG test-access-key-id:4pL2xZJERC3tPKtRiHh9+nMG3tI="
    );
    let mut with_token = base.to_vec();
    with_token.push(("x-acs-security-token", "test-security-token"));
    assert_eq!(
        sign_v1(&c, "POST", "/logstores/test-logstore", &q, &with_token),
        "LOG test-access-key-id:ZQt+0wIvpd+O9yIJKeKxZTJ2hv0="
    );
    let q4 = [
        ("type", "log"),
        ("count", "1000"),
        ("cursor", "MTczNzY2OTAzNjAxNzIxODQ1NA=="),
    ];
    assert_eq!(
        sign_v1(&c, "POST", "/logstores/test/shards/2", &q4, &with_token),
        "LOG test-access-key-id:K3rw5WXRe77aZ/meSyEa8NNUYFc="
    );
}

#[test]
fn v1_string_to_sign_layout() {
    let s = string_to_sign_v1(
        "POST",
        "/logstores/a/shards/route",
        &[("key", "b c"), ("a", "1")],
        &[
            ("X-Log-Z", "z"),
            ("Content-Type", "application/x-protobuf"),
            ("x-acs-security-token", "tok"),
            ("Host", "p.example"),
            ("Date", "D"),
            ("x-log-a", "a"),
            ("Content-MD5", "M"),
        ],
    );
    assert_eq!(
        s,
        "POST\nM\napplication/x-protobuf\nD\nx-acs-security-token:tok\nx-log-a:a\nx-log-z:z\n\
         /logstores/a/shards/route?a=1&key=b c"
    );
}

/// Our v1 Authorization equals the official signer's on its own headers.
#[allow(clippy::too_many_arguments)]
fn official_v1(
    id: &str,
    secret: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    query: &[(String, String)],
    extra: &[(String, String)],
    body: &[u8],
) -> (String, String) {
    let mut headers = http::HeaderMap::new();
    for (k, v) in extra {
        headers.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let theirs = aliyun_log_sdk_sign::sign_v1(
        id,
        secret,
        token,
        http::Method::from_bytes(method.as_bytes()).unwrap(),
        path,
        &mut headers,
        query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>()
            .into(),
        (!body.is_empty()).then_some(body),
    )
    .unwrap();
    // Sign the same request (the headers their signer completed, Date
    // included) with ours.
    let hs: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| *k != http::header::AUTHORIZATION)
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let view: Vec<(&str, &str)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let q: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let c = Credentials::new(id, secret, token.map(str::to_owned));
    (theirs, sign_v1(&c, method, path, &q, &view))
}

#[test]
fn v1_matches_official_signer_with_sts_token() {
    let (theirs, ours) = official_v1(
        "LTAI5tExample",
        "secretsecret",
        Some("CAIS+token/=="),
        "POST",
        "/logstores/app/shards/lb",
        &[],
        &[
            ("content-type".into(), "application/x-protobuf".into()),
            ("x-log-bodyrawsize".into(), "1234".into()),
            ("x-log-compresstype".into(), "lz4".into()),
        ],
        b"some compressed body",
    );
    assert_eq!(ours, theirs);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn v1_matches_official_signer_on_random_requests(
        id in "[A-Za-z0-9]{0,24}",
        secret in "[ -~]{0,30}",
        token in proptest::option::of("[A-Za-z0-9+/=]{1,40}"),
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")],
        path in "/[a-z0-9_/-]{0,30}",
        query in proptest::collection::vec(("[a-zA-Z0-9_-]{1,8}", "[!-~]{0,12}"), 0..4),
        headers in proptest::collection::btree_map(
            prop_oneof!["x-log-[a-z0-9-]{1,12}", "x-acs-[a-z0-9-]{1,12}", "x-other-[a-z]{1,5}", Just("content-type".to_owned())],
            "[!-~][ -~]{0,20}[!-~]",
            0..6,
        ),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let extra: Vec<(String, String)> = headers.into_iter()
            .filter(|(k, _)| k != "x-acs-security-token" && k != "x-log-apiversion" && k != "x-log-signaturemethod")
            .collect();
        let (theirs, ours) = official_v1(&id, &secret, token.as_deref(), method, &path, &query, &extra, &body);
        prop_assert_eq!(ours, theirs);
    }
}

// --- v4 -------------------------------------------------------------------

const V4_ID: &str = "acsddda21dsd";
const V4_SECRET: &str = "zxasdasdasw2";
const V4_DATE: &str = "20220808T032330Z";
const V4_BODY: &str = "adasd= -asd zcas";

fn v4(
    region: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    extra: &[(&str, &str)],
    body: &str,
) -> String {
    let sha = if body.is_empty() {
        EMPTY_SHA256.to_owned()
    } else {
        content_sha256(body.as_bytes())
    };
    let mut headers = extra.to_vec();
    headers.push(("x-log-date", V4_DATE));
    headers.push(("x-log-content-sha256", &sha));
    sign_v4(
        &creds(V4_ID, V4_SECRET),
        region,
        method,
        path,
        query,
        &headers,
        &sha,
    )
}

fn sig(auth: &str) -> &str {
    auth.rsplit_once("Signature=").map_or("", |(_, s)| s)
}

/// The SDK tests' headers: only `x-log-test` and `x-acs-ppp` are signed.
const SDK_HEADERS: [(&str, &str); 5] = [
    ("hello", "world"),
    ("hello-Text", "a12X- "),
    (" Ko ", ""),
    ("x-log-test", "het123"),
    ("x-acs-ppp", "dds"),
];
/// The SDK tests' query: keys with spaces, an empty key, an empty value.
const SDK_QUERY: [(&str, &str); 4] = [(" abc", "efg"), (" agc ", ""), ("", "efg"), ("A-bc", "eFg")];

/// Published vector (Go and Python SDK tests; the reference file).
#[test]
fn v4_published_vector() {
    let auth = v4("cn-shanghai", "POST", "/logstores", &[], &[], V4_BODY);
    assert_eq!(
        auth,
        "SLS4-HMAC-SHA256 Credential=acsddda21dsd/20220808/cn-shanghai/sls/aliyun_v4_request,\
         Signature=8a10a5e723cb2e75964816de660b2c16a58af8bc0261f7f0722d832468c76ce8"
    );
}

/// The Go SDK's v4 cases (`TestSignV4Case1`, 3, 4, 5): headers that are
/// not signed, odd query keys, empty bodies, GET, and a path and query
/// needing percent-encoding. (The Python SDK's tests use the same inputs
/// but expect other signatures for these four; its published vector above
/// agrees with ours. We follow Go, whose signer matches the server
/// LoongCollector talks to.)
#[test]
fn v4_go_sdk_cases() {
    let r = "cn-hangzhou";
    let mut hs = SDK_HEADERS.to_vec();
    hs.push(("", "AA"));
    hs.push(("Content-Length", "16"));
    assert_eq!(
        sig(&v4(r, "POST", "/logstores", &SDK_QUERY, &hs, V4_BODY)),
        "bcdc405707a79dd61b1407a31613e36cbec25d3bbeecf7101add56aacadbdf1e"
    );
    assert_eq!(
        sig(&v4(r, "POST", "/logstores", &SDK_QUERY, &hs, "")),
        "b657145686c93047f9c71444e1f2d4bed5ed02f6f24a996ef5067676221de732"
    );
    assert_eq!(
        sig(&v4(r, "GET", "/logstores", &SDK_QUERY, &hs, "")),
        "5fb4e9302126de99c05643f8f7469eb6c35b7851a04c495dd90840a741451f1b"
    );
    let mut q = SDK_QUERY.to_vec();
    q.push(("abs-ij*asd/vc", "a~js+d ada"));
    q.push(("a abAas123/vc", "a~jdad a2ADFs+d ada"));
    assert_eq!(
        sig(&v4(
            r,
            "POST",
            "/logstores/hello/a+*~bb/cc",
            &q,
            &hs,
            V4_BODY
        )),
        "6e3bae51420ade037431836e0b9791a4b750982376fa7e056585af7dcd10eae1"
    );
}

#[test]
fn v4_canonical_request_layout() {
    let c = canonical_request_v4(
        "POST",
        "/logstores/a b/shards/route",
        &[("key", "x y*"), ("seqid", "")],
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Host", "p.cn-hangzhou.log.aliyuncs.com"),
            ("Date", "not signed"),
            ("x-log-date", " 20220808T032330Z "),
        ],
        EMPTY_SHA256,
    );
    assert_eq!(
        c,
        format!(
            "POST\n/logstores/a%20b/shards/route\nkey=x%20y%2A&seqid\n\
             content-type:application/x-protobuf\nhost:p.cn-hangzhou.log.aliyuncs.com\n\
             x-log-date:20220808T032330Z\n\n\
             content-type;host;x-log-date\n{EMPTY_SHA256}"
        )
    );
}

#[test]
fn uri_encoding_matches_the_python_sdk() {
    let mut s = String::new();
    uri_encode("123abc!@#$%^&*()-=_+ ~|\\/", false, &mut s);
    assert_eq!(
        s,
        "123abc%21%40%23%24%25%5E%26%2A%28%29-%3D_%2B%20~%7C%5C%2F"
    );
    let mut s = String::new();
    uri_encode("!@#$%^&*()=-+ ~./_[()]%20你好\0\u{0111}❤😓", false, &mut s);
    assert_eq!(
        s,
        "%21%40%23%24%25%5E%26%2A%28%29%3D-%2B%20~.%2F_%5B%28%29%5D%2520%E4%BD%A0%E5%A5%BD%00%C4%91%E2%9D%A4%F0%9F%98%93"
    );
}

// --- secrets --------------------------------------------------------------

#[test]
fn secrets_never_print() {
    let c = Credentials::new("AKID", "TOPSECRETVALUE", Some("STSTOKENVALUE".into()));
    let dbg = format!("{c:?} {c:#?} {} {:?}", c.secret(), c.security_token());
    assert!(dbg.contains("AKID"));
    assert!(!dbg.contains("TOPSECRETVALUE"), "{dbg}");
    assert!(!dbg.contains("STSTOKENVALUE"), "{dbg}");
    assert_eq!(c.secret().expose(), "TOPSECRETVALUE");
    assert_eq!(
        c.security_token().map(Secret::expose),
        Some("STSTOKENVALUE")
    );
    // Signatures carry the id, never the secret.
    let a1 = sign_v1(
        &c,
        "GET",
        "/",
        &[],
        &[("x-acs-security-token", "STSTOKENVALUE")],
    );
    let a4 = sign_v4(&c, "cn-hangzhou", "GET", "/", &[], &[], EMPTY_SHA256);
    for a in [a1, a4] {
        assert!(
            a.contains("AKID") && !a.contains("TOPSECRETVALUE") && !a.contains("STSTOKENVALUE")
        );
    }
}

#[test]
fn content_sha256_of_empty_is_the_constant() {
    assert_eq!(content_sha256(b""), EMPTY_SHA256);
}
