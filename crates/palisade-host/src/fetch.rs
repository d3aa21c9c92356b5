//! `fetch`: a real HTTP/1.1 and HTTP/2 client (reqwest on a private current-thread runtime),
//! fenced by the policy's URL allowlist and an address deny list.
//!
//! For every hop (the first request and each redirect) the URL is parsed as browsers parse it
//! (WHATWG: IP literals in any form normalized, IDNA applied), credentials are refused, the
//! allowlist is checked, the host is resolved here and every address is checked against the
//! deny list; the connection can then only go to the addresses that passed (the client's
//! resolver answers from that pinned list alone), so DNS cannot change the answer between the
//! check and the connection.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use palisade_core::host::{HostError, HostValue};
use palisade_core::policy::{FetchPolicy, DENIED_PREFIX};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};

/// Why an address is refused unless the allowlist names it, or `None` if it is public.
pub fn denied_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return denied_v4(v4).or(Some("IPv4-mapped"));
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg[0..6] == [0; 6] {
                // `::a.b.c.d`, IPv4-compatible (deprecated; some stacks still map it to IPv4).
                Some("IPv4-compatible")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("unique local (private)")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if seg[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] || seg[0..2] == [0x64, 0xff9b] {
                Some("NAT64")
            } else if seg[0] == 0x2002 {
                Some("6to4")
            } else if seg[0] == 0xfd00 && seg[1] == 0x0ec2 {
                Some("cloud metadata")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("documentation")
            } else {
                None
            }
        }
    }
}

/// The range [`denied_range`] refuses that `host` lies in, when `host` is an IP literal as a
/// fetch allowlist entry's host is written (`UrlPattern::host`: dotted IPv4, bracketed IPv6;
/// other IPv4 spellings such as `0x7f000001` are read as browsers read them), or `None` for a
/// public address or a domain name.
///
/// An entry naming such an address is what lets `fetch` reach it: so a service that takes
/// allowlists from untrusted callers checks their entries with this, against the very ranges
/// `fetch` enforces, instead of keeping a list of its own that could drift from them. A domain
/// needs no such check: `fetch` refuses whatever internal address it resolves to unless an
/// entry names that address.
///
/// ```
/// use palisade_host::fetch::internal_address_range;
/// assert_eq!(internal_address_range("127.0.0.1"), Some("loopback"));
/// assert_eq!(internal_address_range("[::ffff:a9fe:a9fe]"), Some("cloud metadata"));
/// assert_eq!(internal_address_range("93.184.215.14"), None);
/// assert_eq!(internal_address_range("api.example.com"), None);
/// ```
pub fn internal_address_range(host: &str) -> Option<&'static str> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return denied_range(ip);
    }
    match url::Host::parse(host).ok()? {
        url::Host::Ipv4(v4) => denied_range(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => denied_range(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

fn denied_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if o[0] == 169 && o[1] == 254 {
        if o == [169, 254, 169, 254] {
            Some("cloud metadata")
        } else {
            Some("link-local")
        }
    } else if ip.is_private() {
        Some("private")
    } else if o[0] == 0 {
        Some("unspecified (\"this network\")")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if o[0] >= 240 {
        Some("reserved")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else if ip.is_documentation() {
        Some("documentation")
    } else {
        None
    }
}

/// An address as an allowlist entry's host reads (the `url` crate's serialisation, so an
/// IPv4-mapped IPv6 address is `[::ffff:7f00:1]`, not Rust's `[::ffff:127.0.0.1]`).
fn ip_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => url::Host::<String>::Ipv4(v4).to_string(),
        IpAddr::V6(v6) => url::Host::<String>::Ipv6(v6).to_string(),
    }
}

/// The request the prelude hands over: every field already a primitive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FetchRequest {
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    redirect: String,
    #[serde(default)]
    body_text: Option<String>,
}

/// What the prelude turns into a `Response`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseMeta {
    status: u16,
    status_text: String,
    url: String,
    redirected: bool,
    headers: Vec<(String, String)>,
    body: usize,
    /// A redirect answered to `redirect: "manual"`: the guest sees `type` `"opaqueredirect"`.
    opaque_redirect: bool,
}

