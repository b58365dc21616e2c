//! The command line, kubectl-style: `aegis <verb> [<noun>] [flags]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use aegis_scanners::falco::StoreLocation;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "aegis", version, about = "AEGIS: an SRE agent that proves a fix in a shadow and a security gate before production")]
pub struct Cli {
    /// Log level (or set RUST_LOG): error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "warn", env = "AEGIS_LOG")]
    pub log_level: String,
    /// Log as JSON lines on stderr.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Judge candidate evidence against a baseline with a policy. Exit: 0 passed, 1 blocked,
    /// 2 passed with warnings, 3 could not evaluate.
    Gate(GateArgs),
    /// Run scanners now and gate their results.
    #[command(subcommand)]
    Scan(ScanCommand),
    /// The Falco alert receiver and store.
    #[command(subcommand)]
    Falco(FalcoCommand),
    /// Find broken workloads, explain the root cause and propose a typed fix (exit 0 whether or not
    /// incidents are found; non-zero only on errors).
    Analyze(Box<AnalyzeArgs>),
    /// Capture a namespace as a kubectl `List` (Secret values stripped), for `aegis analyze --snapshot`.
    Snapshot(SnapshotArgs),
    /// Shadow environments: list them, delete one, collect expired ones.
    #[command(subcommand)]
    Shadow(ShadowCommand),
    /// Incidents the operator tracks: list, show, approve, reject.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// The operator.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// What a pod can reach: run inside a shadow by the isolation probe (`probe connect ADDR...`).
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// Print the Incident CustomResourceDefinition (apply it with `aegis crd | kubectl apply -f -`).
    Crd {
        #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
        format: DataFormat,
    },
    /// Print a JSON schema: the security report, the policy file or a fix file.
    Schema {
        #[arg(value_enum)]
        which: SchemaKind,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProbeCommand {
    /// Try a TCP connection to each HOST:PORT; print `reached ADDR` or `blocked ADDR: why` per line,
    /// to stdout and to /dev/termination-log (which the kubelet copies into the pod's status). Exits 0:
    /// the lines are the result.
    Connect {
        #[arg(required = true, value_name = "HOST:PORT")]
        addrs: Vec<String>,
        /// How long one connection may take before it counts as blocked.
        #[arg(long, default_value = "2s")]
        timeout: String,
        /// How long each address is tried, every second (an enforcer programs a new pod's rules some
        /// time after it starts). Only the end counts: reached if the last try reached, blocked if the
        /// last three failed; an address still changing is tried on until one of the two holds.
        #[arg(long, default_value = "30s")]
        settle: String,
        /// Where to write the lines besides stdout (the kubelet's termination-message file).
        #[arg(long, default_value = "/dev/termination-log")]
        message_file: PathBuf,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum SchemaKind {
    Report,
    Policy,
    /// One typed fix: what `aegis shadow verify --fix FILE` reads.
    Fix,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Sarif,
    Junit,
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Write the report to this file instead of stdout.
    #[arg(long)]
    pub output_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Policy file (YAML). See `aegis schema policy` and docs/security-gate.md.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Extra .trivyignore / .trivyignore.yaml files.
    #[arg(long = "trivyignore")]
    pub trivyignore: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GateArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Evidence from before the fix: Trivy JSON, ZAP JSON, Falco JSON lines or manifests (by content).
    /// Without it every candidate finding counts as new.
    #[arg(long, num_args = 1..)]
    pub baseline: Vec<PathBuf>,
    /// Evidence from after the fix.
    #[arg(long, num_args = 1.., required = true)]
    pub candidate: Vec<PathBuf>,
    /// Falco evidence: judge alerts of this namespace (and alerts without one).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Largest evidence file accepted, in MiB.
    #[arg(long, default_value_t = 512)]
    pub max_file_mib: u64,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Subcommand, Debug)]
pub enum ScanCommand {
    /// Scan container images with Trivy.
    Image(ScanImageArgs),
    /// Check Kubernetes manifests with the built-in checks (and `trivy config` with --trivy).
    Manifests(ScanManifestsArgs),
    /// Scan a URL with a ZAP daemon.
    Url(ScanUrlArgs),
}

#[derive(Args, Debug, Clone)]
pub struct TrivyArgs {
    /// The trivy binary.
    #[arg(long, default_value = "trivy", env = "AEGIS_TRIVY_BIN")]
    pub trivy_bin: PathBuf,
    /// Trivy cache directory (its DB lives in <dir>/db).
    #[arg(long, env = "AEGIS_TRIVY_CACHE_DIR")]
    pub trivy_cache_dir: Option<PathBuf>,
    /// Client/server mode: the Trivy server's URL.
    #[arg(long, env = "AEGIS_TRIVY_SERVER")]
    pub trivy_server: Option<String>,
    /// Token for the Trivy server (passed to trivy in TRIVY_TOKEN, never on its command line).
    #[arg(long, env = "AEGIS_TRIVY_TOKEN", hide_env_values = true)]
    pub trivy_token: Option<String>,
    /// Use the vulnerability DB in the cache as it is; never download it.
    #[arg(long)]
    pub skip_db_update: bool,
    /// Allow plain-HTTP / self-signed registries.
    #[arg(long)]
    pub insecure: bool,
    /// Where Trivy reads images from (`--image-src`), e.g. `remote` to skip probing for local daemons.
    #[arg(long, env = "AEGIS_TRIVY_IMAGE_SRC")]
    pub image_src: Option<String>,
    /// Deadline of one Trivy run, e.g. 10m.
    #[arg(long, default_value = "10m")]
    pub trivy_timeout: String,
    /// Cache scan results by image digest here (content-addressed; never rescans a digest).
    #[arg(long, env = "AEGIS_SCAN_CACHE_DIR")]
    pub scan_cache_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ScanImageArgs {
    /// Images to scan (the candidate).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Images before the fix, to compare against (scanned concurrently).
    #[arg(long = "baseline-image")]
    pub baseline_images: Vec<String>,
    #[command(flatten)]
    pub trivy: TrivyArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct ScanManifestsArgs {
    /// Manifest files or directories (YAML or JSON).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Also run `trivy config` on the same paths.
    #[arg(long)]
    pub trivy: bool,
    #[command(flatten)]
    pub trivy_args: TrivyArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct ScanUrlArgs {
    /// The URL to scan.
    pub url: String,
    /// The ZAP daemon's API address, e.g. http://127.0.0.1:8090.
    #[arg(long, env = "AEGIS_ZAP_URL")]
    pub zap: String,
    /// The ZAP API key.
    #[arg(long, env = "AEGIS_ZAP_API_KEY", hide_env_values = true)]
    pub zap_api_key: Option<String>,
    /// Also run the AJAX spider.
    #[arg(long)]
    pub ajax_spider: bool,
    /// Also run an active scan (attacks the target: only against what you own).
    #[arg(long)]
    pub active: bool,
    /// Deadline of each scan phase, e.g. 2m.
    #[arg(long, default_value = "2m")]
    pub phase_timeout: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Subcommand, Debug)]
pub enum FalcoCommand {
    /// Receive Falco alerts over HTTP (Falco http_output, falcosidekick webhook) into a durable store.
    Serve(FalcoServeArgs),
    /// Read stored alerts.
    Query(FalcoQueryArgs),
}

#[derive(Args, Debug)]
pub struct FalcoServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2801")]
    pub listen: SocketAddr,
    /// The alert store: a directory (SQLite, one receiver) or a PostgreSQL URL (several receivers
    /// share it; best given through the environment).
    #[arg(long, env = "AEGIS_FALCO_STORE", hide_env_values = true)]
    pub store: StoreLocation,
    /// Require `Authorization: Bearer <token>`.
    #[arg(long, env = "AEGIS_FALCO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body: usize,
    /// Most connections served at once; more are closed as they arrive (each connection must send its
    /// headers within 10 s and finish a request within 30 s).
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Drop alerts older than this (received time), e.g. 7d.
    #[arg(long, default_value = "7d")]
    pub retention: String,
    /// Keep at most this many alerts.
    #[arg(long, default_value_t = 5_000_000)]
    pub max_alerts: u64,
    /// Commit without fsync (survives a process crash, not a power loss); faster.
    #[arg(long)]
    pub no_fsync: bool,
}

#[derive(Args, Debug)]
pub struct FalcoQueryArgs {
    /// The alert store: a directory or a PostgreSQL URL.
    #[arg(long, env = "AEGIS_FALCO_STORE", hide_env_values = true)]
    pub store: StoreLocation,
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Also alerts without a namespace.
    #[arg(long)]
    pub include_unattributed: bool,
    #[arg(long)]
    pub pod: Option<String>,
    /// Pods of a workload (`<name>-…`).
    #[arg(long)]
    pub workload: Option<String>,
    /// How far back, e.g. 15m, 2h.
    #[arg(long, default_value = "1h")]
    pub since: String,
    #[arg(long)]
    pub min_priority: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// table or json.
    #[arg(short = 'o', long = "output", default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only how many alerts match (ignores --limit).
    #[arg(long)]
    pub count: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Label selector for pods and workloads.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Only this workload or Service, as KIND/NAME (e.g. deployment/api).
    pub resource: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Analyze a captured `kubectl get ... -o yaml|json` List instead of a live cluster (`-n` then
    /// filters the file's incidents; the connection flags, often set through $KUBECONFIG, are unused).
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub format: DataFormat,
    #[command(flatten)]
    pub llm: LlmArgs,
    /// Prove each proposed fix in a shadow (health + security gate) and print the result.
    #[arg(long)]
    pub verify: bool,
    /// Print hygiene findings instead of incidents (unused or empty ConfigMaps): nothing broken,
    /// nothing to fix, never acted on by the operator.
    #[arg(long, conflicts_with_all = ["verify", "llm_endpoint"])]
    pub lint: bool,
    /// On a live cluster, also read the Secrets' names and keys, never their values (needs `list` on
    /// secrets): an Ingress's or Gateway listener's TLS Secret that does not exist, and unused
    /// Secrets, are then judged.
    #[arg(long, conflicts_with = "snapshot")]
    pub include_secrets: bool,
    #[command(flatten)]
    pub verification: VerifyArgs,
}

/// Shadow verification settings (with --verify).
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Security policy; its scanners are narrowed to the ones the fix's verification plan names.
    #[arg(long = "verify-policy")]
    pub verify_policy: Option<PathBuf>,
    #[command(flatten)]
    pub trivy: TrivyArgs,
    /// Falco alert store to read the shadow's alerts from: the directory `aegis falco serve --store`
    /// writes (SQLite), or a PostgreSQL URL (`postgres://user:password@host/db`; best given through
    /// the environment, which keeps the password out of the process list).
    #[arg(long, env = "AEGIS_FALCO_STORE", hide_env_values = true)]
    pub falco_store: Option<StoreLocation>,
    /// How long the shadow must stay healthy, e.g. 30s.
    #[arg(long, default_value = "30s")]
    pub window: String,
    /// Deadline of one verification, e.g. 5m.
    #[arg(long, default_value = "5m")]
    pub deadline: String,
    /// The namespace AEGIS runs in (allowed through the shadow's NetworkPolicy).
    #[arg(long, default_value = "aegis-system")]
    pub aegis_namespace: String,
    /// RuntimeClass for shadow pods (e.g. gvisor).
    #[arg(long)]
    pub runtime_class: Option<String>,
    /// The image of the isolation probe run inside each shadow (it must speak `probe connect`: the
    /// AEGIS image does). Without it isolation is reported as not checked, which blocks when the
    /// policy requires it (by default: when Secrets were copied into the shadow).
    #[arg(long, env = "AEGIS_ISOLATION_PROBE_IMAGE")]
    pub isolation_probe_image: Option<String>,
    /// A ZAP daemon to scan the production and shadow Services with (when the plan names ZAP).
    #[arg(long, env = "AEGIS_ZAP_URL")]
    pub zap: Option<String>,
    #[arg(long, env = "AEGIS_ZAP_API_KEY", hide_env_values = true)]
    pub zap_api_key: Option<String>,
}

/// Optional LLM enrichment (off unless --llm-endpoint is given).
#[derive(Args, Debug, Clone)]
pub struct LlmArgs {
    /// An OpenAI-compatible API base URL, e.g. http://127.0.0.1:11434/v1 (Ollama).
    #[arg(long, env = "AEGIS_LLM_ENDPOINT")]
    pub llm_endpoint: Option<String>,
    #[arg(long, env = "AEGIS_LLM_MODEL", default_value = "llama3.1:8b")]
    pub llm_model: String,
    #[arg(long, env = "AEGIS_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// Deadline of one answer, e.g. 30s.
    #[arg(long, default_value = "30s")]
    pub llm_timeout: String,
    /// Total tokens an answer may use.
    #[arg(long, default_value_t = 4000)]
    pub llm_token_budget: u32,
    /// Names never to send to the model (repeatable): customers, hosts, namespaces.
    #[arg(long = "llm-redact")]
    pub llm_redact: Vec<String>,
    /// An image repository (`registry/path/name`) a model's set-image may move a container to, besides
    /// the one it runs (repeatable). Without it a model may change only the tag or digest.
    #[arg(long = "llm-allow-repository")]
    pub llm_allow_repository: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also read the Secrets' names and keys, never their values (needs `list` on secrets): an
    /// Ingress's or Gateway listener's TLS Secret that does not exist, and unused Secrets, are then judged.
    #[arg(long)]
    pub include_secrets: bool,
    /// yaml or json.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    pub format: DataFormat,
}

#[derive(Subcommand, Debug)]
pub enum ShadowCommand {
    /// Create a shadow of a workload (KIND/NAME) and leave it for inspection until its TTL.
    Create {
        resource: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// How long the shadow may live before `aegis shadow gc` deletes it, e.g. 1h.
        #[arg(long, default_value = "1h")]
        ttl: String,
        #[arg(long, default_value = "aegis-system")]
        aegis_namespace: String,
    },
    /// Show a shadow and the readiness of its workloads.
    Status {
        id: String,
        #[command(flatten)]
        cluster: ClusterOnly,
    },
    /// Prove a fix for a workload (KIND/NAME) in a shadow: --fix FILE (a typed fix, YAML or JSON) or
    /// --from-analysis (the fix `aegis analyze` proposes).
    Verify {
        resource: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[arg(long, conflicts_with = "from_analysis")]
        fix: Option<PathBuf>,
        #[arg(long)]
        from_analysis: bool,
        #[command(flatten)]
        verification: Box<VerifyArgs>,
        #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
        format: DataFormat,
    },
    /// List shadow namespaces with their source and expiry.
    List(ClusterOnly),
    /// Delete a shadow by id or namespace.
    Delete {
        id: String,
        #[command(flatten)]
        cluster: ClusterOnly,
    },
    /// Delete every expired shadow (those a crash left behind).
    Gc(ClusterOnly),
}

#[derive(Args, Debug, Clone)]
pub struct ClusterOnly {
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// Incidents, kubectl-style (`-n`, `-A`).
    List {
        #[command(flatten)]
        cluster: ClusterArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
        format: DataFormat,
    },
    /// One incident: root cause, fix, verification, approval, history.
    Show {
        name: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
        format: DataFormat,
    },
    /// Approve the verified fix. The approval names the evidence digest it is for (the current
    /// verification's unless --digest is given); the operator applies only if it is still current.
    Approve {
        name: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The evidence digest approved, as `aegis incident show` prints it.
        #[arg(long)]
        digest: Option<String>,
        /// Deprecated: the decision records who the API server authenticates you as (a SelfSubjectReview);
        /// a different name here is refused.
        #[arg(long = "as", hide = true)]
        by: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject the fix: the incident ends Rejected and nothing is applied.
    Reject {
        name: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Deprecated, as for `approve`.
        #[arg(long = "as", hide = true)]
        by: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Run the operator: detect, analyze, verify in shadows, wait for approval, apply, monitor, roll back.
    Run(Box<OperatorRunArgs>),
}

#[derive(Args, Debug)]
pub struct OperatorRunArgs {
    #[command(flatten)]
    pub cluster: ClusterOnly,
    /// Watch only these namespaces (repeatable); default: all but the excluded ones.
    #[arg(long = "watch-namespace")]
    pub watch_namespaces: Vec<String>,
    /// Watch only namespaces labelled aegis.io/watch=enabled.
    #[arg(long)]
    pub opt_in: bool,
    /// Watch only pods and workloads matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Without --watch-namespace, never watch these (repeatable; kube-system, kube-public,
    /// kube-node-lease and the operator's own are excluded too). Shadows are never watched.
    #[arg(long = "exclude-namespace")]
    pub exclude_namespaces: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Serve the Falco receiver here (writing to --falco-store, which verifications read).
    #[arg(long)]
    pub falco_listen: Option<SocketAddr>,
    #[arg(long, env = "AEGIS_FALCO_TOKEN", hide_env_values = true)]
    pub falco_token: Option<String>,
    /// Without --falco-token: the receiver's bearer token is read from this Secret (key `token`) in
    /// --lease-namespace, which is created with a random token when missing; senders read it there.
    #[arg(long, env = "AEGIS_FALCO_TOKEN_SECRET")]
    pub falco_token_secret: Option<String>,
    /// Namespace of the leader-election Lease (and the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "aegis-system")]
    pub lease_namespace: String,
    #[arg(long, default_value = "aegis-operator")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: the pod name, else host and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// This replica's Pod in --lease-namespace, labelled aegis.io/leader=true while it leads (the chart's
    /// Falco Service selects it, so alerts reach the store the leader's verifications read).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// A Lease not renewed for this long passes to another replica.
    #[arg(long, default_value = "15s")]
    pub lease_duration: String,
    /// Approve automatically a fix whose gate passed cleanly when the incident's severity is at or below
    /// this (LOW, MEDIUM, HIGH, CRITICAL); default: every fix waits for `aegis incident approve`.
    #[arg(long)]
    pub auto_approve_max_severity: Option<String>,
    /// How long a verified fix waits for a decision before the incident expires.
    #[arg(long, default_value = "24h")]
    pub approval_timeout: String,
    /// How long production must stay healthy after an apply.
    #[arg(long, default_value = "60s")]
    pub monitor_window: String,
    /// How long production may take to roll a fix out.
    #[arg(long, default_value = "5m")]
    pub rollout_timeout: String,
    /// Incidents reconciled at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Every namespace in scope is re-analyzed this often (watch events trigger sooner).
    #[arg(long, default_value = "30s")]
    pub resync: String,
    /// Watch events are batched this long before a namespace is analyzed.
    #[arg(long, default_value = "500ms")]
    pub debounce: String,
    #[command(flatten)]
    pub verification: VerifyArgs,
}
