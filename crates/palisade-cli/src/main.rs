//! `palisade`: run untrusted JavaScript from the shell.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use palisade::units::{parse_duration, parse_size};
use palisade::{EngineKind, ErrorKind, ExecError, Limits, Mode, Outcome, Policy, Request, Sandbox};

const EXAMPLES: &str = "\
Examples:
  palisade run examples/hello.js
  palisade run -e '1 + 2'
  palisade run -e 'input.a * 2' --input '{\"a\": 21}' --json
  palisade run job.mjs --timeout 500ms --memory 16MiB
  palisade run job.js --allow-fetch https://api.example.com/v1/
  palisade secrets keygen            # then: export PALISADE_MASTER_KEY=...
  printf %s \"$TOKEN\" | palisade secrets set --store secrets.json API_TOKEN
  palisade run job.js --secrets secrets.json --audit-log audit.jsonl --allow-secret API_TOKEN
  echo 'console.log(\"from stdin\")' | palisade run -
  palisade engines

Exit status: 0 ok, 1 the script failed, 2 usage error, 3 engine unavailable or internal error.";

#[derive(Debug, Parser)]
#[command(
    name = "palisade",
    version,
    about = "Run untrusted JavaScript fast and safely, in a fresh isolated context per run.",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a script or module and print its result.
    #[command(after_help = EXAMPLES)]
    Run(Box<RunArgs>),
    /// Manage an encrypted secret store (keyed by PALISADE_MASTER_KEY).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// List the engines, their versions, and whether they are available here.
    Engines {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTP API (see README, "Service"); flags override the config file.
    Serve(Box<ServeArgs>),
    /// Run as a worker process of `palisade serve` (JSON jobs on stdin, outcomes on stdout).
    #[command(hide = true)]
    Worker {
        /// The encrypted secret store.
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// The database (SQLite file or `postgres://` URL) that receives secret-access audit
        /// records.
        #[arg(long = "audit-db", value_name = "DB")]
        audit_db: Option<PathBuf>,
        /// Unused contexts to keep ready per engine.
        #[arg(long, default_value_t = 0)]
        prewarm: usize,
        /// The CPU priority (`nice` value) to run at.
        #[arg(long, allow_hyphen_values = true)]
        nice: Option<i32>,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// A TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8080).
    #[arg(long, alias = "addr", value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// The SQLite database file (default palisade.db; `:memory:` keeps nothing), or a
    /// PostgreSQL `postgres://` URL.
    #[arg(long = "db", alias = "database", value_name = "PATH|URL")]
    database: Option<PathBuf>,
    /// Worker processes (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Executions that may wait for a worker before requests get 429.
    #[arg(long, value_name = "N")]
    queue: Option<usize>,
    /// The largest request body, e.g. 1MiB.
    #[arg(long = "max-body", value_name = "SIZE", value_parser = size)]
    max_body: Option<u64>,
    /// Default guest heap limit, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = size)]
    memory: Option<u64>,
    /// Default wall-clock limit, e.g. 5s.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    timeout: Option<Duration>,
    /// Default policy file, TOML or JSON.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The encrypted secret store served to functions.
    #[arg(long, value_name = "FILE")]
    secrets: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Print a fresh master key for PALISADE_MASTER_KEY.
    Keygen,
    /// Store a secret; its value is read from standard input (a trailing newline is dropped).
    Set {
        /// The store file (created if missing).
        #[arg(long, value_name = "FILE")]
        store: PathBuf,
        /// The tenant owning the secret.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Only these deployed functions may read it (repeatable; default: any).
        #[arg(long = "function", value_name = "NAME")]
        functions: Vec<String>,
        /// The secret's name.
        name: String,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The file to run (`-` reads standard input). `.mjs`/`.mts` files run as modules.
    #[arg(
        value_name = "FILE",
        required_unless_present = "eval",
        conflicts_with = "eval"
    )]
    file: Option<PathBuf>,
    /// Run CODE instead of a file (CODE may start with `-`, as in `-e -0`).
    #[arg(
        short = 'e',
        long = "eval",
        value_name = "CODE",
        allow_hyphen_values = true
    )]
    eval: Option<String>,
    /// The engine: quickjs (default), wasm or v8.
    #[arg(long, default_value = "quickjs", value_parser = parse_engine)]
    engine: EngineKind,
    /// Guest heap limit, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = size)]
    memory: Option<u64>,
    /// Wall-clock limit, e.g. 500ms, 1.5s or 1h.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    timeout: Option<Duration>,
    /// Guest stack limit, e.g. 512KiB (default: the engine's, at least 256KiB).
    #[arg(long, value_name = "SIZE", value_parser = size)]
    stack: Option<u64>,
    /// Cap on stdout + stderr bytes, e.g. 1MiB.
    #[arg(long = "output-limit", value_name = "SIZE", value_parser = size)]
    output_limit: Option<u64>,
    /// Cap on the serialized result, e.g. 1MiB.
    #[arg(long = "result-limit", value_name = "SIZE", value_parser = size)]
    result_limit: Option<u64>,
    /// Deterministic instruction budget (engines that count instructions only).
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// The JSON value exposed as the global `input`.
    #[arg(long, value_name = "JSON", allow_hyphen_values = true)]
    input: Option<String>,
    /// Run as an ES module (the default for .mjs and .mts files).
    #[arg(long)]
    module: bool,
    /// A policy file, TOML or JSON (see README); the flags below override it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Allow eval and the Function constructors.
    #[arg(long)]
    allow_eval: bool,
    /// Allow SharedArrayBuffer and Atomics.
    #[arg(long)]
    allow_shared_memory: bool,
    /// Deterministic mode with this seed: seeded Math.random and crypto, a fixed clock.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Let fetch reach this URL prefix (scheme, host, port, optional path; repeatable).
    #[arg(long = "allow-fetch", value_name = "URL")]
    allow_fetch: Vec<String>,
    /// Let secrets.get read this secret (repeatable).
    #[arg(long = "allow-secret", value_name = "NAME")]
    allow_secret: Vec<String>,
    /// The encrypted secret store (see `palisade secrets`); needs --audit-log.
    #[arg(long, value_name = "FILE", requires = "audit_log")]
    secrets: Option<PathBuf>,
    /// Append every secret access to this JSON-lines audit log.
    #[arg(long = "audit-log", value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// The tenant secrets are read for.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Print exactly one JSON outcome object on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    s.parse()
}

