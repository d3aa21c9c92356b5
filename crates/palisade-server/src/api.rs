//! The HTTP API under `/v1`, plus `/healthz`, `/readyz`, `/metrics` and the OpenAPI document.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request as HttpRequest, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use palisade::{EngineKind, ErrorKind, Limits, Mode, Outcome, OutcomeRecord, Policy, Request};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use tracing::Instrument;

use crate::ceiling::{CeilingError, FetchRules, MaxLimits};
use crate::door::BodyTimeout;
use crate::lanes::{Lane, LaneKey, Lanes};
use crate::metrics::{ClientTimeout, Metrics};
use crate::openapi::{schema, Body, ErrorBody, ErrorDetail, Operation, Response as Doc};
use crate::pool::{Pool, Refused};
use crate::recorder::Recorder;
use crate::storage::{now, ExecutionRecord, FunctionRecord, Storage};
use crate::worker::{from_json, Job, MAX_VALUE_DEPTH};

/// Extra time the server gives a worker past the request's own timeout before killing it.
const GRACE: Duration = Duration::from_secs(2);

/// Shared state of the service.
#[derive(Debug)]
pub struct AppState {
    /// Persistence.
    pub storage: Arc<dyn Storage>,
    /// The fast lane's workers.
    pub fast: Pool,
    /// The slow lane's workers (see [`crate::lanes`]).
    pub slow: Pool,
    /// Which lane each function takes.
    pub lanes: Lanes,
    /// Group commit of execution records.
    pub recorder: Recorder,
    /// Recently read functions.
    pub functions: FunctionCache,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Default limits.
    pub limits: Limits,
    /// The largest limits a request or a function may have.
    pub max_limits: MaxLimits,
    /// Default policy.
    pub policy: Policy,
    /// What a request's or a function's `fetch.allow` may name.
    pub fetch_rules: FetchRules,
    /// API key to tenant; empty turns authentication off.
    pub keys: HashMap<String, String>,
    /// Whether the server takes new work (false while shutting down).
    pub ready: AtomicBool,
}

impl AppState {
    fn pool(&self, lane: Lane) -> &Pool {
        match lane {
            Lane::Fast => &self.fast,
            Lane::Slow => &self.slow,
        }
    }

    /// Holds a request, as the server would run it (its defaults applied), to the operator's
    /// ceilings on limits and on fetch's allowlist.
    fn within_ceilings(&self, request: &Request) -> Result<(), CeilingError> {
        self.max_limits.check(&request.limits)?;
        self.fetch_rules.check(&request.policy)
    }
}

/// How long a cached function is trusted. Deploys and deletes through this server update the
/// cache at once; the time-to-live bounds how stale a function changed by another server
/// process on the same database can be.
const FUNCTION_TTL: Duration = Duration::from_secs(1);

/// A cached function, by tenant and name, with the time it was read.
type CachedFunctions = HashMap<(String, String), (Instant, Arc<FunctionRecord>)>;

/// Functions read recently, so an invocation does not read the database.
#[derive(Debug, Default)]
pub struct FunctionCache {
    entries: Mutex<CachedFunctions>,
}

impl FunctionCache {
    fn get(&self, tenant: &str, name: &str) -> Option<Arc<FunctionRecord>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, f) = entries.get(&(tenant.to_owned(), name.to_owned()))?;
        (at.elapsed() < FUNCTION_TTL).then(|| f.clone())
    }

    fn put(&self, f: Arc<FunctionRecord>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= 10_000 {
            entries.retain(|_, (at, _)| at.elapsed() < FUNCTION_TTL);
        }
        entries.insert((f.tenant.clone(), f.name.clone()), (Instant::now(), f));
    }

    fn remove(&self, tenant: &str, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&(tenant.to_owned(), name.to_owned()));
    }
}

/// The tenant the request acts for.
#[derive(Debug, Clone)]
struct Tenant(String);

