//! `fetch` speaks HTTP/2 (negotiated by ALPN over TLS) and HTTP/1.1, against a real hyper
//! server on 127.0.0.1 with a self-signed certificate the host is told to trust.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use palisade_core::host::{HostCalls, HostError, HostValue};
use palisade_core::Policy;
use palisade_host::{AccessContext, HostServices, Session};

/// Starts a TLS server offering `alpn`; every response's body is the request's HTTP version.
fn start(alpn: &[&[u8]]) -> (u16, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate");
    let pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        rt.block_on(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service =
                        service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                            let body = format!("{:?} {}", req.version(), req.uri().path());
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    (port, pem)
}

fn session(port: u16, trusted_pem: &str) -> Session {
    let services = HostServices::new()
        .add_root_certificate(trusted_pem.as_bytes())
        .expect("root");
    let policy: Policy = serde_json::from_value(serde_json::json!({
        "fetch": { "allow": [format!("https://127.0.0.1:{port}/")] }
    }))
    .expect("policy");
    Session::new(
        &services,
        &policy,
        Instant::now() + Duration::from_secs(10),
        AccessContext::anonymous(),
    )
}

fn get(session: &Session, port: u16, path: &str) -> Result<(serde_json::Value, String), HostError> {
    let req = serde_json::json!({
        "url": format!("https://127.0.0.1:{port}{path}"),
        "method": "GET", "headers": [], "redirect": "follow",
    });
    let meta = match session.call("fetch", &req.to_string(), None)? {
        HostValue::Str(s) => serde_json::from_str::<serde_json::Value>(&s).expect("meta"),
        other => panic!("fetch returned {other:?}"),
    };
    let handle = meta["body"].as_u64().expect("body handle");
    match session.call("fetch.body", &format!("{handle} text"), None)? {
        HostValue::Str(s) => Ok((meta, s)),
        other => panic!("body: {other:?}"),
    }
}

#[test]
fn fetch_negotiates_http2_over_tls() {
    let (port, pem) = start(&[b"h2", b"http/1.1"]);
    let (meta, body) = get(&session(port, &pem), port, "/two").expect("fetch");
    assert_eq!(body, "HTTP/2.0 /two");
    assert_eq!(meta["status"], 200);
    // HTTP/2 has no reason phrase.
    assert_eq!(meta["statusText"], "");
}

#[test]
fn fetch_speaks_http1_when_the_server_only_offers_it() {
    let (port, pem) = start(&[b"http/1.1"]);
    let (meta, body) = get(&session(port, &pem), port, "/one").expect("fetch");
    assert_eq!(body, "HTTP/1.1 /one");
    assert_eq!(meta["statusText"], "OK");
}

#[test]
fn fetch_refuses_an_untrusted_certificate() {
    let (port, _) = start(&[b"h2"]);
    let (_, other) = start(&[b"h2"]);
    let err = get(&session(port, &other), port, "/").unwrap_err();
    assert_eq!(err.name, "TypeError");
    assert!(err.message.starts_with("fetch failed: "), "{}", err.message);
}
