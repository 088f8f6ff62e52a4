//! The web console and the admin token.
//!
//! **Console.** `GET /` is a page rendered by the server from the same data
//! as `GET /api/v1/overview`: the machine groups; each group's hosts with
//! their heartbeat status (`OK` while heartbeats arrive, `FAIL` once none
//! came for [`ServerOptions::heartbeat_timeout`](crate::server::ServerOptions::heartbeat_timeout)),
//! last heartbeat, version, reported status, CPU and memory, and each
//! config the host runs with `APPLIED`/`FAILED` and the message; the hosts
//! in no group; the 50 most recent alarms. A few lines of inline
//! JavaScript fetch the page's main part again (`GET /console/main`, HTML
//! rendered by the server) every 2 s and put it in place, so the page
//! follows the fleet without a reload; there is no build step and nothing
//! but the page itself is loaded. Every text that comes from agents or
//! users (host names, messages, config names) is HTML-escaped.
//!
//! **Admin token.** With [`ServerOptions::admin_token`](crate::server::ServerOptions::admin_token)
//! set (`--admin-token` or `LOGTAIL_ADMIN_TOKEN`), the admin API and the
//! console answer 401 unless the request carries
//! `Authorization: Bearer TOKEN`. A browser opens the console once with
//! `/?token=TOKEN`, or posts it with the form of the 401 page: the server
//! answers with a redirect to `/` and the cookie `logtail_admin_token`
//! (`HttpOnly`, `SameSite=Strict`), which is then accepted for `GET`
//! requests only, so the console can read but a page elsewhere cannot
//! change anything. Changes always need the header. The agent endpoints
//! (`/Agent/…`) never need the token. Without a token, the admin API and
//! the console are open to whoever reaches the port: keep `--listen` on a
//! loopback address then (the server warns at start when it is not).

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::server::{ConfigServer, Reply};

/// The cookie that carries the admin token of a console session.
pub const COOKIE: &str = "logtail_admin_token";

/// How often the console fetches its main part again, in milliseconds.
pub const REFRESH_MS: u64 = 2000;

/// The admin token: 8–256 visible ASCII characters other than `;`, `,`,
/// `"` and `\` (it travels in a cookie). Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// Checks `token`; the error says what is wrong (without the token).
    pub fn new(token: &str) -> Result<AdminToken, String> {
        let n = token.chars().count();
        if !(8..=256).contains(&n) {
            return Err(format!(
                "the admin token must be 8–256 characters long (is {n})"
            ));
        }
        if let Some(c) = token
            .chars()
            .find(|c| !c.is_ascii_graphic() || matches!(c, ';' | ',' | '"' | '\\'))
        {
            return Err(format!(
                "the admin token may hold visible ASCII characters other than ; , \" and \\ only (found {:?})",
                if c.is_ascii_graphic() { c } else { '?' }
            ));
        }
        Ok(AdminToken(token.to_string()))
    }

    /// Whether `given` is the token (in time independent of where they
    /// differ).
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The `name=value` pairs of a query string, percent-decoded (`+` is a
/// space); pairs without `=` have an empty value.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes `s` for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn cookie<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn html(status: u16, body: String) -> Reply {
    Reply {
        status,
        content_type: "text/html; charset=utf-8",
        body: body.into_bytes(),
        headers: vec![("Cache-Control", "no-store".into())],
    }
}

fn unauthorized(path: &str, why: &str) -> Reply {
    if path == "/" {
        let mut r = html(401, login_page(why));
        r.headers.push((
            "WWW-Authenticate",
            "Bearer realm=\"logtail-config-server\"".into(),
        ));
        return r;
    }
    let mut r = Reply::json(
        401,
        &json!({"error": format!("{why}: send Authorization: Bearer TOKEN (the server's --admin-token)")}),
    );
    r.headers.push((
        "WWW-Authenticate",
        "Bearer realm=\"logtail-config-server\"".into(),
    ));
    r
}