/// A JSON error response: `{"error": {"kind", "message", "line"?, "column"?}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    position: Option<(usize, usize)>,
    retry_after: Option<u64>,
    /// Whether the connection is closed after this answer (`Connection: close`).
    close: bool,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            position: None,
            retry_after: None,
            close: false,
        }
    }

    /// 408: the body did not all arrive within `limit`. The connection is closed: the rest of
    /// the body may still be on its way.
    fn body_timeout(limit: Duration) -> Self {
        ApiError {
            close: true,
            ..ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not all arrive within body_timeout_ms ({} ms)",
                    limit.as_millis()
                ),
            )
        }
    }

    fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl From<CeilingError> for ApiError {
    fn from(e: CeilingError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

/// One path parameter (`{name}`, `{id}`). axum's own [`Path`] answers a parameter that is not
/// UTF-8 once decoded (`/v1/functions/%FF`) with a plain-text 400; this answers it, like every
/// other error, in the JSON error shape.
struct PathParam(String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(p)) => Ok(PathParam(p)),
            Err(e) if e.status() == StatusCode::BAD_REQUEST => {
                Err(ApiError::invalid(e.body_text()))
            }
            Err(e) => Err(ApiError::internal(e.body_text())),
        }
    }
}

/// The answer to a method a route does not have, in the JSON error shape (axum's own has an
/// empty body); axum still adds the `Allow` header.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (see the Allow header)",
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                message: self.message,
                line: self.position.map(|(l, _)| l as u64),
                column: self.position.map(|(_, c)| c as u64),
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// A JSON body: 413 past the size cap, 400 with line and column when malformed or when it
/// names an unknown field.
struct JsonBody<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: HttpRequest, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be empty (then `T::default()`), with [`JsonBody`]'s errors.
struct OptionalJsonBody<T>(T);

impl<T: DeserializeOwned + Default + Send, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: HttpRequest, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

/// The body, read within the router's [`BodyTimeout`] (408 past it).
async fn body_bytes<S: Send + Sync>(req: HttpRequest, state: &S) -> Result<Bytes, ApiError> {
    let timeout = req.extensions().get::<BodyTimeout>().cloned();
    let read = Bytes::from_request(req, state);
    let read = match timeout {
        Some(t) => match tokio::time::timeout(t.limit, read).await {
            Ok(read) => read,
            Err(_) => {
                t.metrics.client_timeout(ClientTimeout::Body);
                return Err(ApiError::body_timeout(t.limit));
            }
        },
        None => read.await,
    };
    read.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "payload_too_large", "the request body is too large")
        } else {
            ApiError::new(status, "invalid_request", e.body_text())
        }
    })
}

/// Parses a body, which must be a JSON object (serde would take an array for a struct, as its
/// fields in order). Its `input` may be nested as deep as the contract allows (see
/// [`MAX_VALUE_DEPTH`]); a deeper body is refused, with no position.
fn parse_json<T: DeserializeOwned + Send>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => {}
        Some(_) => return Err(ApiError::invalid("the body must be a JSON object")),
    }
    // The body's `input` is one level down.
    from_json(bytes, MAX_VALUE_DEPTH + 1).map_err(|e| ApiError {
        position: (e.line() > 0).then(|| (e.line(), e.column())),
        ..ApiError::invalid(format!("invalid JSON body: {e}"))
    })
}

/// An engine's name, as the API accepts it.
#[derive(Debug, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
enum EngineName {
    Quickjs,
    Wasm,
    V8,
}

/// `POST /v1/execute`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteBody {
    /// The JavaScript source.
    pub source: String,
    /// `script` (default) or `module`.
    #[serde(default)]
    pub mode: Mode,
    /// The global `input`.
    #[serde(default)]
    pub input: serde_json::Value,
    /// Limits, overriding the server's defaults field by field.
    #[serde(default)]
    #[schemars(with = "Option<Limits>")]
    pub limits: Option<serde_json::Map<String, serde_json::Value>>,
    /// Policy, overriding the server's default field by field.
    #[serde(default)]
    #[schemars(with = "Option<Policy>")]
    pub policy: Option<serde_json::Map<String, serde_json::Value>>,
    /// Importable modules, specifier to source.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// The engine: `quickjs` (default), `wasm` or `v8`.
    #[serde(default)]
    #[schemars(with = "Option<EngineName>")]
    pub engine: Option<String>,
    /// The file name in stack traces.
    #[serde(default)]
    pub filename: Option<String>,
}

/// `POST /v1/functions`: an execute body with a name and without input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    /// The function's name: 1–128 of `[A-Za-z0-9_.-]`, not only dots.
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$"),
        length(min = 1, max = 128)
    )]
    pub name: String,
    /// The JavaScript source.
    pub source: String,
    /// `script` (default) or `module`.
    #[serde(default)]
    pub mode: Mode,
    /// Limits, overriding the server's defaults field by field.
    #[serde(default)]
    #[schemars(with = "Option<Limits>")]
    pub limits: Option<serde_json::Map<String, serde_json::Value>>,
    /// Policy, overriding the server's default field by field.
    #[serde(default)]
    #[schemars(with = "Option<Policy>")]
    pub policy: Option<serde_json::Map<String, serde_json::Value>>,
    /// Importable modules.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// The engine: `quickjs` (default), `wasm` or `v8`.
    #[serde(default)]
    #[schemars(with = "Option<EngineName>")]
    pub engine: Option<String>,
}

