//! The HTTP API under `/v1`, plus `/healthz`, `/readyz`, `/metrics` and the OpenAPI document.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request as HttpRequest, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use palisade::{EngineKind, ErrorKind, Limits, Mode, Outcome, Policy, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use tracing::Instrument;

use crate::lanes::{Lane, LaneKey, Lanes};
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::recorder::Recorder;
use crate::storage::{now, ExecutionRecord, FunctionRecord, Storage};
use crate::worker::Job;

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
    pub metrics: Metrics,
    /// Default limits.
    pub limits: Limits,
    /// Default policy.
    pub policy: Policy,
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
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            position: None,
            retry_after: None,
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"kind": self.kind, "message": self.message});
        if let Some((line, column)) = self.position {
            error["line"] = line.into();
            error["column"] = column.into();
        }
        let mut resp = (
            self.status,
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A JSON body: 413 past the size cap, 400 with line and column when malformed or when it
/// names an unknown field.
struct JsonBody<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: HttpRequest, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be empty (then `T::default()`), with [`JsonBody`]'s errors.
struct OptionalJsonBody<T>(T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: HttpRequest, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

async fn body_bytes<S: Send + Sync>(req: HttpRequest, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "payload_too_large", "the request body is too large")
        } else {
            ApiError::new(status, "invalid_request", e.body_text())
        }
    })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError {
        position: Some((e.line(), e.column())),
        ..ApiError::invalid(format!("invalid JSON body: {e}"))
    })
}

/// `POST /v1/execute`.
#[derive(Debug, Deserialize)]
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
    pub limits: Option<serde_json::Map<String, serde_json::Value>>,
    /// Policy, overriding the server's default field by field.
    #[serde(default)]
    pub policy: Option<serde_json::Map<String, serde_json::Value>>,
    /// Importable modules, specifier to source.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// The engine: `quickjs` (default), `wasm` or `v8`.
    #[serde(default)]
    pub engine: Option<String>,
    /// The file name in stack traces.
    #[serde(default)]
    pub filename: Option<String>,
}

/// `POST /v1/functions`: an execute body with a name and without input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    /// The function's name: 1–128 of `[A-Za-z0-9_.-]`.
    pub name: String,
    /// The JavaScript source.
    pub source: String,
    /// `script` (default) or `module`.
    #[serde(default)]
    pub mode: Mode,
    /// Limits, overriding the server's defaults field by field.
    #[serde(default)]
    pub limits: Option<serde_json::Map<String, serde_json::Value>>,
    /// Policy, overriding the server's default field by field.
    #[serde(default)]
    pub policy: Option<serde_json::Map<String, serde_json::Value>>,
    /// Importable modules.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// The engine.
    #[serde(default)]
    pub engine: Option<String>,
}

/// `POST /v1/functions/{name}/invoke`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeBody {
    /// The global `input`.
    #[serde(default)]
    pub input: serde_json::Value,
}

/// A function as listed and returned.
#[derive(Debug, Serialize)]
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

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Runs a job in a lane, mapping a full queue to 429.
async fn dispatch(
    state: &AppState,
    lane: Lane,
    job: Job,
    timeout: Duration,
) -> Result<Outcome, ApiError> {
    let rx = state.pool(lane).submit(job, timeout + GRACE).map_err(|_| {
        state.metrics.rejected();
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                "the execution queue is full; retry later",
            )
        }
    })?;
    rx.await
        .map_err(|_| ApiError::internal("the worker pool dropped an execution"))
}

/// Runs a request, records it, and answers with the outcome.
async fn execute_and_record(
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
    let mut outcome = dispatch(&state, ticket.lane, job, timeout).await?;
    if outcome.metrics.engine.is_empty() {
        outcome.metrics.engine = engine.as_str().to_owned();
    }
    let kind = outcome.error_kind();
    let ran = Duration::from_micros(outcome.metrics.wall_us);
    ticket.finish(state.lanes.is_slow(kind, ran));
    state.metrics.record(
        engine.as_str(),
        kind.map_or("ok", ErrorKind::as_str),
        started.elapsed(),
    );
    let record = outcome.to_record();
    let exec = ExecutionRecord {
        id: id.clone(),
        tenant,
        function,
        engine: engine.as_str().to_owned(),
        outcome: record.clone(),
        created_at: now(),
    };
    state
        .recorder
        .record(exec)
        .await
        .map_err(ApiError::internal)?;
    let status = match kind {
        Some(ErrorKind::InvalidRequest) => StatusCode::BAD_REQUEST,
        Some(ErrorKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
        Some(ErrorKind::EngineUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let mut resp = (status, axum::Json(record)).into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-execution-id", v.clone());
        if let Ok(loc) = HeaderValue::from_str(&format!("/v1/executions/{id}")) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
    }
    Ok(resp)
}

async fn execute(
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

async fn deploy(
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
    let check = Job::Check {
        engine: engine.as_str().to_owned(),
        request: request.clone(),
    };
    let outcome = dispatch(&state, Lane::Fast, check, request.limits.timeout).await?;
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
    let views: Vec<_> = all.iter().map(|f| FunctionView::of(f, false)).collect();
    Ok(axum::Json(serde_json::json!({ "functions": views })).into_response())
}

async fn get_function(
    State(state): State<Arc<AppState>>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(name): Path<String>,
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
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let storage = state.storage.clone();
    state.functions.remove(&tenant, &name);
    let (t, n) = (tenant.clone(), name.clone());
    let existed = blocking(move || storage.delete_function(&t, &n)).await?;
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
    Path(name): Path<String>,
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
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let storage = state.storage.clone();
    let e = blocking(move || storage.get_execution(&tenant, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    Ok(axum::Json(serde_json::json!({
        "id": e.id, "function": e.function, "engine": e.engine,
        "created_at": e.created_at, "outcome": e.outcome,
    }))
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
    axum::Json(crate::openapi::document()).into_response()
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

/// The service's router.
pub fn router(state: Arc<AppState>, max_body: usize) -> Router {
    let v1 = Router::new()
        .route("/execute", post(execute))
        .route("/functions", post(deploy).get(list_functions))
        .route(
            "/functions/{name}",
            get(get_function).delete(delete_function),
        )
        .route("/functions/{name}/invoke", post(invoke))
        .route("/executions/{id}", get(get_execution))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .nest("/v1", v1)
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_overlays() {
        assert!(valid_name("hello-world_1.2"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
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