/// The statuses fetch follows a `Location` for (WHATWG's redirect statuses; a 300, 304 or 305
/// is an ordinary response).
fn followed_redirect(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The client's resolver: answers only from addresses this module checked.
#[derive(Debug, Default, Clone)]
struct Pinned(Arc<Mutex<HashMap<String, Vec<SocketAddr>>>>);

impl Resolve for Pinned {
    fn resolve(&self, name: Name) -> Resolving {
        let addrs = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name.as_str())
            .cloned();
        Box::pin(async move {
            match addrs {
                Some(a) => Ok(Box::new(a.into_iter()) as Addrs),
                None => Err("host was not checked against the policy".into()),
            }
        })
    }
}

const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-authorization",
    "proxy-connection",
];

/// One execution's fetch state: its policy, deadline, counters and response bodies.
#[derive(Debug)]
pub(crate) struct Fetcher {
    policy: FetchPolicy,
    deadline: Instant,
    extra_roots: Arc<Vec<reqwest::Certificate>>,
    requests: u32,
    runtime: Option<Arc<tokio::runtime::Runtime>>,
    client: Option<reqwest::Client>,
    pinned: Pinned,
    bodies: Vec<Option<Vec<u8>>>,
}

/// A refusal under the policy: a `TypeError` whose message says which rule refused the URL.
fn denied(message: String) -> HostError {
    HostError::type_error(format!("{DENIED_PREFIX}{message}"))
}

fn failed(message: impl std::fmt::Display) -> HostError {
    HostError::type_error(format!("fetch failed: {message}"))
}

impl Fetcher {
    pub(crate) fn new(
        policy: FetchPolicy,
        deadline: Instant,
        extra_roots: Arc<Vec<reqwest::Certificate>>,
    ) -> Self {
        Fetcher {
            policy,
            deadline,
            extra_roots,
            requests: 0,
            runtime: None,
            client: None,
            pinned: Pinned::default(),
            bodies: Vec::new(),
        }
    }

