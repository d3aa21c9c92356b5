//! The real server on an ephemeral loopback port, with real worker processes, driven over HTTP.
#![allow(clippy::unwrap_used)] // test helpers

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;

const KEY_A: &str = "key-alice-0123456789";
const KEY_B: &str = "key-bob-0123456789ab";

struct Server {
    base: String,
    /// An argument every worker of this server carries (and ignores).
    tag: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), palisade_server::ServeError>>,
}

async fn start(extra: &str) -> Server {
    start_on(":memory:", extra).await
}

/// [`start`] on the `database` given.
async fn start_on(database: &str, extra: &str) -> Server {
    let worker = env!("CARGO_BIN_EXE_palisade-worker");
    let workers = if extra.contains("workers =") {
        ""
    } else {
        "workers = 2\n"
    };
    let tag = format!("test-{}", palisade::AccessContext::anonymous().execution_id);
    let text = format!(
        "database = \"{database}\"\n{workers}worker_command = [\"{worker}\", \"--tag\", \"{tag}\"]\n{extra}\n\
         [[keys]]\nkey = \"{KEY_A}\"\ntenant = \"alice\"\n[[keys]]\nkey = \"{KEY_B}\"\ntenant = \"bob\"\n"
    );
    let config = palisade_server::Config::parse(&text).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(palisade_server::serve(config, listener, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    // Ready once every lane has a worker that answered.
    let started = Instant::now();
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server never became ready"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Server {
        base,
        tag,
        client,
        stop: Some(stop),
        done,
    }
}

impl Server {
    /// POSTs `body` as JSON to `path` with `key`.
    async fn send_json(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.post(path, key).json(body).send().await.unwrap()
    }

    fn post(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    fn get(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.done.await.unwrap().unwrap();
    }
}

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_deploy_invoke_and_records() {
    let s = start("").await;
    let ok = s
        .client
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let ready = s
        .client
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    // Execute: the CLI's outcome shape, with an execution id.
    let resp = s
        .post("/v1/execute", KEY_A)
        .header("x-request-id", "req-123")
        .json(&json!({"source": "console.log('hi'); input.a + 1", "input": {"a": 41}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-123");
    let exec_id = resp.headers()["x-execution-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, out) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["status"], "ok");
    assert_eq!(out["value"], 42);
    assert_eq!(out["stdout"], "hi\n");
    assert_eq!(out["metrics"]["engine"], "quickjs");
    let record: palisade::OutcomeRecord = serde_json::from_value(out.clone()).unwrap();
    assert_eq!(record.value, json!(42));

    // The recorded execution, visible to its tenant only.
    let (status, rec) = json_of(
        s.get(&format!("/v1/executions/{exec_id}"), KEY_A)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rec["outcome"], out);
    let resp = s
        .get(&format!("/v1/executions/{exec_id}"), KEY_B)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Guest errors are outcomes, with limits overriding the defaults.
    let (status, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "for(;;){}", "limits": {"timeout": 100}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["error"]["kind"], "timeout");

    // Deploy: a syntax error is refused with its position in the original source.
    let (status, err) = json_of(
        s.post("/v1/functions", KEY_A)
            .json(&json!({"name": "bad", "source": "let x = 1;\nlet y = ;"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["kind"], "syntax_error");
    assert_eq!(err["error"]["line"], 2);
    assert!(err["error"]["column"].is_u64());

    // Deploying runs nothing.
    let (status, f) = json_of(
        s.post("/v1/functions", KEY_A)
            .json(&json!({"name": "double", "source": "export default (x) => { console.log('ran'); return x * 2 }", "mode": "module"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    assert_eq!(f["name"], "double");

    let (_, list) = json_of(s.get("/v1/functions", KEY_A).send().await.unwrap()).await;
    assert_eq!(list["functions"].as_array().unwrap().len(), 1);
    let (_, list) = json_of(s.get("/v1/functions", KEY_B).send().await.unwrap()).await;
    assert!(list["functions"].as_array().unwrap().is_empty());
    let (status, f) = json_of(s.get("/v1/functions/double", KEY_A).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(f["source"].as_str().unwrap().contains("x * 2"));

    let resp = s
        .send_json("/v1/functions/double/invoke", KEY_A, &json!({"input": 21}))
        .await;
    let id = resp.headers()["x-execution-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, out) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["value"], 42);
    assert_eq!(out["stdout"], "ran\n");
    let (_, rec) = json_of(
        s.get(&format!("/v1/executions/{id}"), KEY_A)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rec["function"], "double");

    // Another tenant sees nothing.
    for resp in [
        s.post("/v1/functions/double/invoke", KEY_B)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        s.get("/v1/functions/double", KEY_B).send().await.unwrap(),
        s.client
            .delete(format!("{}/v1/functions/double", s.base))
            .bearer_auth(KEY_B)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    let resp = s
        .client
        .delete(format!("{}/v1/functions/double", s.base))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = s
        .post("/v1/functions/double/invoke", KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Metrics and the OpenAPI document.
    let text = metrics_text(&s).await;
    assert!(
        text.contains("palisade_executions_total{engine=\"quickjs\",kind=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("palisade_executions_total{engine=\"quickjs\",kind=\"timeout\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("palisade_execution_seconds_bucket{engine=\"quickjs\",le=\"+Inf\"} 3"),
        "{text}"
    );
    assert!(text.contains("palisade_queue_depth{lane=\"fast\"} 0"));
    let (status, doc) = json_of(
        s.client
            .get(format!("{}/v1/openapi.json", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_requests() {
    let s = start("max_body = 4096").await;
    // No key, a wrong key.
    let resp = s
        .client
        .post(format!("{}/v1/execute", s.base))
        .json(&json!({"source": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = s
        .send_json("/v1/execute", "not-a-key", &json!({"source": "1"}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("x-request-id"));
    // Malformed JSON: 400 with line and column.
    let (status, err) = json_of(
        s.post("/v1/execute", KEY_A)
            .body("{\"source\":\n  \"1\",,}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["line"], 2);
    assert_eq!(err["error"]["column"], 7);
    // Unknown fields, at the top and inside limits.
    let resp = s
        .send_json("/v1/execute", KEY_A, &json!({"source": "1", "sourse": 2}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s
        .send_json(
            "/v1/execute",
            KEY_A,
            &json!({"source": "1", "limits": {"heap": 2}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Invalid limits come back as an invalid_request outcome.
    let (status, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "1", "limits": {"memory": 0}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(out["error"]["kind"], "invalid_request");
    // Too large.
    let big = "x".repeat(8192);
    let resp = s
        .send_json("/v1/execute", KEY_A, &json!({"source": big}))
        .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Bad names and engines.
    let resp = s
        .send_json(
            "/v1/functions",
            KEY_A,
            &json!({"name": "a/b", "source": "1"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s
        .send_json(
            "/v1/execute",
            KEY_A,
            &json!({"source": "1", "engine": "spidermonkey"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

/// SIGKILLs the server's worker processes after `delay`.
async fn kill_workers_after(tag: &str, delay: Duration) {
    tokio::time::sleep(delay).await;
    for pid in worker_pids(tag) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

/// Worker processes that are children of this test process.
/// The worker processes of the server whose workers carry `tag` (tests run side by side in this
/// process, each server with its own tag).
fn worker_pids(tag: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&cmdline).contains(tag);
        if ppid == me && stat.contains("(palisade-worke") && ours {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_fails_only_its_execution() {
    let s = start("workers = 1").await;
    // Warm the worker, then kill it in the middle of a long execution.
    let resp = s
        .send_json("/v1/execute", KEY_A, &json!({"source": "1"}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let pending = s
        .post("/v1/execute", KEY_A)
        .json(&json!({"source": "for(;;){}", "limits": {"timeout": 4000}}))
        .send();
    let killer = kill_workers_after(&s.tag, Duration::from_millis(300));
    let (resp, ()) = tokio::join!(pending, killer);
    let (status, out) = json_of(resp.unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(out["error"]["kind"], "internal");
    // The server made this outcome for the lost worker; it still names the engine, so the
    // execution counts under it in /metrics.
    assert_eq!(out["metrics"]["engine"], "quickjs", "{out}");
    // The server keeps serving on a fresh worker.
    let (status, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "6 * 7"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["value"], 42);
    let text = metrics_text(&s).await;
    assert!(
        text.contains("palisade_worker_restarts_total{lane=\"fast\"} 1"),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_a_job_sent_ahead_of_a_lost_workers_job_runs_on_its_replacement() {
    // The fast lane sends the next job while one runs, behind functions proven quick. When the
    // worker is lost, only the running job fails; the one waiting in the pipe never started
    // and runs on the next worker.
    let s = start("workers = 1").await;
    let post = |source: &str, input: i64| {
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": source, "input": input, "limits": {"timeout": 4000}}))
            .send()
    };
    // Quick eight times in a row: proven. The same source then spins when asked to.
    let spinner = "if (input) { for (;;) {} } 0";
    for _ in 0..8 {
        let (status, _) = json_of(post(spinner, 0).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Occupy the worker, so the next two queue up and are sent together when it is free.
    let busy = post(
        "const t = Date.now(); while (Date.now() - t < 400) {}; 0",
        0,
    );
    let queued = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let spin = post(spinner, 1);
        let answer = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            post("6 * 7", 0).await
        };
        tokio::join!(spin, answer)
    };
    let killer = kill_workers_after(&s.tag, Duration::from_millis(900));
    let (busy, (spin, answer), ()) = tokio::join!(busy, queued, killer);
    assert_eq!(json_of(busy.unwrap()).await.0, StatusCode::OK);
    let (status, out) = json_of(spin.unwrap()).await;
    assert_eq!(
        (status, out["error"]["kind"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!("internal")),
        "{out}"
    );
    let (status, out) = json_of(answer.unwrap()).await;
    assert_eq!(
        (status, out["value"].clone()),
        (StatusCode::OK, json!(42)),
        "{out}"
    );
    let text = metrics_text(&s).await;
    assert_eq!(
        metric(&text, "palisade_worker_restarts_total{lane=\"fast\"}"),
        1
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_gives_429_and_workers_recycle() {
    let s = start("workers = 1\nqueue = 1\nslow_queue = 1\nworker_max_executions = 2").await;
    // One running, one queued; the rest are refused.
    let slow = json!({"source": "const t = Date.now(); while (Date.now() - t < 400) {}; 1"});
    let mut calls = Vec::new();
    for _ in 0..6 {
        calls.push(tokio::spawn(
            s.post("/v1/execute", KEY_A).json(&slow).send(),
        ));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let codes = statuses(calls).await;
    assert!(codes.contains(&StatusCode::TOO_MANY_REQUESTS), "{codes:?}");
    assert!(codes.contains(&StatusCode::OK), "{codes:?}");
    for _ in 0..3 {
        let resp = s
            .send_json("/v1/execute", KEY_A, &json!({"source": "1"}))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let text = metrics_text(&s).await;
    assert!(
        !text.contains("palisade_worker_recycles_total{lane=\"fast\"} 0"),
        "{text}"
    );
    assert!(!text.contains("palisade_rejected_total 0"), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_accepted_work() {
    let mut s = start("").await;
    let started = Instant::now();
    let slow = tokio::spawn(
        s.post("/v1/execute", KEY_A)
            .json(
                &json!({"source": "const t = Date.now(); while (Date.now() - t < 500) {}; 'done'"}),
            )
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Stop while the execution is in flight: it still completes.
    let _ = s.stop.take().unwrap().send(());
    let (status, out) = json_of(slow.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["value"], "done");
    assert!(started.elapsed() >= Duration::from_millis(450));
    s.done.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_per_tenant_and_audited_in_the_database() {
    use palisade_server::Storage;
    let dir = std::env::temp_dir().join(format!("palisade-srv-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (store, db) = (dir.join("secrets.json"), dir.join("palisade.db"));
    let key = palisade::MasterKey::generate().unwrap();
    palisade::FileSecretStore::open(&store, &key)
        .unwrap()
        .put(
            "alice",
            "API_TOKEN",
            "tok-123456789",
            Some(["reader".to_owned()].into()),
        )
        .unwrap();
    let worker = env!("CARGO_BIN_EXE_palisade-worker");
    let text = format!(
        "database = \"{}\"\nsecrets = \"{}\"\nworkers = 1\n\
         worker_command = [\"env\", \"PALISADE_MASTER_KEY={}\", \"{worker}\"]\n\
         [[keys]]\nkey = \"{KEY_A}\"\ntenant = \"alice\"\n[[keys]]\nkey = \"{KEY_B}\"\ntenant = \"bob\"\n",
        db.display(),
        store.display(),
        key.to_base64()
    );
    let config = palisade_server::Config::parse(&text).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(palisade_server::serve(config, listener, async move {
        let _ = rx.await;
    }));
    let s = Server {
        base,
        tag: String::new(),
        client: reqwest::Client::new(),
        stop: Some(stop),
        done,
    };

    let source = "console.log(secrets.get('API_TOKEN')); secrets.get('API_TOKEN').length";
    let deploy = json!({"name": "reader", "source": source, "policy": {"secrets": ["API_TOKEN"]}});
    for k in [KEY_A, KEY_B] {
        let resp = s.send_json("/v1/functions", k, &deploy).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    // Alice's function reads her secret; the value never leaves redacted.
    let resp = s
        .post("/v1/functions/reader/invoke", KEY_A)
        .send()
        .await
        .unwrap();
    let alice_exec = resp.headers()["x-execution-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, out) = json_of(resp).await;
    assert_eq!(out["value"], 13, "{out}");
    assert_eq!(out["stdout"], "[REDACTED]\n");
    // Outside the function the secret's function list refuses it; Bob has no such secret.
    let (_, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "secrets.get('API_TOKEN')", "policy": {"secrets": ["API_TOKEN"]}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out["status"], "error", "{out}");
    let (_, out) = json_of(
        s.post("/v1/functions/reader/invoke", KEY_B)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out["status"], "error", "{out}");
    s.stop().await;

    let storage = palisade_server::SqliteStorage::open(&db).unwrap();
    let alice = storage.audit("alice").unwrap();
    assert_eq!(alice.len(), 3, "{alice:?}");
    assert_eq!(alice[0].execution_id, alice_exec);
    assert_eq!(alice[0].function.as_deref(), Some("reader"));
    assert_eq!(alice[0].result, palisade::AccessResult::Granted);
    assert_eq!(alice[2].result, palisade::AccessResult::Denied);
    let bob = storage.audit("bob").unwrap();
    assert!(!bob.is_empty());
    assert!(bob
        .iter()
        .all(|r| r.result == palisade::AccessResult::NotFound && r.secret == "API_TOKEN"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The statuses of concurrent requests; every 429 among them must carry `Retry-After: 1`.
async fn statuses(
    calls: Vec<tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>>,
) -> Vec<StatusCode> {
    let mut codes = Vec::new();
    for c in calls {
        let r = c.await.unwrap().unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.headers()["retry-after"], "1");
        }
        codes.push(r.status());
    }
    codes
}

async fn metrics_text(s: &Server) -> String {
    s.client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric(text: &str, series: &str) -> u64 {
    metric_if_any(text, series).unwrap_or_else(|| panic!("no {series} in {text}"))
}

/// A series' value, if the text has it (a counter appears once it was first counted).
fn metric_if_any(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_a_hostile_function_moves_to_the_slow_lane() {
    let s = start("workers = 2\nslow_workers = 1\nslow_queue = 2").await;
    for body in [
        json!({"name": "spin", "source": "for (;;) {}", "limits": {"timeout": 200}}),
        json!({"name": "double", "source": "input * 2"}),
    ] {
        let resp = s.send_json("/v1/functions", KEY_A, &body).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let invoke = |name: &str| {
        s.post(&format!("/v1/functions/{name}/invoke"), KEY_A)
            .json(&json!({"input": 21}))
            .send()
    };
    // The first run of a new function takes the fast lane; its timeout moves it.
    let (status, out) = json_of(invoke("spin").await.unwrap()).await;
    assert_eq!(
        (status, out["error"]["kind"].clone()),
        (StatusCode::OK, json!("timeout"))
    );
    let before = metrics_text(&s).await;
    assert_eq!(
        metric(&before, "palisade_lane_executions_total{lane=\"fast\"}"),
        1
    );
    // Now a burst of it queues in the slow lane (2 waiting at most: the rest get 429), while the
    // benign function keeps the fast lane to itself.
    let spins: Vec<_> = (0..6).map(|_| tokio::spawn(invoke("spin"))).collect();
    for _ in 0..20 {
        let (status, out) = json_of(invoke("double").await.unwrap()).await;
        assert_eq!((status, out["value"].clone()), (StatusCode::OK, json!(42)));
    }
    let codes = statuses(spins).await;
    assert!(codes.contains(&StatusCode::OK), "{codes:?}");
    assert!(codes.contains(&StatusCode::TOO_MANY_REQUESTS), "{codes:?}");
    let after = metrics_text(&s).await;
    let ok_spins = codes.iter().filter(|c| **c == StatusCode::OK).count() as u64;
    assert_eq!(
        metric(&after, "palisade_lane_executions_total{lane=\"fast\"}"),
        21
    );
    assert_eq!(
        metric(&after, "palisade_lane_executions_total{lane=\"slow\"}"),
        ok_spins
    );
    assert_eq!(metric(&after, "palisade_workers_live{lane=\"slow\"}"), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_invoke_bodies_are_checked_like_the_others() {
    let s = start("max_body = 2048").await;
    let resp = s
        .send_json(
            "/v1/functions",
            KEY_A,
            &json!({"name": "id", "source": "input"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let send = |body: String| {
        s.post("/v1/functions/id/invoke", KEY_A)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, out) = json_of(send("x".repeat(4096)).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(out["error"]["kind"], "payload_too_large");
    let (status, out) = json_of(send("[]".into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(out["error"]["kind"], "invalid_request");
    let (status, out) = json_of(send("{\n \"input\": }".into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (out["error"]["line"].clone(), out["error"]["column"].clone()),
        (json!(2), json!(11))
    );
    let (status, out) = json_of(send("{\"input\": 1, \"inptu\": 2}".into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    let (status, out) = json_of(send(String::new()).await.unwrap()).await;
    assert_eq!(
        (status, out["value"].clone()),
        (StatusCode::OK, Value::Null)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_readyz_waits_for_workers_that_answer() {
    // Workers that exit at once never answer their first job: the server is alive, not ready.
    let config = palisade_server::Config::parse(
        "database = \":memory:\"\nworker_command = [\"false\"]\nworkers = 1",
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(palisade_server::serve(config, listener, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().await.unwrap().starts_with("starting"));
    let _ = stop.send(());
    done.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_workers_past_the_memory_ceiling_are_recycled() {
    // Any worker is over a 1-byte ceiling: each is replaced after its first execution. The
    // replacement starts in the background while the old worker keeps serving, so keep invoking
    // until a second recycle shows the replacement took over (and was checked in its turn).
    let s = start("workers = 1\nworker_max_memory = 1").await;
    let mut recycles = 0;
    for i in 0..200 {
        let (status, out) = json_of(
            s.post("/v1/execute", KEY_A)
                .json(&json!({"source": "input + 1", "input": i}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, out["value"].clone()),
            (StatusCode::OK, json!(i + 1))
        );
        let text = metrics_text(&s).await;
        recycles = metric(&text, "palisade_worker_recycles_total{lane=\"fast\"}");
        assert_eq!(
            metric(&text, "palisade_worker_restarts_total{lane=\"fast\"}"),
            0
        );
        if recycles >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(recycles >= 2, "recycles: {recycles}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_a_job_that_waited_past_queue_timeout_is_answered_429() {
    let s = start("workers = 1\nqueue_timeout_ms = 200").await;
    // The only fast worker is busy for 1.5 s; a job queued behind it waits longer than 200 ms.
    let busy = s
        .post("/v1/execute", KEY_A)
        .json(&json!({"source": "for (;;) {}", "limits": {"timeout": 1500}}))
        .send();
    let waiting = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "1 + 1"}))
            .send()
            .await
    };
    let (busy, waiting) = tokio::join!(busy, waiting);
    let (status, out) = json_of(busy.unwrap()).await;
    assert_eq!(
        (status, out["error"]["kind"].clone()),
        (StatusCode::OK, json!("timeout"))
    );
    let waiting = waiting.unwrap();
    assert_eq!(waiting.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(waiting.headers()["retry-after"], "1");
    let (_, out) = json_of(waiting).await;
    assert_eq!(out["error"]["kind"], "overloaded");
    // Nothing queued now: the same request runs.
    let (status, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "1 + 1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, out["value"].clone()), (StatusCode::OK, json!(2)));
    s.stop().await;
}

/// The live worker processes of the server whose workers carry `tag`, by lane: (fast, slow).
/// A zombie is not among them (its command line reads empty).
fn lane_pids(tag: &str) -> (Vec<u32>, Vec<u32>) {
    worker_pids(tag).into_iter().partition(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        !String::from_utf8_lossy(&cmdline).contains("--nice")
    })
}

/// Whether a process is gone for good: exited and reaped (a zombie still has its `/proc` entry).
fn reaped(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `/readyz` answers 200.
async fn is_ready(s: &Server) -> bool {
    let resp = s.client.get(format!("{}/readyz", s.base)).send().await;
    resp.is_ok_and(|r| r.status() == StatusCode::OK)
}

/// Whether `palisade_workers_live` reads `fast` and `slow`, and exactly that many worker
/// processes of each lane exist.
async fn live_workers_are(s: &Server, fast: u64, slow: u64) -> bool {
    let text = metrics_text(s).await;
    let (f, sl) = lane_pids(&s.tag);
    metric(&text, "palisade_workers_live{lane=\"fast\"}") == fast
        && metric(&text, "palisade_workers_live{lane=\"slow\"}") == slow
        && (f.len() as u64, sl.len() as u64) == (fast, slow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_worker_killed_past_its_deadline_is_replaced_without_waiting_for_a_job() {
    // Calls of a native builtin that each take milliseconds and poll nothing, which QuickJS
    // sees its deadline in only after 10,000 of its polls (some 35 s here): the server kills
    // the lane's only worker 2 s past the 100 ms deadline. (Until 2026-12-02 the source was
    // `new Array(2 ** 32 - 1).join('')`, which now polls at every index.) Until 2026-11-30 the slot started a new one only when its next
    // job came, so /readyz said "starting: 0 fast" (and the gauge 0) until then, and a load
    // balancer honouring /readyz never sent that job.
    let s = start("workers = 1").await;
    let (status, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "const a = new Array(2e6).fill(0); for (;;) a.indexOf(1)", "limits": {"timeout": 100}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The guest outran its wall-clock limit: `timeout`, as `palisade run` reports it, not a
    // host failure (until 2026-12-01 this was 500 `internal`, "the worker missed its
    // deadline and was stopped", and counted as one in the metrics).
    assert_eq!(
        (status, out["error"]["kind"].clone()),
        (StatusCode::OK, json!("timeout")),
        "{out}"
    );
    assert_eq!(out["error"]["configured"], json!(100), "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the worker was stopped")),
        "{out}"
    );
    assert_eq!(
        metric(
            &metrics_text(&s).await,
            "palisade_executions_total{engine=\"quickjs\",kind=\"timeout\"}"
        ),
        1
    );
    // No other job is sent: the lane gets its worker back by itself.
    let started = Instant::now();
    while !(is_ready(&s).await && live_workers_are(&s, 1, 1).await) {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no replacement worker without a job: {}",
            metrics_text(&s).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = metrics_text(&s).await;
    assert_eq!(
        metric(&text, "palisade_worker_restarts_total{lane=\"fast\"}"),
        1
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_idle_workers_killed_from_outside_are_reaped_and_replaced_at_once() {
    // Until 2026-11-30 an idle worker's death was noticed only when its slot took a job: after
    // `kill -9` of every worker the processes stayed <defunct>, and /readyz and
    // palisade_workers_live still counted all of them.
    let s = start("workers = 2").await;
    // Ready means a worker per lane: wait for the second fast one too.
    let started = Instant::now();
    while !live_workers_are(&s, 2, 1).await {
        assert!(started.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let old = worker_pids(&s.tag);
    assert_eq!(old.len(), 3, "{old:?}");
    kill_workers_after(&s.tag, Duration::ZERO).await;
    let started = Instant::now();
    loop {
        let gone = old.iter().all(|&pid| reaped(pid));
        if gone && is_ready(&s).await && live_workers_are(&s, 2, 1).await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "killed workers reaped: {gone}; {:?}; {}",
            lane_pids(&s.tag),
            metrics_text(&s).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = metrics_text(&s).await;
    assert_eq!(
        metric(&text, "palisade_worker_restarts_total{lane=\"fast\"}"),
        2
    );
    assert_eq!(
        metric(&text, "palisade_worker_restarts_total{lane=\"slow\"}"),
        1
    );
    // And they serve.
    let (status, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "6 * 7"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, out["value"].clone()), (StatusCode::OK, json!(42)));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_job_waiting_for_a_busy_worker_is_refused_at_queue_timeout_and_never_runs() {
    // Until 2026-11-30 the wait was checked only when a slot dequeued the job: behind a worker
    // busy for 2 s, a client with a 300 ms queue timeout got its 429 after 1.8 s.
    let s = start("workers = 1\nqueue_timeout_ms = 300").await;
    let busy = s
        .post("/v1/execute", KEY_A)
        .json(&json!({"source": "const t = Date.now(); while (Date.now() - t < 2000) {}; 0"}))
        .send();
    // If it ran after its client was refused, this job would hold the worker for 1 s more.
    let refused = json!({"source": "const t = Date.now(); while (Date.now() - t < 1000) {}; 1"});
    let waiting = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = Instant::now();
        let resp = s.send_json("/v1/execute", KEY_A, &refused).await;
        (resp, sent.elapsed())
    };
    let (busy, (waiting, waited)) = tokio::join!(busy, waiting);
    assert_eq!(waiting.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(waiting.headers()["retry-after"], "1");
    assert!(
        waited < Duration::from_millis(1000),
        "answered after {waited:?}"
    );
    let (_, out) = json_of(waiting).await;
    assert_eq!(out["error"]["kind"], "overloaded");
    let (status, out) = json_of(busy.unwrap()).await;
    assert_eq!((status, out["value"].clone()), (StatusCode::OK, json!(0)));
    // The refused job never runs: the worker is free at once.
    let sent = Instant::now();
    let (status, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "1 + 1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, out["value"].clone()), (StatusCode::OK, json!(2)));
    assert!(
        sent.elapsed() < Duration::from_millis(700),
        "waited {:?}: the refused job ran",
        sent.elapsed()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_job_refused_at_queue_timeout_frees_its_place_in_the_queue() {
    // Until 2026-12-02 a job refused at its queue timeout kept its place until a slot dequeued
    // it: behind a busy worker, a queue of one stayed full, and the next job got 429 at once
    // (in ms, with no one waiting) instead of waiting for the worker (found by a sweep of the
    // service).
    let s = start("workers = 1\nqueue = 1\nqueue_timeout_ms = 600").await;
    let busy = s
        .post("/v1/execute", KEY_A)
        .json(&json!({"source": "const t = Date.now(); while (Date.now() - t < 1000) {}; 0"}))
        .send();
    let after = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = s
            .send_json("/v1/execute", KEY_A, &json!({"source": "1"}))
            .await;
        let metrics = s
            .get("/metrics", KEY_A)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Refused at ~700 ms; the worker is busy until ~1,000 ms, and this job may wait 600.
        let next = s
            .send_json("/v1/execute", KEY_A, &json!({"source": "2"}))
            .await;
        (refused, metrics, next)
    };
    let (busy, (refused, metrics, next)) = tokio::join!(busy, after);
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        metrics.contains("palisade_queue_depth{lane=\"fast\"} 0"),
        "{metrics}"
    );
    let (status, out) = json_of(next).await;
    assert_eq!((status, out["value"].clone()), (StatusCode::OK, json!(2)));
    let (status, out) = json_of(busy.unwrap()).await;
    assert_eq!((status, out["value"].clone()), (StatusCode::OK, json!(0)));
    s.stop().await;
}

/// [`json_of`] for bodies nested deeper than serde_json's default limit (128 levels; this test
/// parses at most about 1,000, well within a test thread's stack).
async fn deep_json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let mut de = serde_json::Deserializer::from_str(&text);
    de.disable_recursion_limit();
    (status, serde::Deserialize::deserialize(&mut de).unwrap())
}

/// `[[[…0…]]]`, nested `depth` levels deep.
fn nested(depth: usize) -> Value {
    let mut v = json!(0);
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

/// How deep `v` is nested, down its first elements.
fn depth_of(mut v: &Value) -> usize {
    let mut depth = 0;
    while let Some(inner) = v.as_array().and_then(|a| a.first()) {
        depth += 1;
        v = inner;
    }
    depth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_values_nested_1000_deep_pass_through_the_service() {
    // The contract converts results (and takes inputs) nested up to 1,000 levels. Until
    // 2026-11-30 the service parsed JSON with serde_json's default limit of 128 levels: such a
    // result was a 500 ("worker: bad reply: recursion limit exceeded"), such an input a 400 or
    // a 500 ("worker: malformed job"), and such a recorded execution could not be read back.
    let s = start("").await;
    let resp = s
        .send_json(
            "/v1/execute",
            KEY_A,
            &json!({"source": "let a = 0; for (let i = 0; i < 1000; i++) a = [a]; a"}),
        )
        .await;
    let id = resp.headers()["x-execution-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, out) = deep_json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{}", out["error"]);
    assert_eq!(depth_of(&out["value"]), 1000);
    let (status, rec) = deep_json_of(
        s.get(&format!("/v1/executions/{id}"), KEY_A)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!(depth_of(&rec["outcome"]["value"]), 1000);
    // An input as deep comes back whole, ad hoc and through a deployed function.
    let deep = nested(1000);
    let (status, out) = deep_json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "input", "input": deep}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", out["error"]);
    assert_eq!(out["value"], deep);
    let resp = s
        .send_json(
            "/v1/functions",
            KEY_A,
            &json!({"name": "id", "source": "input"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (status, out) = deep_json_of(
        s.post("/v1/functions/id/invoke", KEY_A)
            .json(&json!({"input": deep}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", out["error"]);
    assert_eq!(out["value"], deep);
    // Deeper: clean errors, never a crash.
    let (status, out) = deep_json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "let a = 0; for (let i = 0; i < 1001; i++) a = [a]; a"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, out["error"]["kind"].clone()),
        (StatusCode::OK, json!("not_serializable"))
    );
    for body in [
        json!({"source": "input", "input": nested(1001)}).to_string(),
        format!(
            "{{\"source\": \"input\", \"input\": {}{}}}",
            "[".repeat(200_000),
            "]".repeat(200_000)
        ),
    ] {
        let (status, out) = deep_json_of(
            s.post("/v1/execute", KEY_A)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
        assert_eq!(out["error"]["kind"], "invalid_request");
        assert!(
            out["error"]["message"].as_str().unwrap().contains("deep"),
            "{out}"
        );
    }
    let (status, out) = deep_json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "6 * 7"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, out["value"].clone()), (StatusCode::OK, json!(42)));
    s.stop().await;
}

/// SIGKILLs a process when dropped, if it is still the one started with `tag` (a test that
/// fails must not leave a worker spinning).
struct KillOnDrop {
    pid: u32,
    tag: String,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&self.tag) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .status();
        }
    }
}

/// A process's CPU time (user + system), in clock ticks, and its state letter.
fn cpu_and_state(pid: u32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the state.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((ticks, state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_worker_ends_when_its_server_is_killed() {
    // Until 2026-11-30 a worker inside a native builtin QuickJS never interrupts kept running
    // it at 100% CPU for minutes after its server was SIGKILLed, re-parented to PID 1. Here a
    // shell stands in for the server: it starts the worker on such a job and is killed.
    let worker = env!("CARGO_BIN_EXE_palisade-worker");
    let tag = format!(
        "orphan-{}",
        palisade::AccessContext::anonymous().execution_id
    );
    let dir = std::env::temp_dir().join(&tag);
    std::fs::create_dir_all(&dir).unwrap();
    let job = palisade_server::worker::Job::Run {
        engine: "quickjs".into(),
        request: palisade::Request::script(
            "const a = new Array(2e6).fill(0); for (;;) a.indexOf(1)",
        ),
        tenant: "t".into(),
        function: None,
        execution_id: "e".into(),
    };
    let jobs = dir.join("jobs");
    std::fs::write(&jobs, serde_json::to_string(&job).unwrap() + "\n").unwrap();
    let mut server = tokio::process::Command::new("sh")
        .args(["-c", "\"$0\" --tag \"$1\" < \"$2\" & echo $!; wait"])
        .arg(worker)
        .arg(&tag)
        .arg(&jobs)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
        .await
        .unwrap();
    let pid: u32 = line.trim().parse().unwrap();
    let _guard = KillOnDrop {
        pid,
        tag: tag.clone(),
    };
    // Wait until the worker is well into the job (a tenth of a second of CPU).
    let started = Instant::now();
    while cpu_and_state(pid).is_none_or(|(ticks, _)| ticks < 10) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the job never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().await.unwrap();
    let killed = Instant::now();
    while cpu_and_state(pid).is_some_and(|(_, state)| state != 'Z') {
        assert!(
            killed.elapsed() < Duration::from_secs(3),
            "the worker outlived its server: {:?}",
            cpu_and_state(pid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A SQLite file in a directory of its own, removed when this is.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "palisade-{test}-{}",
            palisade::AccessContext::anonymous().execution_id
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> String {
        self.0.join("palisade.db").display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `error` object of a response that must be in the JSON error shape.
async fn error_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let mime = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    assert_eq!(
        mime.as_deref(),
        Some("application/json"),
        "{status}: {text:?}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    let error = body["error"].clone();
    assert!(
        error["kind"].is_string() && error["message"].is_string(),
        "{status}: {text}"
    );
    (status, error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_limits_above_the_servers_ceilings_are_refused() {
    // Until 2026-12-01 a request could ask for the contract's maxima: with
    // {"result": 1 GiB, "memory": 4 GiB, "timeout": 60 s}, `"x".repeat(1e9)` took the server
    // to 3.7 GB of RSS, its outcome could not be stored (SQLite: "string or blob too big"),
    // the client got 500, and the metrics counted an `ok`. The same limits on a cheap source
    // ran (200). Now the defaults cap `result` and `output` at 256 MiB, and a limit above its
    // ceiling is refused before any worker sees it.
    let s = start("workers = 1").await;
    let reviewers =
        json!({"result": 1_073_741_824u64, "memory": 4_294_967_296u64, "timeout": 60_000});
    let (status, err) = error_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "1", "limits": reviewers}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["kind"], "invalid_request");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("limits.result = 1073741824")
            && message.contains("max_limits.result = 268435456"),
        "{message}"
    );
    let (status, err) = error_of(
        s.post("/v1/functions", KEY_A)
            .json(&json!({"name": "big", "source": "1", "limits": {"output": 268_435_457}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("max_limits.output"));
    let resp = s.get("/v1/functions/big", KEY_A).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // At the ceiling, it runs.
    let (status, out) = json_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "1", "limits": {"result": 268_435_456, "output": 268_435_456}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &out["value"]),
        (StatusCode::OK, &json!(1)),
        "{out}"
    );
    s.stop().await;

    // The operator's own ceilings; the configuration itself is checked at load.
    let s = start("workers = 1\n[limits]\ntimeout = 1000\n[max_limits]\ntimeout = 2000\nmemory = 134217728\nfuel = 1000").await;
    for (limits, named) in [
        (json!({"timeout": 2001}), "max_limits.timeout = 2000 (ms)"),
        (
            json!({"memory": 134_217_729}),
            "max_limits.memory = 134217728",
        ),
        (json!({"fuel": 1001}), "max_limits.fuel = 1000"),
        (json!({"stack": 67_108_865}), "max_limits.stack = 67108864"),
    ] {
        let (status, err) = error_of(
            s.post("/v1/execute", KEY_A)
                .json(&json!({"source": "1", "limits": limits}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{limits}: {err}");
        assert!(err["message"].as_str().unwrap().contains(named), "{err}");
    }
    let resp = s
        .send_json(
            "/v1/execute",
            KEY_A,
            &json!({"source": "1", "limits": {"timeout": 2000, "memory": 134_217_728}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    s.stop().await;
    let parse = palisade_server::Config::parse;
    parse("[limits]\noutput = 0\n[max_limits]\nresult = 1048576\noutput = 0").unwrap();
    for bad in [
        "[max_limits]\nmemory = 34359738368",
        "[max_limits]\nresult = 2147483648",
        "[max_limits]\ntimeout = 3600001",
        "[limits]\ntimeout = 3000\n[max_limits]\ntimeout = 2000",
        "[limits]\nresult = 268435457",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_an_execution_that_cannot_be_recorded_is_counted_as_internal() {
    // Until 2026-12-01 the metrics counted an execution (as its guest outcome, `ok` here)
    // before it was recorded; when recording failed the client got 500 `internal`.
    let dir = TempDir::new("unrecorded");
    let s = start_on(&dir.db(), "workers = 1").await;
    let db = rusqlite::Connection::open(dir.db()).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON executions BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .unwrap();
    let (status, err) = error_of(
        s.post("/v1/execute", KEY_A)
            .json(&json!({"source": "1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &err["kind"]),
        (StatusCode::INTERNAL_SERVER_ERROR, &json!("internal"))
    );
    let text = metrics_text(&s).await;
    assert_eq!(
        metric(
            &text,
            "palisade_executions_total{engine=\"quickjs\",kind=\"internal\"}"
        ),
        1
    );
    assert!(!text.contains("kind=\"ok\""), "{text}");
    db.execute_batch("DROP TRIGGER refuse;").unwrap();
    let resp = s
        .send_json("/v1/execute", KEY_A, &json!({"source": "1"}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = metrics_text(&s).await;
    assert_eq!(
        metric(
            &text,
            "palisade_executions_total{engine=\"quickjs\",kind=\"ok\"}"
        ),
        1
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_tenants_fetch_allowlist_may_not_name_internal_addresses() {
    // Until 2026-12-01 a request's policy replaced the server's field by field, and fetch
    // reaches an internal address whenever an allowlist entry names it: any tenant could read
    // this server's /metrics, the cloud metadata service or the private network.
    let dir = TempDir::new("fetch-ceiling");
    let s = start_on(
        &dir.db(),
        "workers = 1\n[policy.fetch]\nallow = [\"http://127.0.0.1:9/\"]",
    )
    .await;
    let own = s.base.replace("http://", "");
    let exploit = json!({
        "source": format!("fetch('http://{own}/metrics').then(r => r.text())"),
        "policy": {"fetch": {"allow": [format!("http://{own}/")]}},
    });
    let (status, err) = error_of(
        s.post("/v1/execute", KEY_A)
            .json(&exploit)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("`http://{own}/`"))
            && message.contains("loopback")
            && message.contains("allow_internal_fetch"),
        "{message}"
    );
    // Nor may it have a worker hold gigabytes of unread response bodies.
    let greedy = json!({
        "source": "1",
        "policy": {"fetch": {"allow": ["https://api.example.com/"], "max_requests": 1000,
                   "max_response_bytes": 1073741824u64}},
    });
    let (status, err) = error_of(s.send_json("/v1/execute", KEY_A, &greedy).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("max_fetch_bytes"),
        "{err}"
    );
    for (entry, named) in [
        ("http://169.254.169.254/latest/", "cloud metadata"),
        ("http://[::1]:8080/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://0.0.0.0:8080/", "unspecified"),
        ("http://2130706433/", "loopback"),
        ("http://localhost:8080/", "localhost"),
        ("http://metrics.localhost/", "localhost"),
    ] {
        for path in ["/v1/execute", "/v1/functions"] {
            let body = json!({"name": "f", "source": "1", "policy": {"fetch": {"allow": [entry]}}});
            let mut body = body.as_object().unwrap().clone();
            if path == "/v1/execute" {
                body.remove("name");
            }
            let (status, err) =
                error_of(s.post(path, KEY_A).json(&body).send().await.unwrap()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{entry}: {err}");
            assert!(
                err["message"].as_str().unwrap().contains(named),
                "{entry}: {err}"
            );
        }
    }
    // Public entries pass, and so does the operator's own entry, named again.
    for entry in ["https://api.example.com/v1/", "http://127.0.0.1:9/"] {
        let body =
            json!({"source": "1", "policy": {"fetch": {"allow": [entry], "timeout_ms": 100}}});
        let resp = s.send_json("/v1/execute", KEY_A, &body).await;
        assert_eq!(resp.status(), StatusCode::OK, "{entry}");
    }
    // A function stored before the rule is refused at invocation.
    let storage = palisade_server::SqliteStorage::open(std::path::Path::new(&dir.db())).unwrap();
    let mut request = palisade::Request::script("1");
    request.policy.fetch.allow = vec!["http://169.254.169.254/".parse().unwrap()];
    palisade_server::Storage::put_function(
        &storage,
        &palisade_server::storage::FunctionRecord {
            tenant: "alice".into(),
            name: "old".into(),
            engine: "quickjs".into(),
            request,
            created_at: 0,
        },
    )
    .unwrap();
    let (status, err) = error_of(
        s.post("/v1/functions/old/invoke", KEY_A)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("deploy it again"),
        "{err}"
    );
    s.stop().await;

    // The operator may allow internal addresses, and may hold every entry to a ceiling.
    let s = start(
        "workers = 1\nallow_internal_fetch = true\n\
         fetch_allow_ceiling = [\"https://api.example.com/v1/\", \"http://127.0.0.1:9/\"]",
    )
    .await;
    for (entry, ok) in [
        ("https://api.example.com/v1/users/", true),
        ("http://127.0.0.1:9/a/", true),
        ("https://api.example.com/v2/", false),
        ("http://api.example.com/v1/", false),
        ("http://127.0.0.1:10/", false),
    ] {
        let body = json!({"source": "1", "policy": {"fetch": {"allow": [entry]}}});
        let resp = s.send_json("/v1/execute", KEY_A, &body).await;
        if ok {
            assert_eq!(resp.status(), StatusCode::OK, "{entry}");
        } else {
            let (status, err) = error_of(resp).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{entry}");
            assert!(
                err["message"]
                    .as_str()
                    .unwrap()
                    .contains("fetch_allow_ceiling"),
                "{err}"
            );
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_function_names_made_only_of_dots_are_refused() {
    // Until 2026-12-01 `.` and `..` deployed (201), but clients resolve them as dot segments:
    // `/v1/functions/../invoke` reaches `/v1/invoke`.
    let s = start("workers = 1").await;
    for name in [".", "..", "..."] {
        let (status, err) = error_of(
            s.post("/v1/functions", KEY_A)
                .json(&json!({"name": name, "source": "1"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {err}");
    }
    for name in [".a", "a..b", "-"] {
        let resp = s
            .send_json(
                "/v1/functions",
                KEY_A,
                &json!({"name": name, "source": "1"}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{name}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_path_and_method_errors_have_the_json_error_shape() {
    // Until 2026-12-01 a path parameter that is not UTF-8 got axum's text/plain 400 ("Invalid
    // URL: Invalid UTF-8 in `name`"), and a method a route lacks an empty 405.
    let s = start("workers = 1").await;
    let url = |path: &str| format!("{}{path}", s.base);
    for (method, path) in [
        (reqwest::Method::DELETE, "/v1/functions/%FF"),
        (reqwest::Method::GET, "/v1/functions/%FF"),
        (reqwest::Method::POST, "/v1/functions/%FF/invoke"),
        (reqwest::Method::GET, "/v1/executions/%C0"),
    ] {
        let resp = s
            .client
            .request(method.clone(), url(path))
            .bearer_auth(KEY_A)
            .send()
            .await
            .unwrap();
        let (status, err) = error_of(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {err}");
        assert_eq!(err["kind"], "invalid_request");
    }
    for (method, path, key) in [
        (reqwest::Method::PUT, "/v1/execute", Some(KEY_A)),
        (reqwest::Method::PATCH, "/v1/functions/f", Some(KEY_A)),
        (reqwest::Method::DELETE, "/healthz", None),
    ] {
        let mut req = s.client.request(method.clone(), url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.headers().contains_key("allow"), "{method} {path}");
        let (status, err) = error_of(resp).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(err["kind"], "method_not_allowed");
    }
    let (_, doc) = json_of(s.client.get(url("/v1/openapi.json")).send().await.unwrap()).await;
    for (path, method) in [
        ("/v1/functions/{name}", "get"),
        ("/v1/functions/{name}", "delete"),
        ("/v1/functions/{name}/invoke", "post"),
        ("/v1/executions/{id}", "get"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"]["400"].is_object(),
            "{method} {path}"
        );
    }
    s.stop().await;
}

/// Found by a hostile review (2026-11-30): a client that hung up mid-run dropped the run's
/// handler, so the run was neither recorded, counted nor classified, and a hostile function
/// invoked that way stayed in the fast lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_run_whose_client_hung_up_is_still_recorded_counted_and_classified() {
    let s = start("workers = 2\nslow_workers = 1").await;
    let resp = s
        .send_json(
            "/v1/functions",
            KEY_A,
            &json!({"name": "spin", "source": "for (;;) {}", "limits": {"timeout": 300}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // The client gives up long before the run's timeout.
    let gone = s
        .post("/v1/functions/spin/invoke", KEY_A)
        .timeout(Duration::from_millis(50))
        .send()
        .await;
    assert!(gone.is_err(), "the client hung up");
    let counted = |text: &str| {
        metric_if_any(
            text,
            "palisade_executions_total{engine=\"quickjs\",kind=\"timeout\"}",
        )
        .unwrap_or(0)
    };
    let started = Instant::now();
    while counted(&metrics_text(&s).await) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the run was never counted: {}",
            metrics_text(&s).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (Executions are counted once recorded, as `internal` if recording failed: so this run
    // was recorded.)
    // Classified: its next run goes to the slow lane.
    let before = metric(
        &metrics_text(&s).await,
        "palisade_lane_executions_total{lane=\"slow\"}",
    );
    let _ = s
        .post("/v1/functions/spin/invoke", KEY_A)
        .send()
        .await
        .unwrap();
    let after = metric(
        &metrics_text(&s).await,
        "palisade_lane_executions_total{lane=\"slow\"}",
    );
    assert_eq!(
        after,
        before + 1,
        "the hostile function stayed in the fast lane"
    );
    s.stop().await;
}

/// A raw TCP connection to the server.
async fn connect(s: &Server) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (EOF or reset), or `within` has passed:
/// what arrived, and whether the connection was closed.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (got, false),
            Ok(Ok(0) | Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response whose body has a `Content-Length`, or gives up after `within`.
async fn read_response(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return Some(text);
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

/// Slowloris: a connection that never finishes a request's head, or sends nothing, or sits
/// idle after a request, is closed at `header_timeout_ms`. Until 2026-12-02 axum's `serve`
/// set no timer, so hyper applied no header timeout and such connections stayed open for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_a_connection_that_sends_no_request_is_closed_at_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let s = start("header_timeout_ms = 300").await;
    let started = Instant::now();
    let mut partial = connect(&s).await;
    partial
        .write_all(b"POST /v1/execute HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = connect(&s).await;
    let mut idle = connect(&s).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_response(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
    for stream in [&mut partial, &mut silent, &mut idle] {
        let (_, closed) = read_until_closed(stream, Duration::from_secs(10)).await;
        assert!(closed, "a connection was still open after 10 s");
    }
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The server still serves, and counted the timeouts.
    let fresh = reqwest::Client::new();
    let text = fresh
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric(&text, "palisade_client_timeouts_total{phase=\"head\"}") >= 3,
        "{text}"
    );
    // The timer runs only while the server waits for a head: a run longer than it is answered.
    let slow = json!({"source": "const t = Date.now(); while (Date.now() - t < 600) {}; 'done'"});
    let resp = fresh
        .post(format!("{}/v1/execute", s.base))
        .bearer_auth(KEY_A)
        .json(&slow)
        .send()
        .await
        .unwrap();
    let (status, out) = json_of(resp).await;
    assert_eq!((status, &out["value"]), (StatusCode::OK, &json!("done")));
    s.stop().await;
}

/// A body that trickles in is answered 408 at `body_timeout_ms`, however steadily it drips,
/// and its connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_a_body_that_trickles_in_is_answered_408() {
    use tokio::io::AsyncWriteExt;
    let s = start("body_timeout_ms = 300").await;
    let stream = connect(&s).await;
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /v1/execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"source\": \"1\""
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A space every 20 ms: never idle, never done.
    let drip = tokio::spawn(async move {
        for _ in 0..500 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if write.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    let closed = {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf)).await {
                Err(_) => break false,
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    drip.abort();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"kind\":\"request_timeout\""), "{text}");
    assert!(closed, "the connection stayed open");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let text = metrics_text(&s).await;
    assert_eq!(
        metric(&text, "palisade_client_timeouts_total{phase=\"body\"}"),
        1
    );
    s.stop().await;
}

/// A client that asks for a large answer and reads none of it loses its connection at
/// `send_timeout_ms`, and the answer it held is freed; it could hold both for good before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_a_client_that_reads_no_answer_loses_its_connection_at_send_timeout() {
    use tokio::io::AsyncWriteExt;
    let s = start("send_timeout_ms = 300").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket
        .connect(s.base.trim_start_matches("http://").parse().unwrap())
        .await
        .unwrap();
    // 32 MiB of output: far more than the two sockets' buffers hold.
    let body = json!({
        "source": "console.log('x'.repeat(32 << 20)); 1",
        "limits": {"output": 64 << 20, "memory": 512 << 20},
    })
    .to_string();
    let head = format!(
        "POST /v1/execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let started = Instant::now();
    loop {
        let text = metrics_text(&s).await;
        if metric(&text, "palisade_client_timeouts_total{phase=\"send\"}") == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no send timeout: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What the sockets held arrives, then the end: not the whole answer.
    let (got, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed, "the connection stayed open");
    assert!(got.len() < 32 << 20, "{} bytes arrived", got.len());
    s.stop().await;
}

/// Past `max_connections` a new connection waits, unserved, until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_connections_past_max_connections_wait_for_one_to_close() {
    use tokio::io::AsyncWriteExt;
    let mut s = start("max_connections = 2").await;
    // The readiness poll's pooled connection goes with its client.
    s.client = reqwest::Client::new();
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = connect(&s).await;
    let mut second = connect(&s).await;
    for stream in [&mut first, &mut second] {
        stream.write_all(healthz).await.unwrap();
        let answer = read_response(stream, Duration::from_secs(10)).await;
        assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
    }
    // Both stay open (kept alive): a third is not served...
    let mut third = connect(&s).await;
    third.write_all(healthz).await.unwrap();
    assert!(
        read_response(&mut third, Duration::from_millis(500))
            .await
            .is_none(),
        "a third connection was served past max_connections = 2"
    );
    // ... until one closes.
    drop(first);
    let answer = read_response(&mut third, Duration::from_secs(10)).await;
    assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
    // Shutdown closes the idle kept-alive connections and returns.
    tokio::time::timeout(Duration::from_secs(30), s.stop())
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut second, Duration::from_secs(5)).await;
    assert!(closed);
}
