//! Regression tests for issue 4 (policy and host APIs) against real counterparts: `fetch`
//! against an HTTP server these tests start on 127.0.0.1, secrets against a store and an audit
//! log on disk, redaction of what the guest prints and returns. Every test runs on every
//! available engine.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::on_every_engine;
use palisade::{
    AccessContext, AuditLog, EngineKind, ErrorKind, HostServices, Limits, MemorySecretStore,
    Policy, Request, Sandbox, SecretEntry,
};
use serde_json::{json, Value};

/// A small HTTP/1.1 server on 127.0.0.1 with a few routes; it records every request line.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        // Also on 127.0.0.2 (same port), so a test can allowlist the server by an address
        // other than the one `localhost` resolves to.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let second = TcpListener::bind(("127.0.0.2", port)).expect("bind 127.0.0.2");
        let seen = Arc::new(Mutex::new(Vec::new()));
        for listener in [listener, second] {
            let log = seen.clone();
            thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let log = log.clone();
                    thread::spawn(move || {
                        let _ = serve(stream, port, &log);
                    });
                }
            });
        }
        Server { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("log").clone()
    }
}

fn serve(stream: TcpStream, port: u16, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_owned();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end().to_owned();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        log.lock().expect("log").push(line.clone());
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let respond = |out: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{extra}\r\n",
                body.len()
            );
            out.write_all(head.as_bytes())?;
            out.write_all(body)
        };
        match path {
            "/hello" => respond(
                &mut out,
                "200 OK",
                "content-type: text/plain\r\nx-test: yes\r\n",
                b"hello",
            )?,
            "/json" => respond(
                &mut out,
                "200 OK",
                "content-type: application/json\r\n",
                br#"{"a":1,"b":[true,null]}"#,
            )?,
            "/echo" => {
                let mut echoed: Vec<(String, String)> = headers
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with("x-")
                            || ["content-type", "authorization", "cookie"].contains(&k.as_str())
                    })
                    .cloned()
                    .collect();
                echoed.sort();
                let v = json!({
                    "method": method,
                    "headers": echoed,
                    "body": String::from_utf8_lossy(&body),
                });
                respond(
                    &mut out,
                    "200 OK",
                    "content-type: application/json\r\n",
                    v.to_string().as_bytes(),
                )?
            }
            "/redirect" => {
                let to = query
                    .strip_prefix("to=")
                    .unwrap_or("/hello")
                    .replace("PORT", &port.to_string());
                respond(&mut out, "302 Found", &format!("location: {to}\r\n"), b"")?
            }
            "/missing" => respond(&mut out, "404 Not Found", "", b"nope")?,
            // `/big?N`: N bytes of `a`.
            "/big" => respond(
                &mut out,
                "200 OK",
                "",
                &vec![b'a'; query.parse().unwrap_or(0)],
            )?,
            // A Location in raw UTF-8, not percent-encoded.
            "/utf8-redirect" => respond(&mut out, "302 Found", "location: /caf\u{e9}\r\n", b"")?,
            // `/status?300`: that status, with a Location back to /hello.
            "/status" => respond(
                &mut out,
                &format!("{query} Whatever"),
                "location: /hello\r\n",
                b"not followed",
            )?,
            "/slow" => {
                // Far longer than any bound below, so only a working timeout ends these runs in time.
                thread::sleep(Duration::from_secs(10));
                respond(&mut out, "200 OK", "", b"late")?
            }
            "/endless" => {
                out.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n",
                )?;
                let chunk = vec![b'x'; 64 << 10];
                loop {
                    out.write_all(&chunk)?;
                }
            }
            _ => respond(&mut out, "500 Internal Server Error", "", b"")?,
        }
    }
}