    fn client(&mut self) -> Result<(Arc<tokio::runtime::Runtime>, reqwest::Client), HostError> {
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| failed(format!("cannot start the HTTP client: {e}")))?;
            self.runtime = Some(Arc::new(rt));
        }
        if self.client.is_none() {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(self.pinned.clone()))
                .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")));
            for cert in self.extra_roots.iter() {
                builder = builder.add_root_certificate(cert.clone());
            }
            self.client = Some(
                builder
                    .build()
                    .map_err(|e| failed(format!("cannot start the HTTP client: {e}")))?,
            );
        }
        // Runtime::block_on, not Handle::block_on: only the former drives a current-thread
        // runtime's IO and timers.
        let handle = self.runtime.clone().ok_or_else(|| failed("no runtime"))?;
        let client = self.client.clone().ok_or_else(|| failed("no client"))?;
        Ok((handle, client))
    }

    /// Time left for one request: the per-request timeout, cut to the run's deadline.
    fn budget(&self) -> Result<Duration, HostError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed("the run's deadline has passed"));
        }
        Ok(left.min(Duration::from_millis(self.policy.timeout_ms)))
    }

    /// Checks a URL against the allowlist and resolves it to the addresses it may reach.
    fn admit(&mut self, url: &url::Url, handle: &tokio::runtime::Runtime) -> Result<(), HostError> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(denied(format!(
                "fetch of {url}: only http and https URLs can be fetched"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // The message names the URL without the credentials.
            let mut shown = url.clone();
            let _ = shown.set_username("");
            let _ = shown.set_password(None);
            return Err(denied(format!(
                "fetch of {shown}: URLs with credentials (user info) are refused"
            )));
        }
        if !self.policy.allow.iter().any(|p| p.matches(url)) {
            return Err(denied(format!(
                "fetch of {url}: not in the fetch allowlist (scheme, host, port and path prefix must match an entry)"
            )));
        }
        let host = url
            .host()
            .ok_or_else(|| denied(format!("fetch of {url}: no host")))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<IpAddr> = match host {
            url::Host::Ipv4(v4) => vec![IpAddr::V4(v4)],
            url::Host::Ipv6(v6) => vec![IpAddr::V6(v6)],
            url::Host::Domain(name) => {
                let budget = self.budget()?;
                let name = name.to_owned();
                let found = handle.block_on(async {
                    tokio::time::timeout(budget, tokio::net::lookup_host((name.as_str(), port)))
                        .await
                });
                match found {
                    Err(_) => return Err(failed(format!("{url}: name resolution timed out"))),
                    Ok(Err(e)) => return Err(failed(format!("{url}: cannot resolve {name}: {e}"))),
                    Ok(Ok(it)) => it.map(|a| a.ip()).collect(),
                }
            }
        };
        let mut allowed = Vec::new();
        let mut refused = None;
        for ip in addrs {
            // An address in a denied range passes only where an entry names that very address
            // and matches the URL with it as the host (port and path prefix included): naming
            // one service on it opens neither its other ports nor its other paths.
            let mut at_ip = url.clone();
            let named = at_ip.set_host(Some(&ip_host(ip))).is_ok()
                && self.policy.allow.iter().any(|p| p.matches(&at_ip));
            match denied_range(ip) {
                Some(range) if !named => refused = Some((ip, range)),
                _ => allowed.push(SocketAddr::new(ip, port)),
            }
        }
        if allowed.is_empty() {
            let (ip, range) = refused.unwrap_or((IpAddr::V4(Ipv4Addr::UNSPECIFIED), "no"));
            return Err(denied(format!(
                "fetch of {url}: {} resolves to {ip}, a {range} address, which the fetch allowlist does not name",
                url.host_str().unwrap_or_default()
            )));
        }
        if let Some(name) = url.domain() {
            self.pinned
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_owned(), allowed);
        }
        Ok(())
    }

    pub(crate) fn fetch(
        &mut self,
        arg: &str,
        bytes: Option<&[u8]>,
    ) -> Result<HostValue, HostError> {
        // A URL or body with a lone surrogate reads as U+FFFD, as browsers send it.
        let arg = palisade_core::text::well_formed_json(arg);
        let req: FetchRequest = serde_json::from_str(&arg)
            .map_err(|e| HostError::type_error(format!("fetch: malformed request: {e}")))?;
        let mut url = url::Url::parse(&req.url).map_err(|e| {
            HostError::type_error(format!("Failed to parse URL from {}: {e}", req.url))
        })?;
        url.set_fragment(None);
        let mut method = normalize_method(&req.method)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &req.headers {
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
                return Err(HostError::type_error(format!(
                    "fetch: the {name} header is set by the client and cannot be given"
                )));
            }
            let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HostError::type_error(format!("Invalid header name: {name:?}")))?;
            let v = reqwest::header::HeaderValue::from_bytes(&latin1(value)?)
                .map_err(|_| HostError::type_error(format!("Invalid header value for {name:?}")))?;
            headers.append(n, v);
        }
        if req.body_text.is_some() && !headers.contains_key(reqwest::header::CONTENT_TYPE) {
            // As the Fetch standard extracts a string body.
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("text/plain;charset=UTF-8"),
            );
        }
        let mut body: Option<Vec<u8>> = match (bytes, &req.body_text) {
            (Some(b), _) => Some(b.to_vec()),
            (None, Some(t)) => Some(t.as_bytes().to_vec()),
            (None, None) => None,
        };
        if body.is_some() && (method == "GET" || method == "HEAD") {
            return Err(HostError::type_error(
                "fetch: a request with GET or HEAD method cannot have a body",
            ));
        }
        let (handle, client) = self.client()?;
        let mut redirected = false;
        let mut hops = 0;
        loop {
            self.admit(&url, &handle)?;
            if self.requests >= self.policy.max_requests {
                return Err(denied(format!(
                    "fetch of {url}: this run's {} requests (max_requests) are used up",
                    self.policy.max_requests
                )));
            }
            self.requests += 1;
            let budget = self.budget()?;
            let m = reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|_| HostError::type_error(format!("Invalid method: {method:?}")))?;
            let mut rb = client.request(m, url.clone()).headers(headers.clone());
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let cap = self.policy.max_response_bytes;
            let manual = req.redirect == "manual";
            let outcome = handle.block_on(async {
                tokio::time::timeout(budget, async {
                    let mut resp = rb.send().await.map_err(|e| failed(describe(&url, &e)))?;
                    // Where a redirect leads, if this is one fetch follows. Raw UTF-8 in a
                    // Location is read as UTF-8, as browsers and undici read it (`to_str`
                    // accepts only visible ASCII). A redirect's body is never read: followed,
                    // the next hop answers; under `manual`, the guest gets an opaque response.
                    let location = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .filter(|_| followed_redirect(resp.status()))
                        .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
                    let mut data = Vec::new();
                    if location.is_none() {
                        while let Some(chunk) =
                            resp.chunk().await.map_err(|e| failed(describe(&url, &e)))?
                        {
                            if (data.len() + chunk.len()) as u64 > cap {
                                return Err(failed(format!(
                                    "{url}: the response body exceeds the policy's max_response_bytes ({cap})"
                                )));
                            }
                            data.extend_from_slice(&chunk);
                        }
                    }
                    Ok::<_, HostError>((resp, location, data))
                })
                .await
            });
            let (resp, location, data) = match outcome {
                Err(_) => {
                    return Err(failed(format!(
                        "{url}: timed out after {} ms",
                        budget.as_millis()
                    )))
                }
                Ok(r) => r?,
            };
            let status = resp.status();
            if location.is_some() && manual {
                // WHATWG: an opaque-redirect response: status 0, no headers, no body.
                let meta = ResponseMeta {
                    status: 0,
                    status_text: String::new(),
                    url: url.to_string(),
                    redirected,
                    headers: Vec::new(),
                    body: self.bodies.len(),
                    opaque_redirect: true,
                };
                self.bodies.push(Some(Vec::new()));
                return serde_json::to_string(&meta)
                    .map(HostValue::Str)
                    .map_err(failed);
            }
            if let Some(location) = location {
                if req.redirect == "error" {
                    return Err(failed(format!(
                        "{url} redirected to {location} and the redirect mode is \"error\""
                    )));
                }
                hops += 1;
                if hops > self.policy.max_redirects {
                    return Err(failed(format!(
                        "{url}: more than {} redirects (max_redirects)",
                        self.policy.max_redirects
                    )));
                }
                let next = url.join(&location).map_err(|e| {
                    failed(format!(
                        "{url} redirected to an invalid URL {location:?}: {e}"
                    ))
                })?;
                if next.origin() != url.origin() {
                    // Credentials meant for one origin never follow a redirect to another (the
                    // Fetch standard drops Authorization; undici and reqwest also drop these).
                    for name in [
                        reqwest::header::AUTHORIZATION,
                        reqwest::header::PROXY_AUTHORIZATION,
                        reqwest::header::COOKIE,
                    ] {
                        headers.remove(name);
                    }
                }
                url = next;
                url.set_fragment(None);
                let code = status.as_u16();
                if code == 303 && method != "HEAD"
                    || (code == 301 || code == 302) && method == "POST"
                {
                    method = "GET".into();
                    body = None;
                    headers.remove(reqwest::header::CONTENT_TYPE);
                }
                redirected = true;
                continue;
            }
            let h2 = resp.version() == reqwest::Version::HTTP_2;
            let meta = ResponseMeta {
                status: status.as_u16(),
                status_text: if h2 {
                    String::new()
                } else {
                    status.canonical_reason().unwrap_or("").to_owned()
                },
                url: resp.url().to_string(),
                redirected,
                headers: resp
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            v.as_bytes().iter().map(|&b| b as char).collect(),
                        )
                    })
                    .collect(),
                body: self.bodies.len(),
                opaque_redirect: false,
            };
            self.bodies.push(Some(data));
            let json = serde_json::to_string(&meta).map_err(failed)?;
            return Ok(HostValue::Str(json));
        }
    }

    /// Hands a response body to the guest, once. `arg` is `"<handle> text"` or `"<handle> bytes"`.
    pub(crate) fn body(&mut self, arg: &str) -> Result<HostValue, HostError> {
        let (id, how) = arg.split_once(' ').unwrap_or((arg, "bytes"));
        let body = id
            .parse::<usize>()
            .ok()
            .and_then(|i| self.bodies.get_mut(i))
            .and_then(Option::take)
            .ok_or_else(|| HostError::type_error("Body has already been consumed."))?;
        Ok(match how {
            "text" => {
                let bytes = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&body);
                HostValue::Str(String::from_utf8_lossy(bytes).into_owned())
            }
            _ => HostValue::Bytes(body),
        })
    }
}