/// `POST /v1/functions/{name}/invoke`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeBody {
    /// The global `input`.
    #[serde(default)]
    pub input: serde_json::Value,
}

/// A function as listed and returned (with its source only when fetched alone).
#[derive(Debug, Serialize, JsonSchema)]
struct FunctionView<'a> {
    name: &'a str,
    engine: &'a str,
    mode: Mode,
    created_at: u64,
    source: Option<&'a str>,
    limits: &'a Limits,
    policy: &'a Policy,
}

impl<'a> FunctionView<'a> {
    fn of(f: &'a FunctionRecord, with_source: bool) -> Self {
        FunctionView {
            name: &f.name,
            engine: &f.engine,
            mode: f.request.mode,
            created_at: f.created_at,
            source: with_source.then_some(f.request.source.as_str()),
            limits: &f.request.limits,
            policy: &f.request.policy,
        }
    }
}

/// `GET /v1/functions`.
#[derive(Debug, Serialize, JsonSchema)]
struct FunctionList<'a> {
    /// The tenant's functions, by name.
    functions: Vec<FunctionView<'a>>,
}

/// `GET /v1/executions/{id}`.
#[derive(Debug, Serialize, JsonSchema)]
struct ExecutionView {
    /// The execution id.
    id: String,
    /// The function invoked, if any.
    function: Option<String>,
    /// The engine it ran on.
    engine: String,
    /// Seconds since the Unix epoch.
    created_at: u64,
    /// The outcome, in the contract's shape.
    outcome: palisade::OutcomeRecord,
}

fn overlay<T: Serialize + DeserializeOwned>(
    base: &T,
    patch: Option<serde_json::Map<String, serde_json::Value>>,
    what: &str,
) -> Result<T, ApiError> {
    let Some(patch) = patch else {
        return serde_json::to_value(base)
            .and_then(serde_json::from_value)
            .map_err(ApiError::internal);
    };
    let mut value = serde_json::to_value(base).map_err(ApiError::internal)?;
    if let serde_json::Value::Object(map) = &mut value {
        map.extend(patch);
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid(format!("{what}: {e}")))
}

fn engine_of(name: Option<&str>) -> Result<EngineKind, ApiError> {
    name.unwrap_or("quickjs").parse().map_err(ApiError::invalid)
}

/// A function name: 1 to 128 of `[A-Za-z0-9_.-]`, not only dots. `/v1/functions/..` and
/// `/v1/functions/.` are dot segments, which most HTTP clients resolve before sending
/// (`/v1/functions/../invoke` becomes `/v1/invoke`), so such a function could be deployed
/// but hardly invoked, read or deleted.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && name.bytes().any(|b| b != b'.')
}

/// Runs a job in a lane, mapping a full queue (or a wait past the lane's `queue_timeout_ms`,
/// answered when it runs out, and the job then never runs) to 429.
async fn dispatch(
    state: &AppState,
    lane: Lane,
    job: Job,
    timeout: Duration,
    proven: bool,
) -> Result<Outcome, ApiError> {
    let busy = || {
        state.metrics.rejected();
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                "the execution queue is full, or no worker was free within queue_timeout_ms; retry later",
            )
        }
    };
    let queued = state
        .pool(lane)
        .submit(job, timeout + GRACE, proven)
        .map_err(|_| busy())?;
    match queued.outcome().await {
        Ok(outcome) => Ok(outcome),
        Err(Refused::Busy) => Err(busy()),
        Err(e @ Refused::Dropped) => Err(ApiError::internal(e)),
    }
}

/// The most bytes an outcome's record may take as JSON to be stored: SQLite stores at most
/// 10^9 bytes in a value (PostgreSQL 1 GiB in a `TEXT`), less room for the rest of the row.
const MAX_RECORD_BYTES: usize = 999_000_000;