fn fetch_policy(allow: &[String], extra: Value) -> Policy {
    let mut p = json!({ "fetch": { "allow": allow } });
    if let (Some(f), Some(e)) = (p["fetch"].as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            f.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(p).expect("policy")
}

fn run(sandbox: &Sandbox, source: &str, policy: Policy) -> palisade::Outcome {
    let mut req = Request::script(source);
    req.policy = policy;
    sandbox.run(&req)
}

fn value(kind: EngineKind, o: &palisade::Outcome) -> Result<Value, String> {
    o.result
        .clone()
        .map_err(|e| format!("{kind}: expected a value, got {e} (stdout {:?})", o.stdout))
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

#[test]
fn issue_4_fetch_allowed_origin_returns_status_headers_and_body() {
    let server = Server::start();
    let policy = fetch_policy(&[server.url("/")], json!({}));
    on_every_engine(|kind, sandbox| {
        let src = format!(
            r#"(async () => {{
                const r = await fetch({hello:?});
                const j = await (await fetch({json:?})).json();
                const m = await fetch({missing:?});
                const b = await (await fetch({hello:?})).arrayBuffer();
                return [r.status, r.ok, r.statusText, r.headers.get('X-Test'), r.url === {hello:?},
                        r.redirected, await r.text(), j, m.status, m.ok, await m.text(), b.byteLength];
            }})()"#,
            hello = server.url("/hello"),
            json = server.url("/json"),
            missing = server.url("/missing"),
        );
        let o = run(sandbox, &src, policy.clone());
        let v = value(kind, &o)?;
        check(
            v == json!([200, true, "OK", "yes", true, false, "hello", {"a": 1, "b": [true, null]}, 404, false, "nope", 5]),
            || format!("{kind}: {v}"),
        )
    });
}

/// Found by a hostile review (2026-12-01): Authorization followed a redirect to another origin,
/// a 300 with a Location was followed, and `redirect: "manual"` showed the redirect itself.
#[test]
fn issue_4_regression_redirects_keep_credentials_and_statuses_as_whatwg_says() {
    let server = Server::start();
    let other = format!("http://127.0.0.2:{}", server.port);
    let policy = fetch_policy(&[server.url("/"), format!("{other}/")], json!({}));
    on_every_engine(|kind, sandbox| {
        let src = format!(
            r#"(async () => {{
                const headers = {{ authorization: 'Bearer tok-123', cookie: 'c=1', 'x-keep': 'k' }};
                const cross = await (await fetch({cross:?}, {{ headers }})).json();
                const same = await (await fetch({same:?}, {{ headers }})).json();
                const manual = await fetch({same:?}, {{ redirect: 'manual' }});
                const multiple = await fetch({multiple:?});
                const utf8 = await fetch({utf8:?});
                return [cross.headers, same.headers,
                        [manual.type, manual.status, manual.ok, manual.headers.get('location'),
                         await manual.text()],
                        [multiple.status, multiple.redirected, await multiple.text()],
                        [utf8.redirected, utf8.url.endsWith('/caf%C3%A9')]];
            }})()"#,
            cross = server.url(&format!("/redirect?to={other}/echo")),
            same = server.url("/redirect?to=/echo"),
            multiple = server.url("/status?300"),
            utf8 = server.url("/utf8-redirect"),
        );
        let v = value(kind, &run(sandbox, &src, policy.clone()))?;
        check(
            v == json!([
                [["x-keep", "k"]],
                [
                    ["authorization", "Bearer tok-123"],
                    ["cookie", "c=1"],
                    ["x-keep", "k"]
                ],
                ["opaqueredirect", 0, false, null, ""],
                [300, false, "not followed"],
                [true, true]
            ]),
            || format!("{kind}: {v}"),
        )
    });
}

/// Found by a hostile review (2026-11-30): v8 built a body's string one character at a time
/// (a rope of one-unit strings), so a body at the default `max_response_bytes` hit the default
/// memory limit there and nowhere else.
#[test]
fn issue_4_regression_a_body_at_the_size_cap_fits_the_default_memory_limit() {
    let server = Server::start();
    let policy = fetch_policy(&[server.url("/")], json!({}));
    let cap = palisade::policy::FetchPolicy::default().max_response_bytes;
    on_every_engine(|kind, sandbox| {
        let src = format!(
            r#"(async () => [
                (await (await fetch({url:?})).text()).length,
                (await (await fetch({url:?})).arrayBuffer()).byteLength,
            ])()"#,
            url = server.url(&format!("/big?{cap}")),
        );
        let v = value(kind, &run(sandbox, &src, policy.clone()))?;
        check(v == json!([cap, cap]), || format!("{kind}: {v}"))
    });
}

