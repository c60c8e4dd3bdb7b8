//! Builds and runs a process in one of its roles.
//!
//! | role     | HTTP API | worker | store migrations | demo database |
//! |----------|----------|--------|------------------|---------------|
//! | `serve`  | yes      | yes    | run at start     | if enabled    |
//! | `api`    | yes      | no     | `migrate` first  | no            |
//! | `worker` | no       | yes    | `migrate` first  | no            |
//!
//! Without `nats_url` the bus is in-process, which only `serve` can use: an `api` and a `worker` in different
//! processes must share NATS. Without `redis_url` a worker keeps its schema cache to itself; workers that share
//! Redis share their schemas.

use anyhow::{Context, bail};
use querygpt_api::chat::ChatHub;
use querygpt_api::{AppState, Backends, TokenKeys};
use querygpt_bus::{Bus, InProcessBus, InProcessOptions, NatsBus, NatsJobOptions};
use querygpt_common::Driver;
use querygpt_common::config::Settings;
use querygpt_common::subjects::Subjects;
use querygpt_llm::{LlmClient, LlmSettings};
use querygpt_store::{NewConnection, SecretBox, Store};
use querygpt_targets::{TargetSettings, Targets};
use querygpt_worker::{Worker, WorkerDeps};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API and worker in one process (the embedded default).
    Serve,
    Api,
    Worker,
}

impl Role {
    fn runs_api(self) -> bool {
        matches!(self, Role::Serve | Role::Api)
    }

    fn runs_worker(self) -> bool {
        matches!(self, Role::Serve | Role::Worker)
    }
}

/// A started process: its HTTP address (if it serves the API) and the handle to stop it.
pub struct RunningApp {
    pub addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl RunningApp {
    /// Asks every part to stop (graceful: the API finishes responses, the worker its jobs) and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.join().await
    }

    /// Runs until `signal` completes, then stops gracefully; ends early if a part fails.
    pub async fn run_until(mut self, signal: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            _ = signal => {}
            Some(ended) = self.tasks.join_next() => {
                self.shutdown.cancel();
                ended.context("a part of the service panicked")??;
                bail!("a part of the service stopped unexpectedly");
            }
        }
        self.stop().await
    }

    async fn join(&mut self) -> anyhow::Result<()> {
        while let Some(ended) = self.tasks.join_next().await {
            ended.context("a part of the service panicked")??;
        }
        Ok(())
    }
}

/// The key that encrypts stored secrets: from the settings, or (embedded mode only) a generated key file.
pub fn secret_box(settings: &Settings) -> anyhow::Result<SecretBox> {
    match &settings.secret_key {
        Some(key) => Ok(SecretBox::from_base64("k1", key.expose())?),
        None if settings.is_embedded() => Ok(SecretBox::load_or_create(&settings.data_dir.join("secret.key"))?),
        None => bail!("secret_key (QUERYGPT_SECRET_KEY) must be set when nats_url is set: all nodes share it"),
    }
}

/// Opens the service's own store, running migrations when asked.
pub async fn open_store(settings: &Settings, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    if settings.is_embedded() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data_dir {}", settings.data_dir.display()))?;
    }
    let store =
        querygpt_store::open_with(&settings.database_url(), secret_box(settings)?, migrate, &settings.store).await?;
    Ok(store)
}

async fn open_bus(settings: &Settings, role: Role) -> anyhow::Result<Arc<dyn Bus>> {
    let subjects = Subjects::new(settings.subject_prefix.clone());
    match &settings.nats_url {
        Some(url) => {
            let options = NatsJobOptions {
                ack_wait: Duration::from_secs(settings.jobs.ack_wait_secs),
                max_deliver: settings.jobs.max_deliver,
                max_pending: settings.jobs.max_pending,
                replicas: settings.jobs.stream_replicas,
            };
            Ok(Arc::new(NatsBus::connect(url, subjects, options).await?))
        }
        None if role == Role::Serve => {
            let options = InProcessOptions {
                max_deliver: settings.jobs.delivery_limit(),
                queue_capacity: usize::try_from(settings.jobs.max_pending).unwrap_or(usize::MAX).clamp(1, 1 << 20),
            };
            Ok(Arc::new(InProcessBus::with_options(subjects, options)))
        }
        None => bail!("`{role:?}` runs apart from its peers: set nats_url (QUERYGPT_NATS_URL)"),
    }
}