/// Cuts the end of a record's console output, so that the record, `len` bytes as JSON, takes
/// at most `max`; the record is then marked `truncated`. The client's answer, serialized
/// before, stays whole. Output is capped in UTF-8 bytes (`output`, 256 MiB by default), and
/// JSON escapes a control character in 6 bytes: until 2026-12-02 an outcome with 170 MiB of
/// them could not be recorded and was answered 500 `internal`. The longer stream (as JSON) is
/// cut first. Left as it is when no cut of the output can make it fit (the value alone is too
/// big; the ceilings prevent that).
fn fit_for_storage(record: &mut OutcomeRecord, len: usize, max: usize) {
    let Some(excess) = len.checked_sub(max).filter(|e| *e > 0) else {
        return;
    };
    let json = |s: &str| s.chars().map(json_len).sum::<usize>();
    let (out, err) = (json(&record.stdout), json(&record.stderr));
    if excess > out + err {
        return;
    }
    let (first, second) = if out >= err {
        (&mut record.stdout, &mut record.stderr)
    } else {
        (&mut record.stderr, &mut record.stdout)
    };
    let mut left = excess;
    for s in [first, second] {
        let (mut cut, mut at) = (0, s.len());
        for (i, c) in s.char_indices().rev() {
            if cut >= left {
                break;
            }
            cut += json_len(c);
            at = i;
        }
        left = left.saturating_sub(cut);
        s.truncate(at);
    }
    record.truncated = true;
}

/// The bytes `c` takes inside a JSON string as serde_json writes it.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\t' | '\n' | '\u{c}' | '\r' => 2,
        '\0'..='\u{1f}' => 6,
        c => c.len_utf8(),
    }
}

/// The outcome's record, made without copying its value and output: a result or output of up
/// to `max_limits` (256 MiB each by default) is otherwise held once more while it is answered
/// and recorded (a 250 MB result: 1.48 GB of peak RSS with the copy, 1.23 GB without).
fn into_record(mut outcome: Outcome) -> OutcomeRecord {
    let value = outcome.result.as_mut().map(std::mem::take).ok();
    let stdout = std::mem::take(&mut outcome.stdout);
    let stderr = std::mem::take(&mut outcome.stderr);
    let mut record = outcome.to_record();
    if let Some(value) = value {
        record.value = value;
    }
    record.stdout = stdout;
    record.stderr = stderr;
    record
}

/// Runs a request, records it, and answers with the outcome.
///
/// The run goes on in a task of its own, to its end, whether or not the client is still there:
/// until 2026-12-01 it ran inside the handler, so a client that disconnected mid-run dropped it
/// after a worker had started the job, and the run was neither recorded (its secret accesses
/// were audited under an execution id that did not exist), counted in metrics, nor classified
/// by the lanes; a hostile function invoked with the client hanging up each time kept running
/// in the fast lane.
async fn execute_and_record(
    state: Arc<AppState>,
    tenant: String,
    function: Option<String>,
    engine: EngineKind,
    request: Request,
    key: LaneKey,
) -> Result<Response, ApiError> {
    tokio::spawn(run_and_record(
        state, tenant, function, engine, request, key,
    ))
    .await
    .map_err(|e| ApiError::internal(format!("the execution task failed: {e}")))?
}