#[test]
fn issue_4_fetch_sends_method_headers_and_body() {
    let server = Server::start();
    let policy = fetch_policy(&[server.url("/echo")], json!({}));
    on_every_engine(|kind, sandbox| {
        let src = format!(
            r#"(async () => {{
                const h = new Headers([['X-One', '1']]);
                h.append('x-two', 'b');
                const r = await fetch({echo:?}, {{ method: 'post', headers: h, body: 'payload é' }});
                const bytes = await (await fetch({echo:?}, {{ method: 'PUT', headers: {{ 'content-type': 'application/octet-stream' }}, body: new Uint8Array([104, 105]) }})).json();
                return [await r.json(), bytes];
            }})()"#,
            echo = server.url("/echo"),
        );
        let v = value(kind, &run(sandbox, &src, policy.clone()))?;
        check(
            v == json!([
                {"method": "POST", "headers": [["content-type", "text/plain;charset=UTF-8"], ["x-one", "1"], ["x-two", "b"]], "body": "payload é"},
                {"method": "PUT", "headers": [["content-type", "application/octet-stream"]], "body": "hi"}
            ]),
            || format!("{kind}: {v}"),
        )
    });
}

#[test]
fn issue_4_fetch_refuses_hostile_urls_before_connecting() {
    let server = Server::start();
    let port = server.port;
    // `localhost` is allowlisted by name, but it resolves to a loopback address the allowlist
    // does not name as an address.
    let policy = fetch_policy(
        &[
            format!("http://127.0.0.2:{port}/redirect"),
            format!("http://localhost:{port}/"),
            "http://allowed.example/".into(),
        ],
        json!({}),
    );
    on_every_engine(|kind, sandbox| {
        let urls = [
            format!("http://localhost:{port}/hello"),
            "http://2130706433/".into(),
            "http://0x7f000001/".into(),
            "http://allowed.example@evil/".into(),
            "http://allowed.example.evil/".into(),
            format!("http://127.0.0.2:{port}/redirect?to=http://localhost:PORT/hello"),
            format!("http://127.0.0.2:{port}/redirect?to=http://169.254.169.254/latest/meta-data/"),
        ];
        let src = format!(
            r#"(async () => {{
                const out = [];
                for (const u of {urls}) {{
                    try {{ await fetch(u); out.push('fetched ' + u); }}
                    catch (e) {{ out.push(e.name + ': ' + e.message); }}
                }}
                return out;
            }})()"#,
            urls = serde_json::to_string(&urls).expect("json"),
        );
        let before = server.seen().len();
        let v = value(kind, &run(sandbox, &src, policy.clone()))?;
        let got: Vec<String> = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        // Each refusal must contain all of its fragments. Which loopback address `localhost`
        // resolves to first (127.0.0.1 or ::1) is the resolver's business, so it is not named.
        let localhost = format!("fetch of http://localhost:{port}/hello: localhost resolves to ");
        let expect: [&[&str]; 7] = [
            &[
                &localhost,
                ", a loopback address, which the fetch allowlist does not name",
            ],
            &["http://127.0.0.1/: not in the fetch allowlist"],
            &["http://127.0.0.1/: not in the fetch allowlist"],
            &["http://evil/: URLs with credentials (user info) are refused"],
            &["http://allowed.example.evil/: not in the fetch allowlist"],
            &[&localhost, ", a loopback address"],
            &["fetch of http://169.254.169.254/latest/meta-data/: not in the fetch allowlist"],
        ];
        check(got.len() == expect.len(), || {
            format!(
                "{kind}: {} outcomes for {} URLs: {got:?}",
                got.len(),
                expect.len()
            )
        })?;
        for (g, fragments) in got.iter().zip(&expect) {
            check(
                g.starts_with("TypeError: Palisade policy denies fetch of ")
                    && fragments.iter().all(|f| g.contains(f)),
                || format!("{kind}: {g:?} lacks {fragments:?}"),
            )?;
        }
        // Only the two redirecting requests reached the server: no refused URL did.
        let seen = server.seen();
        check(seen.len() - before == 2, || {
            format!("{kind}: server saw {:?}", &seen[before..])
        })
    });
}

#[test]
fn issue_4_fetch_ip_literal_forms_normalize_to_the_named_address() {
    let server = Server::start();
    let port = server.port;
    let policy = fetch_policy(&[format!("http://127.0.0.1:{port}/")], json!({}));
    on_every_engine(|kind, sandbox| {
        let src = format!(
            r#"(async () => [
                await (await fetch('http://0x7f000001:{port}/hello')).text(),
                await (await fetch('http://2130706433:{port}/hello')).text(),
                (await fetch('http://127.1:{port}/redirect?to=/hello')).redirected,
            ])()"#
        );
        let v = value(kind, &run(sandbox, &src, policy.clone()))?;
        check(v == json!(["hello", "hello", true]), || {
            format!("{kind}: {v}")
        })
    });
}