fn size(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// A JSON value from the command line, nested as deep as the contract converts (serde_json's
/// own limit is 128 levels; the main thread's stack holds 1,000).
fn json(s: &str) -> Result<serde_json::Value, String> {
    use serde::Deserialize as _;
    let depth = palisade::json_depth(s);
    if depth > palisade::MAX_RESULT_DEPTH {
        return Err(format!(
            "nested {depth} levels deep, deeper than the {} allowed",
            palisade::MAX_RESULT_DEPTH
        ));
    }
    let mut de = serde_json::Deserializer::from_str(s);
    de.disable_recursion_limit();
    serde_json::Value::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| format!("not valid JSON: {e}"))
}

fn main() -> ExitCode {
    // Guest code runs in UTC on every engine: the wasm guest's libc knows no other zone, and
    // the native engine's QuickJS asks the C library for the local zone, which would otherwise
    // tell the guest the host's zone (and give a different `Date` than the wasm engine). Set
    // before any thread exists; v8 workers and service workers inherit it (and are spawned
    // with it anyway).
    std::env::set_var("TZ", "UTC");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(
                e.kind(),
                K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line, as the contract asks: clap's first line without its "error: " prefix.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("palisade: {first} (see palisade --help)");
            return ExitCode::from(2);
        }
    };
    // `run` and a service worker execute one request at a time: a one-slot wasm instance pool
    // (`palisade_wasm::POOL_SLOTS_VAR`, unless the caller set it). Making the full pool's 256
    // fiber stacks, a guard page each, was a sixth of a one-shot `--engine wasm` run (perf).
    // Still before any thread exists.
    const WASM_POOL_SLOTS: &str = "PALISADE_WASM_POOL_SLOTS";
    if matches!(cli.command, Command::Run(_) | Command::Worker { .. })
        && std::env::var_os(WASM_POOL_SLOTS).is_none()
    {
        std::env::set_var(WASM_POOL_SLOTS, "1");
    }
    let code = match cli.command {
        Command::Run(args) => run(*args),
        Command::Secrets(cmd) => secrets(cmd),
        Command::Engines { json } => engines(json),
        Command::Serve(args) => serve(*args),
        Command::Worker {
            secrets,
            audit_db,
            prewarm,
            nice,
        } => {
            let options = palisade_server::WorkerOptions {
                secrets,
                audit_db,
                prewarm,
                nice,
            };
            match palisade_server::worker_main(&options) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("palisade worker: {e}");
                    3
                }
            }
        }
    };
    ExitCode::from(code)
}

