//! `palisade serve` as a user starts it: the real binary, its `worker` subcommand as the worker
//! processes, plain HTTP/1.1 over loopback, and SIGTERM to stop it.
#![allow(clippy::unwrap_used)] // test helpers

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One HTTP/1.1 request with `Connection: close`; the status and the body.
fn http(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serve_starts_fast_answers_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("palisade-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("palisade.toml");
    std::fs::write(
        &config,
        "workers = 1\n[[keys]]\nkey = \"test-key-0123456789\"\ntenant = \"t1\"\n",
    )
    .unwrap();
    let db = dir.join("palisade.db");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "2s",
            "--config",
        ])
        .arg(&config)
        .arg("--db")
        .arg(&db)
        .env("PALISADE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    loop {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nConnection: close\r\n\r\n");
            let mut t = String::new();
            let _ = s.read_to_string(&mut t);
            if t.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(5), "not ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    let ready = started.elapsed();
    eprintln!("startup to ready: {ready:?}");

    let auth = "Authorization: Bearer test-key-0123456789\r\n";
    let (status, _) = http(&addr, "POST", "/v1/execute", "", r#"{"source": "1"}"#);
    assert_eq!(status, 401);
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/execute",
        auth,
        r#"{"source": "input * 2", "input": 21}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["value"], 42);
    // The default timeout came from the flag.
    let (_, body) = http(
        &addr,
        "POST",
        "/v1/functions",
        auth,
        r#"{"name": "f", "source": "input"}"#,
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["limits"]["timeout"], 2000);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The function survived in the database.
    assert!(std::fs::metadata(&db).unwrap().len() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}