/// Found by a hostile review (2026-11-30): a name resolving to a loopback address passed when the
/// allowlist named that address for any port, and an encoded slash left a path prefix.
#[test]
fn issue_4_regression_a_named_address_opens_only_its_port_and_paths_stay_inside() {
    let server = Server::start();
    let port = server.port;
    let src = format!(
        r#"(async () => {{
            try {{ return (await fetch('http://localhost:{port}/hello')).status; }}
            catch (e) {{ return e.message; }}
        }})()"#
    );
    let other_port = fetch_policy(
        &[
            format!("http://localhost:{port}/"),
            "http://127.0.0.1:1/".into(),
        ],
        json!({}),
    );
    let same_port = fetch_policy(
        &[
            format!("http://localhost:{port}/"),
            format!("http://127.0.0.1:{port}/"),
        ],
        json!({}),
    );
    let prefix = fetch_policy(&[format!("http://127.0.0.1:{port}/json/")], json!({}));
    // The name passes, and its address is named, but only under /json/.
    let named_path = fetch_policy(
        &[
            format!("http://localhost:{port}/"),
            format!("http://127.0.0.1:{port}/json/"),
        ],
        json!({}),
    );
    let escape = format!(
        r#"fetch('http://127.0.0.1:{port}/json/..%2Fhello').then(r => r.status, e => e.message)"#
    );
    on_every_engine(|kind, sandbox| {
        let v = value(kind, &run(sandbox, &src, other_port.clone()))?;
        check(
            v.as_str().is_some_and(|m| m.contains("a loopback address")),
            || format!("{kind}: another port: {v}"),
        )?;
        let v = value(kind, &run(sandbox, &src, same_port.clone()))?;
        check(v == json!(200), || format!("{kind}: the same port: {v}"))?;
        let v = value(kind, &run(sandbox, &src, named_path.clone()))?;
        check(
            v.as_str().is_some_and(|m| m.contains("a loopback address")),
            || format!("{kind}: another path: {v}"),
        )?;
        let v = value(kind, &run(sandbox, &escape, prefix.clone()))?;
        check(
            v.as_str()
                .is_some_and(|m| m.contains("not in the fetch allowlist")),
            || format!("{kind}: an encoded slash: {v}"),
        )
    });
}

/// Found by a hostile review (2026-11-30): a lone surrogate in a fetch URL or body failed the
/// request ("malformed request") instead of being sent as U+FFFD, as browsers send it.
#[test]
fn issue_4_regression_lone_surrogates_in_a_request_are_sent_as_replacement_characters() {
    let server = Server::start();
    let policy = fetch_policy(&[server.url("/")], json!({}));
    on_every_engine(|kind, sandbox| {
        let src = format!(
            r#"fetch({url:?} + '?q=\ud800', {{ method: 'POST', body: 'a\udc00b' }}).then(r => r.json()).then(j => j.body)"#,
            url = server.url("/echo"),
        );
        let v = value(kind, &run(sandbox, &src, policy.clone()))?;
        check(v == json!("a\u{fffd}b"), || format!("{kind}: {v}"))?;
        check(
            server
                .seen()
                .iter()
                .any(|l| l.contains("/echo?q=%EF%BF%BD")),
            || format!("{kind}: {:?}", server.seen()),
        )
    });
}