fn usage_error(msg: impl std::fmt::Display) -> u8 {
    eprintln!("palisade: {msg}");
    2
}

fn run(args: RunArgs) -> u8 {
    // With `--json`, stdout is one JSON object whatever happens after the flags parse: a request
    // the CLI cannot make (an unreadable file, a bad policy or input) is an `invalid_request`
    // outcome, as a limit the engine refuses is. Until 2026-12-01 these printed only a line on
    // stderr, and a bad `--input` echoed the whole value back in it (clap's "invalid value").
    let json_out = args.json;
    let engine = args.engine;
    let refuse = |msg: String| -> u8 {
        if json_out {
            let outcome =
                Outcome::failed(engine.as_str(), ExecError::InvalidRequest { message: msg });
            report(&outcome, true)
        } else {
            usage_error(msg)
        }
    };
    let input = match args.input.as_deref().map(json) {
        None => serde_json::Value::Null,
        Some(Ok(v)) => v,
        Some(Err(e)) => return refuse(format!("--input: {e}")),
    };
    let (source, filename) = match (&args.eval, &args.file) {
        (Some(code), _) => (code.clone(), None),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                return refuse(format!("cannot read standard input: {e}"));
            }
            (s, None)
        }
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(s) => (s, Some(path.display().to_string())),
            Err(e) => return refuse(format!("cannot read {}: {e}", path.display())),
        },
        (None, None) => return refuse("give a FILE or -e CODE".into()),
    };
    let mode = if args.module || filename.as_deref().map(Mode::from_file_name) == Some(Mode::Module)
    {
        Mode::Module
    } else {
        Mode::Script
    };
    let mut policy = match &args.policy {
        None => Policy::default(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => match Policy::parse(&text) {
                Ok(p) => p,
                Err(e) => return refuse(format!("{}: {e}", path.display())),
            },
            Err(e) => return refuse(format!("cannot read {}: {e}", path.display())),
        },
    };
    policy.allow_eval |= args.allow_eval;
    policy.allow_shared_memory |= args.allow_shared_memory;
    for url in &args.allow_fetch {
        match url.parse() {
            Ok(p) => policy.fetch.allow.push(p),
            Err(e) => return refuse(format!("--allow-fetch: {e}")),
        }
    }
    policy.secrets.extend(args.allow_secret.iter().cloned());
    let mut services = palisade::HostServices::new();
    if let Some(path) = &args.secrets {
        let store = palisade::MasterKey::from_env()
            .and_then(|key| palisade::FileSecretStore::open(path, &key));
        let store = match store {
            Ok(s) => s,
            Err(e) => return refuse(e.to_string()),
        };
        let Some(log) = &args.audit_log else {
            return refuse("--secrets needs --audit-log FILE".into());
        };
        let audit = match palisade::AuditLog::open(log) {
            Ok(a) => a,
            Err(e) => return refuse(format!("cannot open {}: {e}", log.display())),
        };
        services = services.secrets(std::sync::Arc::new(store), std::sync::Arc::new(audit));
    }
    if let Some(seed) = args.seed {
        policy
            .deterministic
            .get_or_insert_with(Default::default)
            .seed = seed;
    }
    let defaults = Limits::default();
    let limits = Limits {
        memory: args.memory.unwrap_or(defaults.memory),
        timeout: args.timeout.unwrap_or(defaults.timeout),
        stack: args.stack,
        output: args.output_limit.unwrap_or(defaults.output),
        result: args.result_limit.unwrap_or(defaults.result),
        fuel: args.fuel,
    };
    let request = Request {
        source,
        mode,
        filename,
        input,
        limits: limits.clone(),
        modules: Default::default(),
        policy,
    };
    let context = palisade::AccessContext {
        tenant: args.tenant.clone(),
        ..palisade::AccessContext::anonymous()
    };
    watchdog(args.engine, limits.timeout, args.json);
    let outcome = match Sandbox::builder()
        .engine(args.engine)
        .expect_limits(limits)
        .host_services(services)
        .build()
    {
        Ok(sandbox) => sandbox.run_as(&request, context),
        Err(e) => e.to_outcome(args.engine),
    };
    if REPORTED.swap(true, Ordering::SeqCst) {
        // The watchdog is reporting; it ends the process.
        loop {
            std::thread::park();
        }
    }
    report(&outcome, args.json)
}