fn latin1(value: &str) -> Result<Vec<u8>, HostError> {
    value
        .chars()
        .map(|c| {
            u8::try_from(u32::from(c))
                .map_err(|_| HostError::type_error(format!("Invalid header value {value:?}")))
        })
        .collect()
}

fn normalize_method(m: &str) -> Result<String, HostError> {
    let upper = m.to_ascii_uppercase();
    if matches!(upper.as_str(), "CONNECT" | "TRACE" | "TRACK") {
        return Err(HostError::type_error(format!(
            "fetch: the {m} method is forbidden"
        )));
    }
    if matches!(
        upper.as_str(),
        "DELETE" | "GET" | "HEAD" | "OPTIONS" | "POST" | "PUT" | "PATCH"
    ) {
        Ok(upper)
    } else if !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    {
        Ok(m.to_owned())
    } else {
        Err(HostError::type_error(format!("Invalid method: {m:?}")))
    }
}

fn describe(url: &url::Url, e: &reqwest::Error) -> String {
    let mut msg = format!("{url}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_list_covers_the_private_ranges() {
        let d = |s: &str| denied_range(s.parse().unwrap());
        assert_eq!(d("127.0.0.1"), Some("loopback"));
        assert_eq!(d("10.1.2.3"), Some("private"));
        assert_eq!(d("172.16.0.1"), Some("private"));
        assert_eq!(d("192.168.1.1"), Some("private"));
        assert_eq!(d("169.254.169.254"), Some("cloud metadata"));
        assert_eq!(d("169.254.1.1"), Some("link-local"));
        assert_eq!(d("100.64.0.1"), Some("shared (carrier-grade NAT)"));
        assert_eq!(d("0.0.0.0"), Some("unspecified (\"this network\")"));
        assert_eq!(d("::1"), Some("loopback"));
        assert_eq!(d("fd00::1"), Some("unique local (private)"));
        assert_eq!(d("fe80::1"), Some("link-local"));
        assert_eq!(d("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(d("::7f00:1"), Some("IPv4-compatible"));
        assert_eq!(d("fd00:ec2::254"), Some("unique local (private)"));
        assert_eq!(d("93.184.215.14"), None);
        assert_eq!(d("2606:2800:21f:cb07:6820:80da:af6b:8b2c"), None);
    }

    #[test]
    fn internal_hosts_are_the_deny_lists_ranges() {
        let r = internal_address_range;
        assert_eq!(r("127.0.0.1"), Some("loopback"));
        assert_eq!(r("2130706433"), Some("loopback"));
        assert_eq!(r("0x7f.1"), Some("loopback"));
        assert_eq!(r("169.254.169.254"), Some("cloud metadata"));
        assert_eq!(r("10.0.0.1"), Some("private"));
        assert_eq!(r("100.64.0.1"), Some("shared (carrier-grade NAT)"));
        assert_eq!(r("0.0.0.0"), Some("unspecified (\"this network\")"));
        assert_eq!(r("[::1]"), Some("loopback"));
        assert_eq!(r("::1"), Some("loopback"));
        assert_eq!(r("[fe80::1]"), Some("link-local"));
        assert_eq!(r("[::ffff:7f00:1]"), Some("loopback"));
        assert_eq!(r("93.184.215.14"), None);
        assert_eq!(r("[2606:2800:21f:cb07:6820:80da:af6b:8b2c]"), None);
        assert_eq!(r("localhost"), None, "a name is checked when it resolves");
        assert_eq!(r("api.example.com"), None);
        assert_eq!(r(""), None);
    }

    #[test]
    fn methods_normalize_like_the_fetch_standard() {
        assert_eq!(normalize_method("post").unwrap(), "POST");
        assert_eq!(normalize_method("Custom").unwrap(), "Custom");
        assert!(normalize_method("connect").is_err());
        assert!(normalize_method("a b").is_err());
    }
}