#[test]
fn issue_4_fetch_slow_server_times_out_and_counts_against_the_deadline() {
    let server = Server::start();
    on_every_engine(|kind, sandbox| {
        // The per-request timeout.
        let policy = fetch_policy(&[server.url("/")], json!({"timeout_ms": 300}));
        let src = format!(
            "fetch({:?}).then(() => 'fetched', (e) => [e.name, e.message.includes('timed out after 300 ms')])",
            server.url("/slow")
        );
        let t = Instant::now();
        let v = value(kind, &run(sandbox, &src, policy))?;
        check(v == json!(["TypeError", true]), || format!("{kind}: {v}"))?;
        check(t.elapsed() < Duration::from_millis(5000), || {
            format!("{kind}: took {:?}", t.elapsed())
        })?;

        // The run's own deadline: the fetch is cut short and the run ends as a timeout.
        let policy = fetch_policy(&[server.url("/")], json!({}));
        let mut req = Request::script(format!(
            "fetch({:?}).catch(() => {{ for (;;) {{}} }})",
            server.url("/slow")
        ))
        .with_limits(Limits {
            timeout: Duration::from_millis(400),
            ..Limits::default()
        });
        req.policy = policy;
        let t = Instant::now();
        let o = sandbox.run(&req);
        check(o.error_kind() == Some(ErrorKind::Timeout), || {
            format!("{kind}: {:?}", o.result)
        })?;
        check(t.elapsed() < Duration::from_millis(5000), || {
            format!("{kind}: took {:?}", t.elapsed())
        })
    });
}

#[test]
fn issue_4_fetch_endless_body_hits_the_size_cap_and_requests_are_capped() {
    let server = Server::start();
    on_every_engine(|kind, sandbox| {
        let policy = fetch_policy(
            &[server.url("/")],
            json!({"max_response_bytes": 1048576, "max_requests": 2}),
        );
        let src = format!(
            r#"(async () => {{
                const out = [];
                for (const u of [{endless:?}, {hello:?}, {hello:?}]) {{
                    try {{ out.push(await (await fetch(u)).text()); }} catch (e) {{ out.push(e.message); }}
                }}
                return out;
            }})()"#,
            endless = server.url("/endless"),
            hello = server.url("/hello"),
        );
        let v = value(kind, &run(sandbox, &src, policy))?;
        let got: Vec<String> = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        check(
            got[0].contains("exceeds the policy's max_response_bytes (1048576)")
                && got[1] == "hello"
                && got[2].contains("this run's 2 requests (max_requests) are used up"),
            || format!("{kind}: {v}"),
        )
    });
}