/// Set by whoever reports the run's outcome first: the run, or the watchdog.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// How long past its deadline a run may take before the watchdog ends the process.
const WATCHDOG_GRACE: Duration = Duration::from_secs(2);

/// Ends this process with the `timeout` outcome if the run has not returned `grace` after its
/// deadline. The engines stop a run at its deadline, but the native quickjs engine can only
/// interrupt between bytecodes and in some builtins' loops: a loop of native builtin calls that
/// each take milliseconds and poll nothing (`for (;;) a.indexOf(1)` over a large array, seen
/// only after 10,000 polls) runs on past it, and the thread cannot be stopped from outside. `palisade run` runs one request per process, so ending the process is safe here;
/// the service runs engines in worker processes it kills, and a library caller who needs the
/// same guarantee in-process uses the `wasm` engine.
fn watchdog(engine: EngineKind, timeout: Duration, json: bool) {
    let budget = timeout.saturating_add(WATCHDOG_GRACE);
    let spawned = std::thread::Builder::new()
        .name("palisade-watchdog".into())
        .spawn(move || {
            std::thread::sleep(budget);
            if REPORTED.swap(true, Ordering::SeqCst) {
                return;
            }
            let outcome = Outcome::failed(
                engine.as_str(),
                ExecError::timeout_because(
                    timeout,
                    budget,
                    "a native builtin ran past it; the process was ended",
                ),
            );
            let code = report(&outcome, json);
            std::process::exit(i32::from(code));
        });
    // Without the thread the run still has its engine's own deadline.
    drop(spawned);
}