/// The demo connection given to new users, after making sure the demo database exists.
async fn demo_connection(settings: &Settings) -> anyhow::Result<NewConnection> {
    let path = settings.demo_path();
    querygpt_targets::demo::ensure_demo_database(&path).await?;
    let path = std::fs::canonicalize(&path)?;
    Ok(NewConnection {
        name: "Demo sales (SQLite)".into(),
        driver: Driver::Sqlite,
        host: None,
        port: None,
        username: None,
        password: None,
        database: path.display().to_string(),
        is_default: true,
    })
}

/// A listener on `address` (`host:port`, the first address it resolves to) with a listen queue of `backlog`
/// connections: the default of 128 overflows when thousands of clients connect at once.
async fn listen(address: &str, backlog: u32) -> anyhow::Result<TcpListener> {
    let addr = tokio::net::lookup_host(address).await?.next().context("the address resolves to nothing")?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(TcpListener::from_std(socket.into())?)
}

/// Raises the soft limit of open files to the hard limit: each stream holds a socket (two in the embedded mode),
/// and the usual soft limit of 1024 is far below what one node serves.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// Starts a process in `role`. `listener` overrides `settings.listen` (tests bind port 0).
pub async fn start(settings: Settings, role: Role, listener: Option<TcpListener>) -> anyhow::Result<RunningApp> {
    let settings = Arc::new(settings);
    raise_open_file_limit();
    if settings.telemetry.metrics {
        // Installed before anything is recorded: the `metrics` macros record nothing without it.
        querygpt_telemetry::prometheus();
    }
    let store = open_store(&settings, role == Role::Serve).await?;
    let bus = open_bus(&settings, role).await?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut addr = None;
    // One for the whole process: in the embedded mode the API and the worker share it.
    let cache = querygpt_cache::open(settings.redis_url.as_deref(), &settings.subject_prefix)
        .await
        .context("cannot open the shared cache (redis_url, QUERYGPT_REDIS_URL)")?;
    if settings.redis_url.is_none() && !settings.is_embedded() {
        tracing::warn!(
            "no redis_url: schemas, Text2SQL conversations and limits stay in this process, not shared with the others"
        );
    }
    tracing::info!(backend = cache.backend(), "shared cache");

    if role.runs_worker() {
        let worker = Worker::new(WorkerDeps {
            store: store.clone(),
            bus: bus.clone(),
            llm: LlmClient::new(LlmSettings {
                request_timeout: Duration::from_secs(settings.worker.llm_timeout_secs),
                connect_timeout: Duration::from_secs(10),
                max_retries: settings.worker.llm_max_retries,
                network: settings.network,
            })?
            .with_max_calls_per_model(settings.worker.max_llm_calls_per_model),
            targets: Targets::new(TargetSettings::from_settings(&settings)),
            cache: cache.clone(),
            settings: settings.worker.clone(),
            jobs: settings.jobs.clone(),
        })?;
        // Listening before the API opens its port: a first request then finds a worker.
        let running = worker.start(shutdown.clone()).await?;
        tasks.spawn(async move { Ok(running.await?) });
        if let Some(address) = &settings.worker.metrics_listen {
            let listener = listen(address, 128).await.with_context(|| format!("cannot listen on {address}"))?;
            tracing::info!(addr = %listener.local_addr()?, "worker metrics listening");
            let (bus, telemetry, stop) = (bus.clone(), settings.telemetry.clone(), shutdown.clone());
            tasks.spawn(async move {
                Ok(querygpt_api::telemetry::serve_worker_metrics(listener, bus, telemetry, stop.cancelled_owned())
                    .await?)
            });
        }
    }

    if role.runs_api() {
        let demo = match (role, settings.demo.enabled) {
            (Role::Serve, true) => Some(demo_connection(&settings).await?),
            _ => None,
        };
        let listener = match listener {
            Some(listener) => listener,
            None => listen(&settings.listen, settings.http.listen_backlog)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?,
        };
        addr = Some(listener.local_addr()?);
        let node_id = settings.node_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let tokens = TokenKeys::from_settings(&settings)?;
        let chat = ChatHub::new(shutdown.clone());
        let backends = Backends { store, bus: bus.clone(), shared: cache };
        let state = AppState::new(backends, settings.clone(), tokens, demo, node_id.clone(), chat);
        let hub_state = state.clone();
        tasks.spawn(async move { Ok(hub_state.chat.run(bus, &node_id).await?) });
        let stop = shutdown.clone();
        let header_timeout = Duration::from_secs(settings.http.header_read_timeout_secs.max(1));
        tasks.spawn(
            async move { Ok(querygpt_api::serve(listener, state, header_timeout, stop.cancelled_owned()).await?) },
        );
        tracing::info!(addr = %addr.expect("set above"), ?role, "listening");
    }

    Ok(RunningApp { addr, shutdown, tasks })
}