/// Answers one HTTP request: the agent endpoints, the console and the
/// admin API, the latter two behind the admin token when one is set (see
/// the [module](self)).
pub fn respond(
    server: &ConfigServer,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path.starts_with("/Agent/") {
        return server.handle(method, url, body);
    }
    if let Some(token) = &server.options().admin_token {
        let bearer = header(headers, "authorization").map(|v| {
            v.trim()
                .strip_prefix("Bearer ")
                .or_else(|| v.trim().strip_prefix("bearer "))
                .unwrap_or("")
                .trim()
        });
        match bearer {
            Some(b) if token.matches(b) => {}
            Some(_) => return unauthorized(path, "wrong admin token"),
            None => {
                let from_cookie =
                    method == "GET" && cookie(headers, COOKIE).is_some_and(|c| token.matches(c));
                if !from_cookie {
                    // The token given once: `GET /?token=` or the login
                    // form's `POST /` (`token=…`, URL-encoded).
                    let form = match (path, method) {
                        ("/", "GET") => query_pairs(query),
                        ("/", "POST") => query_pairs(&String::from_utf8_lossy(body)),
                        _ => Vec::new(),
                    };
                    let given = form.into_iter().find(|(k, _)| k == "token");
                    return match given {
                        Some((_, t)) if token.matches(&t) => Reply {
                            status: 303,
                            content_type: "text/plain; charset=utf-8",
                            body: b"see /".to_vec(),
                            headers: vec![
                                ("Location", "/".into()),
                                (
                                    "Set-Cookie",
                                    format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", t),
                                ),
                                ("Cache-Control", "no-store".into()),
                            ],
                        },
                        Some(_) => unauthorized(path, "wrong admin token"),
                        None => unauthorized(path, "admin token required"),
                    };
                }
            }
        }
    }
    match (path, method) {
        ("/" | "/index.html", "GET") => html(200, render_page(&server.overview())),
        ("/console/main", "GET") => html(200, render_main(&server.overview())),
        ("/" | "/index.html" | "/console/main", _) => Reply::json(
            405,
            &json!({"error": format!("{method} is not allowed on {path}")}),
        ),
        _ => server.handle(method, url, body),
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.ok{color:#17702a;font-weight:600}.fail{color:#b00020;font-weight:700}\
.cstatus.failed{color:#b00020;font-weight:700}.cstatus.applied{color:#17702a}\
ul{margin:0;padding-left:1.1em}.muted{color:#777}.stale{color:#b00020}\
.level-3,.level-2{color:#b00020}.level-1{color:#a15c00}";

/// The whole console page for an overview (see
/// [`ConfigServer::overview`]).
pub fn render_page(overview: &Value) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>logtail config server</title><meta name=\"viewport\" content=\"width=device-width\">\
<style>{STYLE}</style></head><body><h1>logtail config server</h1>\
<main id=\"main\">{}</main>\
<script>(function(){{var main=document.getElementById('main');\
function stale(m){{var u=document.getElementById('updated');if(u){{u.textContent='Not updated: '+m+' (retrying)';u.className='stale';}}}}\
function refresh(){{fetch('/console/main',{{credentials:'same-origin',cache:'no-store'}}).then(function(r){{\
if(r.status===401){{location.reload();return null;}}if(!r.ok){{throw new Error('HTTP '+r.status);}}return r.text();}})\
.then(function(t){{if(t!==null){{main.innerHTML=t;}}}}).catch(function(e){{stale(e.message);}});}}\
setInterval(refresh,{REFRESH_MS});}})();</script></body></html>\n",
        render_main(overview)
    )
}

/// The main part of the console (what the page fetches again).
pub fn render_main(o: &Value) -> String {
    let now = o["now_ms"].as_u64().unwrap_or(0);
    let timeout = o["heartbeat_timeout_ms"].as_u64().unwrap_or(0);
    let mut h = String::new();
    let _ = write!(
        h,
        "<p id=\"updated\" class=\"muted\">Updated {} UTC. A host is FAIL after {} without a heartbeat.</p>",
        clock(now),
        duration(timeout)
    );
    let groups = o["groups"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if groups.is_empty() {
        h.push_str("<p class=\"muted\">No machine groups yet.</p>");
    }
    for g in groups {
        let name = g["name"].as_str().unwrap_or("");
        let hosts = g["hosts"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let ok = hosts.iter().filter(|x| x["status"] == "OK").count();
        let list = |v: &Value| -> String {
            let items: Vec<String> = v
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .map(escape)
                .collect();
            if items.is_empty() {
                "none".into()
            } else {
                items.join(", ")
            }
        };
        let _ = write!(
            h,
            "<section class=\"group\" data-group=\"{n}\"><h2>Machine group <span class=\"group-name\">{n}</span></h2>\
<p class=\"summary\">{kind}: {members} · configs: {configs} · {total} host(s), {ok} OK</p>",
            n = escape(name),
            kind = escape(g["type"].as_str().unwrap_or("")),
            members = list(&g["members"]),
            configs = list(&g["configs"]),
            total = hosts.len(),
        );
        hosts_table(&mut h, hosts, now);
        h.push_str("</section>");
    }
    if let Some(others) = o["other_hosts"].as_array().filter(|a| !a.is_empty()) {
        h.push_str("<section class=\"group other\"><h2>Hosts in no group</h2>");
        hosts_table(&mut h, others, now);
        h.push_str("</section>");
    }
    h.push_str("<section id=\"alarms\"><h2>Recent alarms</h2>");
    let alarms = o["alarms"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if alarms.is_empty() {
        h.push_str("<p class=\"muted\">None.</p>");
    } else {
        h.push_str("<table class=\"alarms\"><thead><tr><th>Received</th><th>Host</th><th>Level</th><th>Type</th><th>Config</th><th>Count</th><th>Message</th></tr></thead><tbody>");
        for a in alarms {
            let _ = write!(
                h,
                "<tr class=\"alarm\"><td>{}</td><td>{}</td><td class=\"level-{}\">{}</td><td class=\"alarm-type\">{}</td><td>{}</td><td class=\"alarm-count\">{}</td><td class=\"alarm-message\">{}</td></tr>",
                clock(a["received_ms"].as_u64().unwrap_or(0)),
                escape(&host_name(a)),
                a["alarm_level"].as_u64().unwrap_or(0),
                escape(a["level_name"].as_str().unwrap_or("")),
                escape(a["alarm_type"].as_str().unwrap_or("")),
                escape(a["config"].as_str().unwrap_or("")),
                a["alarm_count"].as_u64().unwrap_or(0),
                escape(a["alarm_message"].as_str().unwrap_or("")),
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");
    h
}

fn host_name(v: &Value) -> String {
    match (v["hostname"].as_str(), v["ip"].as_str()) {
        (Some(n), Some(ip)) if !n.is_empty() && !ip.is_empty() => format!("{n} ({ip})"),
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(ip)) if !ip.is_empty() => ip.to_string(),
        _ => v["instance_id"].as_str().unwrap_or("").to_string(),
    }
}

fn hosts_table(h: &mut String, hosts: &[Value], now: u64) {
    if hosts.is_empty() {
        h.push_str("<p class=\"muted\">No hosts have sent a heartbeat.</p>");
        return;
    }
    h.push_str("<table class=\"hosts\"><thead><tr><th>Host</th><th>IP</th><th>Identities</th><th>Heartbeat</th><th>Last heartbeat</th><th>Version</th><th>Status</th><th>CPU (cores)</th><th>Memory</th><th>Configs</th></tr></thead><tbody>");
    for x in hosts {
        let hb = x["status"].as_str().unwrap_or("");
        let last = x["last_heartbeat_ms"].as_u64().unwrap_or(0);
        let ids: Vec<String> = x["identities"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .map(escape)
            .collect();
        let _ = write!(
            h,
            "<tr class=\"host\" data-instance=\"{}\"><td class=\"hostname\">{}</td><td class=\"ip\">{}</td><td class=\"identities\">{}</td>\
<td class=\"heartbeat {}\">{}</td><td class=\"last-heartbeat\" title=\"{} UTC\">{} ago</td><td class=\"version\">{}</td>\
<td class=\"agent-status\">{}</td><td class=\"cpu\">{}</td><td class=\"memory\">{}</td><td class=\"configs\">",
            escape(x["instance_id"].as_str().unwrap_or("")),
            escape(x["hostname"].as_str().unwrap_or("")),
            escape(x["ip"].as_str().unwrap_or("")),
            ids.join(", "),
            if hb == "OK" { "ok" } else { "fail" },
            escape(hb),
            clock(last),
            duration(now.saturating_sub(last)),
            escape(x["agent_version"].as_str().unwrap_or("")),
            escape(x["agent_status"].as_str().unwrap_or("–")),
            x["cpu_cores"]
                .as_f64()
                .map(|c| format!("{c:.3}"))
                .unwrap_or_else(|| "–".into()),
            x["memory_bytes"]
                .as_u64()
                .map(bytes)
                .unwrap_or_else(|| "–".into()),
        );
        let membership = x["membership"].as_str().unwrap_or("");
        if membership.starts_with("rejected") {
            let _ = write!(h, "<p class=\"fail\">{}</p>", escape(membership));
        }
        let configs = x["configs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if configs.is_empty() {
            h.push_str("<span class=\"muted\">none</span>");
        } else {
            h.push_str("<ul>");
            for c in configs {
                let status = c["status"].as_str().unwrap_or("");
                let message = c["message"].as_str().unwrap_or("");
                let _ = write!(
                    h,
                    "<li class=\"config\"><span class=\"config-name\">{}</span> v{} <span class=\"cstatus {}\">{}</span>",
                    escape(c["name"].as_str().unwrap_or("")),
                    c["version"].as_i64().unwrap_or(0),
                    escape(&status.to_ascii_lowercase()),
                    escape(status),
                );
                if !message.is_empty() {
                    let _ = write!(
                        h,
                        ": <span class=\"config-message\">{}</span>",
                        escape(message)
                    );
                }
                h.push_str("</li>");
            }
            h.push_str("</ul>");
        }
        h.push_str("</td></tr>");
    }
    h.push_str("</tbody></table>");
}

fn login_page(why: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>logtail config server: token required</title>\
<style>{STYLE}</style></head><body><h1>logtail config server</h1><p id=\"auth-error\" class=\"fail\">{}</p>\
<form method=\"post\" action=\"/\"><label>Admin token <input type=\"password\" name=\"token\" autocomplete=\"current-password\"></label> \
<button type=\"submit\">Open the console</button></form></body></html>\n",
        escape(&format!("{}.", capitalise(why)))
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `5 s`, `3 min`, `2 h`, `4 d`.
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else if s < 172_800 {
        format!("{} h", s / 3600)
    } else {
        format!("{} d", s / 86_400)
    }
}

/// `2026-12-02 23:59:07` (UTC) for milliseconds since the epoch.
fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `12.3 MiB`.
fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(AdminToken::new("s3cret-token").is_ok());
        let e = AdminToken::new("short").unwrap_err();
        assert!(e.contains("8–256") && e.contains("is 5"), "{e}");
        let e = AdminToken::new("has;semicolon").unwrap_err();
        assert!(e.contains("';'"), "{e}");
        assert!(AdminToken::new("with space").is_err());
        let t = AdminToken::new("s3cret-token").unwrap();
        assert!(t.matches("s3cret-token"));
        assert!(!t.matches("s3cret-tokem") && !t.matches("s3cret") && !t.matches(""));
        assert_eq!(format!("{t:?}"), "AdminToken(<redacted>)");
    }

    #[test]
    fn queries_decode() {
        assert_eq!(
            query_pairs("group=web&since=17&token=a%2Bb+c%zz&flag"),
            [
                ("group".into(), "web".into()),
                ("since".into(), "17".into()),
                ("token".into(), "a+b c%zz".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(query_pairs(""), []);
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41%"), "A%");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
        let o = json!({
            "now_ms": 1_000_000u64, "heartbeat_timeout_ms": 30_000,
            "groups": [{"name": "web", "type": "userdefined", "members": ["<i>"], "configs": ["app"],
                "hosts": [{"instance_id": "i1", "hostname": "<script>alert(1)</script>", "ip": "10.0.0.1",
                  "identities": ["a&b"], "status": "FAIL", "last_heartbeat_ms": 940_000u64,
                  "agent_version": "0.1.0", "agent_status": "send_error", "cpu_cores": 0.25,
                  "memory_bytes": 12_900_000u64, "membership": "member",
                  "configs": [{"name": "app", "version": 3, "status": "FAILED", "message": "bad <flusher>"}]}]}],
            "other_hosts": [],
            "alarms": [{"instance_id": "i1", "hostname": "h", "ip": "", "alarm_type": "PARSE_LOG_FAIL_ALARM",
              "alarm_level": 2, "level_name": "error", "alarm_message": "<img src=x>", "alarm_count": 7,
              "config": "app", "received_ms": 999_000u64}]
        });
        let page = render_page(&o);
        assert!(!page.contains("<script>alert") && !page.contains("<img") && !page.contains("<i>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("bad &lt;flusher&gt;"));
        assert!(page.contains("<td class=\"heartbeat fail\">FAIL</td>"));
        assert!(
            page.contains("1.0 min ago") || page.contains("60 s ago"),
            "{page}"
        );
        assert!(page.contains("12.3 MiB") && page.contains(">0.250<"));
        assert!(page.contains("class=\"alarm-count\">7<"));
        assert!(page.contains("1970-01-01 00:16:40"), "{page}");
    }

    #[test]
    fn clocks_and_sizes() {
        assert_eq!(clock(0), "1970-01-01 00:00:00");
        assert_eq!(clock(1_796_256_000_000), "2026-12-03 00:00:00");
        assert_eq!(clock(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration(1500), "1.5 s");
        assert_eq!(duration(90_000), "90 s");
        assert_eq!(duration(600_000), "10 min");
    }
}