fn serve(args: ServeArgs) -> u8 {
    let mut config = match &args.config {
        Some(path) => match palisade_server::Config::load(path) {
            Ok(c) => c,
            Err(e) => return usage_error(e),
        },
        None => palisade_server::Config::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.database {
        config.database = v;
    }
    if let Some(v) = args.workers {
        config.workers = v;
    }
    if let Some(v) = args.queue {
        config.queue = v;
    }
    if let Some(v) = args.max_body {
        config.max_body = usize::try_from(v).unwrap_or(usize::MAX);
    }
    if let Some(v) = args.memory {
        config.limits.memory = v;
    }
    if let Some(v) = args.timeout {
        config.limits.timeout = v;
    }
    if let Some(v) = args.secrets {
        config.secrets = Some(v);
    }
    if let Some(path) = &args.policy {
        match std::fs::read_to_string(path) {
            Ok(text) => match Policy::parse(&text) {
                Ok(p) => config.policy = p,
                Err(e) => return usage_error(format!("{}: {e}", path.display())),
            },
            Err(e) => return usage_error(format!("cannot read {}: {e}", path.display())),
        }
    }
    if let Err(e) = config.validate() {
        return usage_error(e);
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PALISADE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("palisade: cannot start the runtime: {e}");
            return 3;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => return usage_error(format!("cannot listen on {}: {e}", config.listen)),
        };
        if let Ok(addr) = listener.local_addr() {
            println!("palisade listening on http://{addr}");
            let _ = std::io::stdout().flush();
        }
        match palisade_server::serve(config, listener, palisade_server::shutdown_signal()).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("palisade: {e}");
                3
            }
        }
    })
}

fn secrets(cmd: SecretsCommand) -> u8 {
    match cmd {
        SecretsCommand::Keygen => match palisade::MasterKey::generate() {
            Ok(k) => {
                println!("{}", k.to_base64());
                0
            }
            Err(e) => {
                eprintln!("palisade: {e}");
                3
            }
        },
        SecretsCommand::Set {
            store,
            tenant,
            functions,
            name,
        } => {
            let mut value = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut value) {
                return usage_error(format!("cannot read standard input: {e}"));
            }
            let value = value.strip_suffix('\n').unwrap_or(&value);
            if value.len() < palisade::MIN_REDACTED_LEN {
                return usage_error(format!(
                    "a secret must be at least {} bytes, so that it can be redacted",
                    palisade::MIN_REDACTED_LEN
                ));
            }
            let functions = (!functions.is_empty()).then(|| functions.into_iter().collect());
            let result = palisade::MasterKey::from_env()
                .and_then(|key| palisade::FileSecretStore::open(&store, &key))
                .and_then(|s| s.put(&tenant, &name, value, functions));
            match result {
                Ok(()) => 0,
                Err(e) => usage_error(e),
            }
        }
    }
}

fn report(outcome: &Outcome, json: bool) -> u8 {
    let kind = outcome.error_kind();
    let mut stdout = std::io::stdout().lock();
    if json {
        let _ = writeln!(stdout, "{}", outcome.to_json());
    } else {
        let _ = stdout.write_all(outcome.stdout.as_bytes());
        let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
        if outcome.truncated {
            eprintln!("palisade: output truncated at the output limit");
        }
        match &outcome.result {
            Ok(serde_json::Value::Null) => {}
            Ok(v) => {
                let text = serde_json::to_string_pretty(v).unwrap_or_default();
                let _ = writeln!(stdout, "{text}");
            }
            Err(e) => {
                eprintln!("error[{}]: {e}", e.kind());
                if let Some(stack) = e.guest().and_then(|g| g.stack.as_deref()) {
                    eprintln!("{}", stack.trim_end());
                }
            }
        }
    }
    let _ = stdout.flush();
    match kind {
        None => 0,
        // A configuration the engine refuses is a usage error on the command line.
        Some(ErrorKind::InvalidRequest) => 2,
        Some(k) => u8::try_from(k.exit_code()).unwrap_or(1),
    }
}

fn engines(json: bool) -> u8 {
    let all = palisade::engines();
    if json {
        let list: Vec<_> = all
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name, "version": e.version,
                    "available": e.available, "detail": e.detail,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return 0;
    }
    for e in &all {
        let status = if e.available {
            "available"
        } else {
            "unavailable"
        };
        let version = if e.version.is_empty() {
            "-"
        } else {
            &e.version
        };
        println!("{:<8} {:<22} {status}", e.name, version);
        if let Some(detail) = &e.detail {
            println!("         {detail}");
        }
    }
    0
}