async fn run_and_record(
    state: Arc<AppState>,
    tenant: String,
    function: Option<String>,
    engine: EngineKind,
    request: Request,
    key: LaneKey,
) -> Result<Response, ApiError> {
    let id = palisade::AccessContext::anonymous().execution_id;
    let started = Instant::now();
    let timeout = request.limits.timeout;
    let job = Job::Run {
        engine: engine.as_str().to_owned(),
        request,
        tenant: tenant.clone(),
        function: function.clone(),
        execution_id: id.clone(),
    };
    let ticket = state.lanes.admit(key);
    let mut outcome = dispatch(&state, ticket.lane, job, timeout, ticket.proven).await?;
    if outcome.metrics.engine.is_empty() {
        outcome.metrics.engine = engine.as_str().to_owned();
    }
    let kind = outcome.error_kind();
    let ran = Duration::from_micros(outcome.metrics.wall_us);
    state.metrics.ran_in(ticket.lane);
    ticket.finish(kind, ran);
    let latency = started.elapsed();
    let mut record = into_record(outcome);
    // The answer is serialized before the record moves to the recorder, so a large outcome is
    // not held twice more (a clone, then its own serialization).
    let body = serde_json::to_vec(&record).map_err(ApiError::internal)?;
    fit_for_storage(&mut record, body.len(), MAX_RECORD_BYTES);
    let exec = ExecutionRecord {
        id: id.clone(),
        tenant,
        function,
        engine: engine.as_str().to_owned(),
        outcome: record,
        created_at: now(),
    };
    let recorded = state.recorder.record(exec).await;
    // Counted once the client's answer is known: an execution that could not be recorded is
    // answered 500 `internal`, and counted so, whatever the guest's outcome was.
    let counted = match &recorded {
        Ok(()) => kind.map_or("ok", ErrorKind::as_str),
        Err(_) => ErrorKind::Internal.as_str(),
    };
    state.metrics.record(engine.as_str(), counted, latency);
    recorded.map_err(|e| ApiError::internal(format!("recording execution {id}: {e}")))?;
    let status = match kind {
        Some(ErrorKind::InvalidRequest) => StatusCode::BAD_REQUEST,
        Some(ErrorKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
        Some(ErrorKind::EngineUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let mut resp = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-execution-id", v.clone());
        if let Ok(loc) = HeaderValue::from_str(&format!("/v1/executions/{id}")) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
    }
    Ok(resp)
}

async fn execute_handler(
    State(state): State<Arc<AppState>>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    JsonBody(body): JsonBody<ExecuteBody>,
) -> Result<Response, ApiError> {
    let engine = engine_of(body.engine.as_deref())?;
    let request = Request {
        source: body.source,
        mode: body.mode,
        filename: body.filename,
        input: body.input,
        limits: overlay(&state.limits, body.limits, "limits")?,
        modules: body.modules,
        policy: overlay(&state.policy, body.policy, "policy")?,
    };
    state.within_ceilings(&request)?;
    let key = LaneKey::source(&tenant, &request.source);
    execute_and_record(state, tenant, None, engine, request, key).await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn deploy_handler(
    State(state): State<Arc<AppState>>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    JsonBody(body): JsonBody<DeployBody>,
) -> Result<Response, ApiError> {
    if !valid_name(&body.name) {
        return Err(ApiError::invalid(
            "a function name is 1 to 128 characters of A-Z, a-z, 0-9, `_`, `.` and `-`",
        ));
    }
    let engine = engine_of(body.engine.as_deref())?;
    let request = Request {
        source: body.source,
        mode: body.mode,
        filename: None,
        input: serde_json::Value::Null,
        limits: overlay(&state.limits, body.limits, "limits")?,
        modules: body.modules,
        policy: overlay(&state.policy, body.policy, "policy")?,
    };
    state.within_ceilings(&request)?;
    let check = Job::Check {
        engine: engine.as_str().to_owned(),
        request: request.clone(),
    };
    let outcome = dispatch(&state, Lane::Fast, check, request.limits.timeout, false).await?;
    if let Err(e) = &outcome.result {
        let rec = e.to_record();
        let status = match rec.kind {
            ErrorKind::SyntaxError | ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::EngineUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = serde_json::json!({"error": rec});
        return Ok((status, axum::Json(body)).into_response());
    }
    let record = FunctionRecord {
        tenant,
        name: body.name,
        engine: engine.as_str().to_owned(),
        request,
        created_at: now(),
    };
    let storage = state.storage.clone();
    let saved = record.clone();
    blocking(move || storage.put_function(&saved)).await?;
    state.functions.put(Arc::new(record.clone()));
    Ok((
        StatusCode::CREATED,
        axum::Json(
            serde_json::to_value(FunctionView::of(&record, false)).map_err(ApiError::internal)?,
        ),
    )
        .into_response())
}

async fn list_functions(
    State(state): State<Arc<AppState>>,
    Extension(Tenant(tenant)): Extension<Tenant>,
) -> Result<Response, ApiError> {
    let storage = state.storage.clone();
    let all = blocking(move || storage.list_functions(&tenant)).await?;
    let functions: Vec<_> = all.iter().map(|f| FunctionView::of(f, false)).collect();
    Ok(axum::Json(FunctionList { functions }).into_response())
}

async fn get_function(
    State(state): State<Arc<AppState>>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    PathParam(name): PathParam,
) -> Result<Response, ApiError> {
    let storage = state.storage.clone();
    let f = blocking(move || storage.get_function(&tenant, &name))
        .await?
        .ok_or_else(|| ApiError::not_found("function"))?;
    Ok(
        axum::Json(serde_json::to_value(FunctionView::of(&f, true)).map_err(ApiError::internal)?)
            .into_response(),
    )
}

async fn delete_function(
    State(state): State<Arc<AppState>>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    PathParam(name): PathParam,
) -> Result<Response, ApiError> {
    let storage = state.storage.clone();
    let (t, n) = (tenant.clone(), name.clone());
    let existed = blocking(move || storage.delete_function(&t, &n)).await?;
    // After the delete; an invocation that read the row just before may cache it again, for
    // at most FUNCTION_TTL.
    state.functions.remove(&tenant, &name);
    if existed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("function"))
    }
}

async fn invoke(
    State(state): State<Arc<AppState>>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    PathParam(name): PathParam,
    OptionalJsonBody(body): OptionalJsonBody<InvokeBody>,
) -> Result<Response, ApiError> {
    let f = match state.functions.get(&tenant, &name) {
        Some(f) => f,
        None => {
            let storage = state.storage.clone();
            let (t, n) = (tenant.clone(), name.clone());
            let f = Arc::new(
                blocking(move || storage.get_function(&t, &n))
                    .await?
                    .ok_or_else(|| ApiError::not_found("function"))?,
            );
            state.functions.put(f.clone());
            f
        }
    };
    // Deployed before the server's ceilings were what they are now, perhaps: a function must
    // not keep what a deploy today would be refused.
    state.within_ceilings(&f.request).map_err(|e| {
        ApiError::invalid(format!(
            "function `{name}` is outside this server's ceilings; deploy it again within them: {e}"
        ))
    })?;
    let engine = engine_of(Some(&f.engine))?;
    let mut request = f.request.clone();
    request.input = body.input;
    request.filename.get_or_insert_with(|| {
        format!(
            "{name}.{}",
            if request.mode == Mode::Module {
                "mjs"
            } else {
                "js"
            }
        )
    });
    let key = LaneKey::function(&tenant, &name);
    execute_and_record(state, tenant, Some(name), engine, request, key).await
}

async fn get_execution(
    State(state): State<Arc<AppState>>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    let storage = state.storage.clone();
    let e = blocking(move || storage.get_execution(&tenant, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    Ok(axum::Json(ExecutionView {
        id: e.id,
        function: e.function,
        engine: e.engine,
        created_at: e.created_at,
        outcome: e.outcome,
    })
    .into_response())
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once each lane has a worker that answered its first job, until shutdown begins.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let (fast, slow) = (state.fast.live(), state.slow.live());
    if fast == 0 || slow == 0 {
        let text = format!("starting: {fast} fast and {slow} slow workers ready\n");
        return (StatusCode::SERVICE_UNAVAILABLE, text).into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .metrics
            .render(&[("fast", &state.fast), ("slow", &state.slow)]),
    )
        .into_response()
}

async fn openapi() -> Response {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOC.get_or_init(|| crate::openapi::document(&routes_doc()))).into_response()
}

/// Maps the bearer key to a tenant; 401 without a valid one.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: HttpRequest,
    next: Next,
) -> Response {
    let tenant = if state.keys.is_empty() {
        Some("default".to_owned())
    } else {
        bearer(req.headers()).and_then(|k| state.keys.get(k).cloned())
    };
    match tenant {
        Some(t) => {
            req.extensions_mut().insert(Tenant(t));
            next.run(req).await
        }
        None => {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid API key is required (Authorization: Bearer <key>)",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// Gives every request an id (the caller's `x-request-id` when sane), logs it, and echoes it.
async fn request_id(req: HttpRequest, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| palisade::AccessContext::anonymous().execution_id);
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    // The whole request runs inside the span: every event it logs carries the request id.
    let mut resp = async move {
        tracing::debug!("request received");
        let resp = next.run(req).await;
        tracing::debug!(
            status = resp.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request done"
        );
        resp
    }
    .instrument(span)
    .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

type Handler = axum::routing::MethodRouter<Arc<AppState>>;

/// Every route: its document and its handler. The router and the OpenAPI document are both
/// built from this table.
fn routes() -> Vec<(Operation, Handler)> {
    let json = |status, description, body| Doc {
        status,
        description,
        body: Body::Json(body),
    };
    let error = |status, description| json(status, description, schema::<ErrorBody>);
    let outcome = || {
        json(
            200,
            "The outcome (also for guest errors and limits)",
            schema::<palisade::OutcomeRecord>,
        )
    };
    let authed = || vec![error(401, "No valid API key"), error(500, "A host failure")];
    let with_body = |mut v: Vec<Doc>, bad: &'static str| {
        v.push(error(400, bad));
        v.push(error(
            408,
            "The body did not all arrive within body_timeout_ms",
        ));
        v.push(error(413, "The body is larger than max_body"));
        v
    };
    let running = |mut v: Vec<Doc>| {
        v.push(error(429, "The queue is full; see Retry-After"));
        v.push(error(503, "The engine is not installed"));
        v
    };
    let op = |method, path, summary, auth, request, responses| Operation {
        method,
        path,
        summary,
        auth,
        request,
        responses,
    };
    let text = |status, description| Doc {
        status,
        description,
        body: Body::Text,
    };
    let bad_body = "A malformed body, an unknown field, an invalid value, or a limit or fetch \
                    allowlist entry past the server's ceilings ([max_limits], \
                    allow_internal_fetch, fetch_allow_ceiling)";
    let mut execute = running(with_body(authed(), bad_body));
    execute.push(outcome());
    let mut deploy = running(with_body(authed(), bad_body));
    deploy.push(json(201, "Deployed", schema::<FunctionView<'static>>));
    let mut list = authed();
    list.push(json(
        200,
        "The tenant's functions",
        schema::<FunctionList<'static>>,
    ));
    let mut get_one = authed();
    get_one.push(json(
        200,
        "The function, with its source",
        schema::<FunctionView<'static>>,
    ));
    get_one.push(error(404, "No such function (for this tenant)"));
    get_one.push(error(400, "The name is not UTF-8 once percent-decoded"));
    let mut delete = authed();
    delete.push(Doc {
        status: 204,
        description: "Deleted",
        body: Body::Empty,
    });
    delete.push(error(404, "No such function (for this tenant)"));
    delete.push(error(400, "The name is not UTF-8 once percent-decoded"));
    let mut invoke_r = running(with_body(
        authed(),
        "A malformed body, an unknown field, a name that is not UTF-8 once percent-decoded, \
         or a function deployed with a limit or fetch allowlist entry past the server's \
         ceilings as they are now",
    ));
    invoke_r.push(outcome());
    invoke_r.push(error(404, "No such function (for this tenant)"));
    let mut exec = authed();
    exec.push(json(200, "The recorded execution", schema::<ExecutionView>));
    exec.push(error(404, "No such execution (for this tenant)"));
    exec.push(error(400, "The id is not UTF-8 once percent-decoded"));
    vec![
        (
            op(
                "post",
                "/v1/execute",
                "Run source once and return its outcome",
                true,
                Some((schema::<ExecuteBody> as _, false)),
                execute,
            ),
            post(execute_handler),
        ),
        (
            op(
                "post",
                "/v1/functions",
                "Deploy (or replace) a named function; its syntax is checked",
                true,
                Some((schema::<DeployBody> as _, false)),
                deploy,
            ),
            post(deploy_handler),
        ),
        (
            op(
                "get",
                "/v1/functions",
                "List this tenant's functions",
                true,
                None,
                list,
            ),
            get(list_functions),
        ),
        (
            op(
                "get",
                "/v1/functions/{name}",
                "One function, with its source",
                true,
                None,
                get_one,
            ),
            get(get_function),
        ),
        (
            op(
                "delete",
                "/v1/functions/{name}",
                "Delete a function",
                true,
                None,
                delete,
            ),
            axum::routing::delete(delete_function),
        ),
        (
            op(
                "post",
                "/v1/functions/{name}/invoke",
                "Invoke a function with an input (the body may be empty)",
                true,
                Some((schema::<InvokeBody> as _, true)),
                invoke_r,
            ),
            post(invoke),
        ),
        (
            op(
                "get",
                "/v1/executions/{id}",
                "A recorded execution and its outcome",
                true,
                None,
                exec,
            ),
            get(get_execution),
        ),
        (
            op(
                "get",
                "/v1/openapi.json",
                "This document",
                false,
                None,
                vec![json(
                    200,
                    "The OpenAPI document",
                    schema::<serde_json::Value>,
                )],
            ),
            get(openapi),
        ),
        (
            op(
                "get",
                "/healthz",
                "Liveness: the server answers",
                false,
                None,
                vec![text(200, "Alive")],
            ),
            get(healthz),
        ),
        (
            op(
                "get",
                "/readyz",
                "Readiness: every lane has a live worker and no shutdown has begun",
                false,
                None,
                vec![text(200, "Ready"), text(503, "Starting or shutting down")],
            ),
            get(readyz),
        ),
        (
            op(
                "get",
                "/metrics",
                "Prometheus metrics",
                false,
                None,
                vec![Doc {
                    status: 200,
                    description: "Counters, gauges and histograms",
                    body: Body::Prometheus,
                }],
            ),
            get(metrics),
        ),
    ]
}

/// The document half of [`routes`].
pub fn routes_doc() -> Vec<Operation> {
    routes().into_iter().map(|(op, _)| op).collect()
}

/// The service's router.
pub fn router(state: Arc<AppState>, max_body: usize, body_timeout: Duration) -> Router {
    let body_timeout = BodyTimeout {
        limit: body_timeout,
        metrics: Arc::clone(&state.metrics),
    };
    let mut by_path: BTreeMap<(bool, &'static str), Handler> = BTreeMap::new();
    for (op, handler) in routes() {
        let merged = match by_path.remove(&(op.auth, op.path)) {
            Some(existing) => existing.merge(handler),
            None => handler,
        };
        by_path.insert((op.auth, op.path), merged);
    }
    let mut authed = Router::new();
    let mut public = Router::new();
    for ((auth, path), handler) in by_path {
        if auth {
            authed = authed.route(path, handler);
        } else {
            public = public.route(path, handler);
        }
    }
    let authed = authed.route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    public
        .merge(authed)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(Extension(body_timeout))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record too big to store has the end of its output cut until it fits, at character
    /// boundaries, the longer stream first; a record that fits, or that no cut of output can
    /// make fit, is left alone.
    #[test]
    fn a_record_too_big_to_store_has_its_output_cut_to_fit() {
        let record = |stdout: &str, stderr: &str| OutcomeRecord {
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
            ..Outcome::failed("quickjs", palisade::ExecError::internal("x")).to_record()
        };
        let record_len = |r: &OutcomeRecord| serde_json::to_vec(r).unwrap().len();
        let big = record(&"\u{1}".repeat(100), "é".repeat(20).as_str());
        let len = record_len(&big);
        // 100 control characters are 600 bytes of JSON; the limit takes 300 of them away.
        let mut cut = big.clone();
        fit_for_storage(&mut cut, len, len - 300);
        assert!(cut.truncated);
        assert!(record_len(&cut) <= len - 300, "{}", record_len(&cut));
        assert_eq!(cut.stdout, "\u{1}".repeat(50));
        assert_eq!(cut.stderr, "é".repeat(20));
        // A smaller excess cuts less, and never inside a character.
        let mut cut = big.clone();
        fit_for_storage(&mut cut, len, len - 10);
        assert_eq!(cut.stdout, "\u{1}".repeat(98));
        let mut cut = record("", &"é".repeat(20));
        let len = record_len(&cut);
        fit_for_storage(&mut cut, len, len - 3);
        assert_eq!(cut.stderr, "é".repeat(18));
        // Fits already, or cannot be made to fit: unchanged.
        let mut same = big.clone();
        fit_for_storage(&mut same, len, len);
        assert_eq!(same, big);
        fit_for_storage(&mut same, 10_000, 10);
        assert_eq!(same, big);
    }

    /// [`json_len`] agrees with serde_json on every character it treats apart, and on others.
    #[test]
    fn json_len_is_serde_jsons() {
        for c in (0..=0x80u32)
            .filter_map(char::from_u32)
            .chain(['é', '€', '😀', '\u{2028}'])
        {
            let written = serde_json::to_string(&c.to_string()).unwrap().len() - 2;
            assert_eq!(json_len(c), written, "{c:?}");
        }
    }

    #[test]
    fn names_and_overlays() {
        assert!(valid_name("hello-world_1.2"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        for dots in [".", "..", "..."] {
            assert!(!valid_name(dots), "{dots}");
        }
        assert!(valid_name(".a") && valid_name("a..b") && valid_name("-"));
        let mut patch = serde_json::Map::new();
        patch.insert("timeout".into(), 250.into());
        let l: Limits = overlay(&Limits::default(), Some(patch), "limits").unwrap();
        assert_eq!(l.timeout, Duration::from_millis(250));
        assert_eq!(l.memory, Limits::default().memory);
        let mut bad = serde_json::Map::new();
        bad.insert("heap".into(), 1.into());
        assert!(overlay(&Limits::default(), Some(bad), "limits").is_err());
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