#[test]
fn issue_4_fetch_arguments_are_converted_once() {
    let server = Server::start();
    let policy = fetch_policy(&[server.url("/echo")], json!({}));
    on_every_engine(|kind, sandbox| {
        let src = format!(
            r#"(async () => {{
                let u = 0, h = 0, m = 0;
                const url = {{ toString() {{ u++; return u === 1 ? {echo:?} : 'http://169.254.169.254/'; }} }};
                const value = {{ [Symbol.toPrimitive]() {{ h++; return h === 1 ? 'first' : 'second\r\nx-evil: 1'; }} }};
                const method = {{ toString() {{ m++; return m === 1 ? 'POST' : 'CONNECT'; }} }};
                const r = await (await fetch(url, {{ method, headers: {{ 'x-v': value }}, body: 'b' }})).json();
                return [u, h, m, r.method, r.headers];
            }})()"#,
            echo = server.url("/echo"),
        );
        let v = value(kind, &run(sandbox, &src, policy.clone()))?;
        check(
            v == json!([
                1,
                1,
                1,
                "POST",
                [
                    ["content-type", "text/plain;charset=UTF-8"],
                    ["x-v", "first"]
                ]
            ]),
            || format!("{kind}: {v}"),
        )
    });
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("palisade-{name}-{}", palisade_host_id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn palisade_host_id() -> String {
    format!("{}-{:?}", std::process::id(), Instant::now())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

fn secret_sandboxes(audit_path: &std::path::Path) -> Vec<(EngineKind, Sandbox)> {
    let store = Arc::new(MemorySecretStore::new());
    store.insert("acme", "API_KEY", "sk-live-4f9a8b7c6d5e");
    store.insert_entry(
        "acme",
        "DB_PASSWORD",
        SecretEntry {
            value: "correct-horse-battery".into(),
            functions: Some(["billing".to_owned()].into_iter().collect()),
        },
    );
    store.insert("globex", "API_KEY", "globex-key-000000");
    let audit = Arc::new(AuditLog::open(audit_path).expect("audit log"));
    common::engines()
        .into_iter()
        .filter_map(|(kind, _)| {
            Sandbox::builder()
                .engine(kind)
                .host_services(HostServices::new().secrets(store.clone(), audit.clone()))
                .build()
                .ok()
                .map(|s| (kind, s))
        })
        .collect()
}

fn secrets_request(source: &str) -> Request {
    let mut req = Request::script(source);
    req.policy = serde_json::from_value(json!({"secrets": ["API_KEY", "DB_PASSWORD", "MISSING"]}))
        .expect("policy");
    req
}

#[test]
fn issue_4_audit_log_records_every_access_line_by_line() {
    let dir = temp_dir("audit");
    let path = dir.join("audit.jsonl");
    let sandboxes = secret_sandboxes(&path);
    assert!(!sandboxes.is_empty());
    let src = r#"
        const out = [];
        for (const name of ['API_KEY', 'DB_PASSWORD', 'MISSING', 'OTHER']) {
            try { const v = secrets.get(name); out.push(v === undefined ? 'undefined' : 'len ' + v.length); }
            catch (e) { out.push(e.message); }
        }
        out
    "#;
    let mut expected_lines = Vec::new();
    for (kind, sandbox) in &sandboxes {
        for (tenant, function) in [
            ("acme", Some("report")),
            ("acme", Some("billing")),
            ("globex", None),
        ] {
            let id = format!("{kind}-{tenant}-{}", function.unwrap_or("direct"));
            let ctx = AccessContext {
                tenant: tenant.into(),
                function: function.map(Into::into),
                execution_id: id.clone(),
            };
            let o = sandbox.run_as(&secrets_request(src), ctx);
            let v = o.result.clone().unwrap_or_else(|e| panic!("{kind}: {e}"));
            let db = if function == Some("billing") {
                "granted"
            } else if tenant == "acme" {
                "denied"
            } else {
                "not_found"
            };
            let key_len = if tenant == "acme" { 20 } else { 17 };
            let db_out = match db {
                "granted" => json!("len 21"),
                "denied" => json!("Palisade policy denies reading secret \"DB_PASSWORD\" (the secret is not granted to this function)"),
                _ => json!("undefined"),
            };
            assert_eq!(
                v,
                json!([format!("len {key_len}"), db_out, "undefined", "Palisade policy denies reading secret \"OTHER\" (it is not in the policy's secrets list)"]),
                "{kind} {tenant} {function:?}"
            );
            for (secret, result) in [
                ("API_KEY", "granted"),
                ("DB_PASSWORD", db),
                ("MISSING", "not_found"),
                ("OTHER", "denied"),
            ] {
                expected_lines.push((tenant, function, id.clone(), secret, result));
            }
        }
    }
    let text = std::fs::read_to_string(&path).expect("audit log");
    for secret in ["sk-live", "correct-horse", "globex-key"] {
        assert!(
            !text.contains(secret),
            "a secret value reached the audit log"
        );
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected_lines.len(), "{text}");
    for (line, (tenant, function, id, secret, result)) in lines.iter().zip(&expected_lines) {
        let rec: Value = serde_json::from_str(line).expect("each line is one JSON record");
        assert_eq!(rec["action"], "secret.get");
        assert_eq!(rec["tenant"], *tenant);
        assert_eq!(rec["function"], json!(function));
        assert_eq!(rec["execution_id"], json!(id));
        assert_eq!(rec["secret"], *secret);
        assert_eq!(rec["result"], *result, "{line}");
        assert!(
            rec["ts"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.len() == 24),
            "{line}"
        );
        assert_eq!(rec.get("reason").is_some(), *result == "denied", "{line}");
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// Found by a hostile review (2026-12-01): a secret escaped by the console formatter or
/// `JSON.stringify` (a PEM key's line breaks), a secret that contains another read before it,
/// and a secret the output cap cut in two all reached the outcome.
#[test]
fn issue_4_regression_escaped_enclosing_and_cut_secrets_are_redacted() {
    let dir = temp_dir("redact-forms");
    let store = Arc::new(MemorySecretStore::new());
    let pem = "-----BEGIN KEY-----\nMIIBsecret'line\"\\x\n-----END KEY-----";
    store.insert("acme", "PEM", pem);
    store.insert("acme", "DB_PASSWORD", "hunter2!");
    store.insert(
        "acme",
        "DB_URL",
        "postgres://app:hunter2!@db.internal:5432/prod",
    );
    store.insert(
        "acme",
        "LONG",
        "L0ng-secret-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ",
    );
    let audit = Arc::new(AuditLog::open(dir.join("audit.jsonl")).expect("audit log"));
    let ctx = || AccessContext {
        tenant: "acme".into(),
        function: None,
        execution_id: "r".into(),
    };
    let request = |source: &str, output: u64| {
        let mut req = Request::script(source);
        req.policy =
            serde_json::from_value(json!({"secrets": ["PEM", "DB_PASSWORD", "DB_URL", "LONG"]}))
                .expect("policy");
        req.limits.output = output;
        req
    };
    for (kind, _) in common::engines() {
        let sandbox = Sandbox::builder()
            .engine(kind)
            .host_services(HostServices::new().secrets(store.clone(), audit.clone()))
            .build()
            .expect("sandbox");
        let o = sandbox.run_as(
            &request(
                "const p = secrets.get('PEM'); const pw = secrets.get('DB_PASSWORD'); \
                 const u = secrets.get('DB_URL'); console.log({ p }); console.log([u]); \
                 console.error(JSON.stringify({ p })); [JSON.stringify({ p }), u]",
                1 << 20,
            ),
            ctx(),
        );
        let text = serde_json::to_string(&o.to_record()).expect("record");
        for part in ["MIIB", "hunter2", "db.internal"] {
            assert!(!text.contains(part), "{kind}: {part} in {text}");
        }
        assert_eq!(
            o.stdout, "{ p: `[REDACTED]` }\n[ '[REDACTED]' ]\n",
            "{kind}"
        );
        assert_eq!(o.stderr, "{\"p\":\"[REDACTED]\"}\n", "{kind}");
        let o = sandbox.run_as(
            &request("console.log('url=' + secrets.get('DB_URL')); 1", 30),
            ctx(),
        );
        assert!(o.truncated, "{kind}");
        assert_eq!(o.stdout, "url=[REDACTED]", "{kind}");
        // Cut by the console formatter or an engine's message, shown as an Error's first line,
        // escaped twice (found by a second review).
        let o = sandbox.run_as(
            &request(
                "const m = secrets.get('LONG'), p = secrets.get('PEM'); \
                 console.log({ x: 'a'.repeat(9990) + m }); \
                 console.log([new Error(p.slice(20))]); \
                 console.log({ body: JSON.stringify({ k: p }) }); \
                 try { null[m]; } catch (e) { console.log(e.message); } 1",
                1 << 20,
            ),
            ctx(),
        );
        assert_eq!(o.result, Ok(json!(1)), "{kind}");
        for part in [
            "MIIB",
            "L0ng-secret",
            "0123456789",
            "ABCDEFGHIJ",
            "ecret'line",
        ] {
            assert!(!o.stdout.contains(part), "{kind}: {part} in {}", o.stdout);
        }
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn issue_4_secrets_are_redacted_from_output_result_and_errors() {
    let dir = temp_dir("redact");
    let sandboxes = secret_sandboxes(&dir.join("audit.jsonl"));
    let ctx = || AccessContext {
        tenant: "acme".into(),
        function: None,
        execution_id: "r".into(),
    };
    for (kind, sandbox) in &sandboxes {
        let o = sandbox.run_as(
            &secrets_request(
                r#"const k = secrets.get('API_KEY');
                console.log(k.slice(0, 7));
                console.log(k.slice(7, 12));
                console.log(k.slice(12));
                console.log('inline', k, 'twice', k);
                console.error({ key: k });
                ({ key: k, nested: [k + '!'], [k]: 1 })"#,
            ),
            ctx(),
        );
        assert_eq!(
            o.stdout, "[REDACTED]\ninline [REDACTED] twice [REDACTED]\n",
            "{kind}"
        );
        assert_eq!(o.stderr, "{ key: '[REDACTED]' }\n", "{kind}");
        assert_eq!(
            o.result,
            Ok(json!({"key": "[REDACTED]", "nested": ["[REDACTED]!"], "[REDACTED]": 1})),
            "{kind}"
        );
        let o = sandbox.run_as(
            &secrets_request("throw new Error('leak: ' + secrets.get('API_KEY'))"),
            ctx(),
        );
        let text = serde_json::to_string(&o.to_record()).expect("record");
        assert!(!text.contains("sk-live"), "{kind}: {text}");
        assert!(text.contains("leak: [REDACTED]"), "{kind}: {text}");
        // A value the guest never read is not redacted (it cannot know it).
        let o = sandbox.run_as(&secrets_request("'sk-live-4f9a8b7c6d5e'"), ctx());
        assert_eq!(o.result, Ok(json!("sk-live-4f9a8b7c6d5e")), "{kind}");
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
