//! The real server, with real workers, on PostgreSQL storage (`database = "postgres://..."`):
//! deploy, invoke, read the execution back, audit secret reads from the workers, and find it
//! all again after a restart. Needs `PALISADE_TEST_POSTGRES_URL` (see `tests/storage.rs`).
#![allow(clippy::unwrap_used)] // test helpers

use palisade_server::Storage;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;

mod common;

const KEY_A: &str = "key-alice-0123456789";
const KEY_B: &str = "key-bob-0123456789ab";

struct Server {
    base: String,
    client: reqwest::Client,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<Result<(), palisade_server::ServeError>>,
}

async fn start(config: &str) -> Server {
    let config = palisade_server::Config::parse(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(palisade_server::serve(config, listener, async move {
        let _ = rx.await;
    }));
    Server {
        base,
        client: reqwest::Client::new(),
        stop,
        done,
    }
}

impl Server {
    async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Response {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.bearer_auth(key).send().await.unwrap();
        let id = resp
            .headers()
            .get("x-execution-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = resp.status();
        Response {
            status,
            id,
            body: resp.json().await.unwrap(),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.done.await.unwrap().unwrap();
    }
}

struct Response {
    status: StatusCode,
    id: Option<String>,
    body: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_executions_and_audit_live_in_postgres_across_restarts() {
    // The sync client must not run on the async runtime's threads.
    let Some(schema) = tokio::task::block_in_place(|| common::PgSchema::new("service")) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("palisade-srv-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("secrets.json");
    let key = palisade::MasterKey::generate().unwrap();
    palisade::FileSecretStore::open(&store, &key)
        .unwrap()
        .put("alice", "API_TOKEN", "tok-123456789", None)
        .unwrap();
    let worker = env!("CARGO_BIN_EXE_palisade-worker");
    // The workers get `database` too, and write the audit log through it.
    let config = format!(
        "database = \"{}\"\nsecrets = \"{}\"\nworkers = 2\n\
         worker_command = [\"env\", \"PALISADE_MASTER_KEY={}\", \"{worker}\"]\n\
         [[keys]]\nkey = \"{KEY_A}\"\ntenant = \"alice\"\n[[keys]]\nkey = \"{KEY_B}\"\ntenant = \"bob\"\n",
        schema.url,
        store.display(),
        key.to_base64()
    );

    let s = start(&config).await;
    let deploy = json!({
        "name": "double",
        "source": "export default (x) => { console.log(secrets.get('API_TOKEN')); return x * 2 }",
        "mode": "module",
        "policy": {"secrets": ["API_TOKEN"]},
    });
    let r = s.call("POST", "/v1/functions", KEY_A, Some(deploy)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = s
        .call(
            "POST",
            "/v1/functions/double/invoke",
            KEY_A,
            Some(json!({"input": 21})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["value"], 42, "{}", r.body);
    assert_eq!(r.body["stdout"], "[REDACTED]\n");
    let first = r.id.unwrap();
    let first_outcome = r.body;
    let r = s
        .call("GET", &format!("/v1/executions/{first}"), KEY_A, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["function"], "double");
    assert_eq!(r.body["outcome"], first_outcome);
    let r = s
        .call("GET", &format!("/v1/executions/{first}"), KEY_B, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Concurrent requests share the storage's connections.
    let runs: Vec<_> = (0..8)
        .map(|i| {
            let (client, base) = (s.client.clone(), s.base.clone());
            tokio::spawn(async move {
                let resp = client
                    .post(format!("{base}/v1/execute"))
                    .bearer_auth(KEY_B)
                    .json(&json!({"source": "input + 1", "input": i}))
                    .send()
                    .await
                    .unwrap();
                resp.json::<Value>().await.unwrap()
            })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let out = run.await.unwrap();
        assert_eq!(out["value"], i + 1, "{out}");
    }
    s.stop().await;

    // A new server on the same database: migrations find it current, and everything is there.
    let s = start(&config).await;
    let r = s.call("GET", "/v1/functions", KEY_A, None).await;
    assert_eq!(
        r.body["functions"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    let r = s
        .call("GET", &format!("/v1/executions/{first}"), KEY_A, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["outcome"], first_outcome);
    let r = s
        .call(
            "POST",
            "/v1/functions/double/invoke",
            KEY_A,
            Some(json!({"input": 5})),
        )
        .await;
    assert_eq!(r.body["value"], 10, "{}", r.body);
    let second = r.id.unwrap();
    s.stop().await;

    // The workers' audit records, in order.
    let storage = tokio::task::spawn_blocking(move || {
        let storage = palisade_server::open_storage(std::path::Path::new(&schema.url)).unwrap();
        let audit = storage.audit("alice").unwrap();
        drop(storage);
        drop(schema);
        audit
    })
    .await
    .unwrap();
    let ids: Vec<&str> = storage.iter().map(|r| r.execution_id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    assert!(storage
        .iter()
        .all(|r| r.result == palisade::AccessResult::Granted && r.secret == "API_TOKEN"));
    let _ = std::fs::remove_dir_all(&dir);
}
