//! Reaching PostgreSQL: one place that resolves where to connect and with what.
//!
//! Resolution order (SPEC §2), per component (user, password, host, port, database, TLS):
//! 1. `--db-url`, or else the `PMOVES_SECRETS_DB_URL` variable;
//! 2. the stack's `.env` (`POSTGRES_PASSWORD`, `POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_DB`),
//!    handed over as plain values ([`StackSettings`]: which keys hold them is the stack's business);
//! 3. the standard libpq variables (`PGUSER`, `PGPASSWORD`, `PGHOST`, `PGPORT`, `PGDATABASE`,
//!    `PGSSLMODE`);
//! 4. the defaults: `supabase_admin` on `localhost:5432`, database `postgres`, `sslmode=prefer`.
//!
//! A pure connector: it reads no file and talks to no operator; what the operator should hear
//! comes back as [`Resolved::warnings`].
//!
//! The password never travels through `Debug`: `tokio_postgres::Config` redacts it, and the
//! display name of a target is `user@host:port/db` only.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config};

use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::secret::Secret;

/// TLS modes, as libpq's `sslmode` (each variant's doc is its `--help` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it.
    Prefer,
    /// Require TLS (the certificate is not verified, as libpq's `require`).
    Require,
}

/// How to reach the database. The password is best kept in the .env or in
/// PMOVES_SECRETS_DB_URL: a password on the command line is visible to `ps`.
///
/// [`resolve`] completes it from the `.env`, the environment and the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectOptions {
    /// postgresql:// URL of the database (overrides the .env; also PMOVES_SECRETS_DB_URL).
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,

    /// TLS mode [default: the URL's sslmode, PGSSLMODE, else prefer].
    #[arg(long, value_enum)]
    pub sslmode: Option<SslMode>,
}

/// The role the tool acts as unless told otherwise: the stack's superuser.
pub const DEFAULT_USER: &str = "supabase_admin";

/// Variable that carries a connection URL without putting it in `argv`.
pub const DB_URL_VAR: &str = "PMOVES_SECRETS_DB_URL";

/// How long one connection attempt may take before the host is called unreachable.
const CONNECT_TIMEOUT: Limit = Limit::new("connect", Duration::from_secs(10));

/// Where and as whom to connect. Cloning it is cheap; `Debug` never shows the password.
#[derive(Clone)]
pub struct Target {
    config: Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    /// The sessions [`Target::session_in`] opened, shared by every clone of this target and by
    /// its [`Target::in_database`] targets (the same login on the same server), never by a
    /// target for another login: each database costs one login per run, not one per look.
    opened: OpenedSessions,
}

type OpenedSessions = Arc<std::sync::Mutex<Vec<(String, Arc<Client>)>>>;

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Reads an environment variable, treating empty as unset.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What the stack's `.env` says about the connection, each value `None` when unset or empty.
/// No `Debug`: it holds the password.
#[derive(Clone, Copy, Default)]
pub struct StackSettings<'a> {
    /// The password every Supabase role shares.
    pub password: Option<&'a str>,
    /// The database host.
    pub host: Option<&'a str>,
    /// The database port, as written.
    pub port: Option<&'a str>,
    /// The database name.
    pub dbname: Option<&'a str>,
}

/// A resolved target, and what the operator should be told about how it was resolved.
#[derive(Debug)]
pub struct Resolved {
    /// Where and as whom to connect.
    pub target: Target,
    /// Warnings for the operator (a password in `argv`), for the caller to show.
    pub warnings: Vec<String>,
}

/// Resolves the connection target as documented at the top of this module.
pub fn resolve(args: &ConnectOptions, stack: &StackSettings<'_>) -> Result<Resolved> {
    let (url, from_flag) = match (&args.db_url, env_var(DB_URL_VAR)) {
        (Some(url), _) => (Some(url.clone()), true),
        (None, from_env) => (from_env, false),
    };
    let mut config = parse_url(url.as_deref(), if from_flag { "--db-url" } else { DB_URL_VAR })?;
    let mut warnings = Vec::new();
    if from_flag && config.get_password().is_some() {
        warnings.push(format!(
            "--db-url carries a password, which other users can read with `ps`; \
             prefer POSTGRES_PASSWORD in the .env or the {DB_URL_VAR} variable"
        ));
    }
    fill_from_stack(&mut config, stack)?;
    let url_sets_sslmode = url.as_deref().is_some_and(|u| u.contains("sslmode"));
    set_sslmode(&mut config, args.sslmode, url_sets_sslmode)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(match env_var("PGCONNECT_TIMEOUT") {
            Some(text) => parse_connect_timeout(&text)?,
            None => CONNECT_TIMEOUT.get(),
        });
    }
    config.application_name("pmoves-secrets");
    Ok(Resolved { target: Target { config, tls: tls_connector()?, opened: OpenedSessions::default() }, warnings })
}

/// The connection string (from `source_name`), its `sslmode` checked; an empty configuration
/// without one.
fn parse_url(url: Option<&str>, source_name: &'static str) -> Result<Config> {
    let Some(url) = url else { return Ok(Config::new()) };
    if let Some(mode) = crate::dburl::query_param(url, "sslmode") {
        parse_sslmode(&mode, &format!("the sslmode of {source_name}"))?;
    }
    Config::from_str(url).map_err(|e| Error::BadUrl {
        source_name,
        shown: crate::dburl::redact(url),
        reason: crate::dburl::scrub(&e.to_string(), url),
    })
}

/// What the connection string left unset: from the stack's settings, then libpq's variables,
/// then the defaults.
fn fill_from_stack(config: &mut Config, stack: &StackSettings<'_>) -> Result<()> {
    let from_env = |value: Option<&str>| value.map(str::to_owned);
    if config.get_user().is_none() {
        config.user(env_var("PGUSER").as_deref().unwrap_or(DEFAULT_USER));
    }
    if config.get_password().is_none() {
        if let Some(password) = from_env(stack.password).or_else(|| env_var("PGPASSWORD")) {
            config.password(password);
        }
    }
    if config.get_hosts().is_empty() {
        let host = from_env(stack.host).or_else(|| env_var("PGHOST")).unwrap_or_else(|| "localhost".into());
        config.host(&host);
    }
    if config.get_ports().is_empty() {
        let port_text = from_env(stack.port).or_else(|| env_var("PGPORT"));
        let port = match port_text {
            Some(text) => text.parse::<u16>().map_err(|_| {
                Error::Usage(format!("the port '{text}' (POSTGRES_PORT or PGPORT) is not a number from 1 to 65535"))
            })?,
            None => 5432,
        };
        config.port(port);
    }
    if config.get_dbname().is_none() {
        config.dbname(from_env(stack.dbname).or_else(|| env_var("PGDATABASE")).as_deref().unwrap_or("postgres"));
    }
    Ok(())
}

/// `--sslmode`, else the connection string's own, else `PGSSLMODE`, else `prefer`.
fn set_sslmode(config: &mut Config, flag: Option<SslMode>, url_sets_sslmode: bool) -> Result<()> {
    let sslmode = match (flag, url_sets_sslmode, env_var("PGSSLMODE")) {
        (Some(mode), _, _) => Some(mode),
        (None, true, _) => None,
        (None, false, Some(text)) => Some(parse_sslmode(&text, "PGSSLMODE")?),
        (None, false, None) => Some(SslMode::Prefer),
    };
    if let Some(mode) = sslmode {
        config.ssl_mode(match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
        });
    }
    Ok(())
}

/// `PGCONNECT_TIMEOUT` as libpq reads it: whole seconds (libpq treats values below 2 as 2).
fn parse_connect_timeout(text: &str) -> Result<Duration> {
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds.max(2))),
        _ => Err(Error::Usage(format!("PGCONNECT_TIMEOUT '{text}' is not a positive number of seconds"))),
    }
}

/// An sslmode (`PGSSLMODE`, or a URL's `sslmode=`, named by `source`) as libpq spells it. The
/// verifying modes are refused rather than quietly weakened to `require`: whoever asked for
/// verification must not get an unverified channel.
fn parse_sslmode(text: &str, source: &str) -> Result<SslMode> {
    match text {
        "disable" => Ok(SslMode::Disable),
        "allow" | "prefer" => Ok(SslMode::Prefer),
        "require" => Ok(SslMode::Require),
        "verify-ca" | "verify-full" => Err(Error::Usage(format!(
            "{source} '{text}' asks for certificate verification, which this tool does not do; \
             use require (encrypted, like libpq's require) or run it inside the stack's network"
        ))),
        other => Err(Error::Usage(format!(
            "{source} '{other}' is not an sslmode this tool knows: use disable, prefer (allow means the same here) \
             or require"
        ))),
    }
}

impl Target {
    /// `user@host:port/db`, for messages.
    pub fn display(&self) -> String {
        format!("{}@{}/{}", self.user(), self.host_port(), self.dbname())
    }

    /// `host:port`, for messages.
    pub fn host_port(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// The host this target connects to (the first one; a Unix socket's directory as a path).
    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        }
    }

    /// The port this target connects to.
    pub fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    /// The role this target logs in as.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or(DEFAULT_USER)
    }

    /// The database this target opens.
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("postgres")
    }

    /// The password this target logs in with, if any.
    pub fn password(&self) -> Option<Secret> {
        self.config.get_password().map(|p| Secret::new(String::from_utf8_lossy(p).into_owned()))
    }

    /// The same server and database, as another role.
    pub fn as_login(&self, user: &str, password: &Secret) -> Target {
        let mut config = self.config.clone();
        config.user(user);
        config.password(password.expose());
        Target { config, tls: self.tls.clone(), opened: OpenedSessions::default() }
    }

    /// The same target with at most `limit` to connect (a look that must not hold a command up).
    pub fn with_connect_timeout(&self, limit: Duration) -> Target {
        let mut config = self.config.clone();
        config.connect_timeout(limit);
        Target { config, tls: self.tls.clone(), opened: OpenedSessions::default() }
    }

    /// The same server and role, another database.
    pub fn in_database(&self, dbname: &str) -> Target {
        let mut config = self.config.clone();
        config.dbname(dbname);
        Target { config, tls: self.tls.clone(), opened: Arc::clone(&self.opened) }
    }

    /// A session on `dbname` of this target's server, as this target's login: the one an earlier
    /// call opened while it is still open, else a new one (kept for later calls).
    pub async fn session_in(&self, dbname: &str) -> Result<Arc<Client>> {
        let kept = self
            .opened_sessions()
            .iter()
            .find(|(name, client)| name == dbname && !client.is_closed())
            .map(|(_, client)| Arc::clone(client));
        if let Some(client) = kept {
            return Ok(client);
        }
        let client = Arc::new(self.in_database(dbname).connect().await?);
        self.opened_sessions().push((dbname.to_owned(), Arc::clone(&client)));
        Ok(client)
    }

    /// The session [`Target::session_in`] keeps on `dbname`, handed over for good (a
    /// transaction's), when nothing else holds it any more.
    pub fn take_session(&self, dbname: &str) -> Option<Client> {
        let mut opened = self.opened_sessions();
        let at = opened.iter().position(|(name, client)| name == dbname && !client.is_closed())?;
        let (name, client) = opened.swap_remove(at);
        match Arc::try_unwrap(client) {
            Ok(client) => Some(client),
            Err(shared) => {
                opened.push((name, shared));
                None
            }
        }
    }

    fn opened_sessions(&self) -> std::sync::MutexGuard<'_, Vec<(String, Arc<Client>)>> {
        // A panic while the list was held cannot leave it half-changed (one push or removal).
        self.opened.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connects once, without retries, and drives the connection on the current runtime.
    ///
    /// The whole connect is bounded by the connect timeout, the startup exchange included: the
    /// driver's own timeout covers only the socket, and a peer that accepts the connection and
    /// never answers would otherwise hold the run for ever.
    pub async fn connect_raw(&self) -> std::result::Result<Client, ConnectFailure> {
        let limit = self.config.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT.get());
        let (client, connection) = match tokio::time::timeout(limit, self.config.connect(self.tls.clone())).await {
            Ok(connected) => connected.map_err(ConnectFailure::Refused)?,
            Err(_) => return Err(ConnectFailure::NoAnswer(limit)),
        };
        tokio::spawn(async move {
            // Errors surface through the client's next call, where they are reported in context.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Connects, retrying only a refused or reset connection (a server that is restarting);
    /// authentication and other errors are final at once.
    pub async fn connect(&self) -> Result<Client> {
        self.connect_retrying().await.map_err(|err| self.connect_error(&err))
    }

    /// Like [`Target::connect`], but a database that does not exist is `Ok(None)`.
    pub async fn connect_if_exists(&self) -> Result<Option<Client>> {
        match self.connect_retrying().await {
            Ok(client) => Ok(Some(client)),
            Err(err) if err.sqlstate() == Some(&SqlState::INVALID_CATALOG_NAME) => Ok(None),
            Err(err) => Err(self.connect_error(&err)),
        }
    }

    async fn connect_retrying(&self) -> std::result::Result<Client, ConnectFailure> {
        let mut delay = Duration::from_millis(200);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.connect_raw().await {
                Err(err) if attempts < 3 && err.is_transient() => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                outcome => return outcome,
            }
        }
    }

    /// Asks the server to cancel what `token`'s session is running (a statement waiting for a
    /// lock ignores a closed socket until the wait ends). Best effort: errors are ignored.
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) {
        let _ = token.cancel_query(self.tls.clone()).await;
    }

    /// Tries a login without retries; `Ok(())` when the server accepted it.
    pub async fn try_login(&self) -> std::result::Result<(), String> {
        match self.connect_raw().await {
            Ok(client) => {
                drop(client);
                Ok(())
            }
            Err(err) => Err(err.describe()),
        }
    }

    /// One clear sentence for a failed connection, naming host and role, with a hint chosen by
    /// the SQLSTATE (or, when the server never answered, by what the network said).
    fn connect_error(&self, err: &ConnectFailure) -> Error {
        let hint = match err.sqlstate() {
            Some(code) if is_auth_failure_code(code.code()) => {
                "the password was rejected; check POSTGRES_PASSWORD in the .env (or the URL's password)"
            }
            Some(&SqlState::INVALID_CATALOG_NAME) => "check the database name",
            Some(_) => "check the connection settings",
            None if err.is_network() => {
                "is the server running, and are POSTGRES_HOST / POSTGRES_PORT (or --db-url) right? Inside the stack's network use the compose overlay"
            }
            None => "check the connection settings",
        };
        Error::Connect {
            target: self.host_port(),
            user: self.user().to_owned(),
            reason: format!("{}; {hint}", err.describe()),
            sqlstate: err.sqlstate().map(|c| c.code().to_owned()),
        }
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectFailure {
    /// The server or the network refused: the driver's error (with the SQLSTATE when the server
    /// answered).
    Refused(tokio_postgres::Error),
    /// Nothing answered within the connect timeout (a silent peer, a black-holed route).
    NoAnswer(Duration),
}

impl ConnectFailure {
    /// The server's SQLSTATE, when it answered.
    pub fn sqlstate(&self) -> Option<&SqlState> {
        match self {
            ConnectFailure::Refused(err) => err.code(),
            ConnectFailure::NoAnswer(_) => None,
        }
    }

    /// Whether the server refused the login itself (wrong password, unknown role, no
    /// `pg_hba.conf` entry).
    pub fn is_auth_failure(&self) -> bool {
        self.sqlstate().is_some_and(|c| is_auth_failure_code(c.code()))
    }

    /// The reason, for messages (scrubbed of connection-string passwords).
    pub fn describe(&self) -> String {
        match self {
            ConnectFailure::Refused(err) => describe(err),
            ConnectFailure::NoAnswer(limit) => format!(
                "the server accepted the connection but did not answer within {} s (connect_timeout / PGCONNECT_TIMEOUT)",
                limit.as_secs()
            ),
        }
    }

    /// A refused or reset connection: a server that is restarting, worth another try.
    fn is_transient(&self) -> bool {
        self.io_kind().is_some_and(|kind| {
            matches!(kind, std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset)
        })
    }

    /// The server never took part: unreachable, refused, unresolvable, silent.
    fn is_network(&self) -> bool {
        match self {
            ConnectFailure::NoAnswer(_) => true,
            ConnectFailure::Refused(err) => err.code().is_none() && (self.io_kind().is_some() || err.is_closed()),
        }
    }

    fn io_kind(&self) -> Option<std::io::ErrorKind> {
        let ConnectFailure::Refused(err) = self else { return None };
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                return Some(io.kind());
            }
            source = inner.source();
        }
        None
    }
}

/// How long a session without a `--lock-timeout` option (`check --db`, rotate-secrets' reads of
/// the services' copies) waits for a lock before giving up; rotation passes its `--lock-timeout`.
pub const DEFAULT_LOCK_TIMEOUT: Limit = Limit::new("lock", Duration::from_secs(5));

/// The `SET LOCAL` statements that bound the rest of a transaction: a lock is waited for at most
/// `lock_timeout`, a statement runs at most `lock_timeout` plus 30 s. Nothing the tool reads
/// (catalogs, `_analytics.source_backends`) may hold a run for ever. Never set for a whole
/// session: behind a transaction-mode pooler a session-level setting stays on the server
/// connection, and the pooler hands it to its next client.
pub fn bound_transaction_sql(lock_timeout: Duration) -> String {
    let lock_ms = lock_timeout.as_millis().max(1);
    let statement_ms = lock_ms + 30_000;
    format!("SET LOCAL lock_timeout = '{lock_ms}ms'; SET LOCAL statement_timeout = '{statement_ms}ms'")
}

/// One read, as an unnamed statement, in a bounded read-only transaction of its own
/// ([`bounded_reads`]).
pub async fn bounded_read(
    client: &Client,
    lock_timeout: Duration,
    sql: &str,
    params: &[(&(dyn tokio_postgres::types::ToSql + Sync), tokio_postgres::types::Type)],
) -> std::result::Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    bounded_reads(client, lock_timeout, async |client| client.query_typed(sql, params).await).await?
}

/// `reads` run in a read-only transaction of their own, bounded by [`bound_transaction_sql`]:
/// nothing stays set on the session afterwards. Behind a
/// transaction-mode pooler the bounds, the reads and their end run in one server session, and
/// that server session goes to the pooler's next client as it came. The outer error is the
/// transaction's own (`BEGIN`, `COMMIT`); the inner result is what `reads` returned (on an
/// error the transaction is rolled back, and that error is the one reported).
pub async fn bounded_reads<T, E>(
    client: &Client,
    lock_timeout: Duration,
    reads: impl AsyncFnOnce(&Client) -> std::result::Result<T, E>,
) -> std::result::Result<std::result::Result<T, E>, tokio_postgres::Error> {
    client.batch_execute(&format!("BEGIN READ ONLY; {}", bound_transaction_sql(lock_timeout))).await?;
    let read = reads(client).await;
    match read {
        Ok(_) => client.batch_execute("COMMIT").await?,
        Err(_) => {
            let _ = client.batch_execute("ROLLBACK").await;
        }
    }
    Ok(read)
}

/// A session on the database [`find_table`] found: the caller's own, or one opened for it.
pub struct Located<'a> {
    /// The database's name.
    pub dbname: String,
    session: LocatedSession<'a>,
}

enum LocatedSession<'a> {
    Borrowed(&'a Client),
    Kept(Arc<Client>),
}

impl<'a> Located<'a> {
    /// The caller's own session on `dbname`.
    pub fn borrowed(dbname: &str, client: &'a Client) -> Self {
        Located { dbname: dbname.to_owned(), session: LocatedSession::Borrowed(client) }
    }

    /// The session.
    pub fn client(&self) -> &Client {
        match &self.session {
            LocatedSession::Borrowed(client) => client,
            LocatedSession::Kept(client) => client,
        }
    }
}

/// The first of `candidates` (database names of `target`'s server, in the order to look) whose
/// catalogs hold the table `schema.table`, with a session on it. `main` is a session already
/// open on `target`'s database; any other candidate is reached through [`Target::session_in`]
/// (one session per database for the run) and skipped when that fails (a database that does not
/// exist, or refuses the role). Each look is one bounded read
/// ([`bounded_read`]) of the catalogs, which need no rights on the schema. A failed look stops
/// the walk with the database it failed in.
pub async fn find_table<'a, 'n>(
    target: &Target,
    main: &'a Client,
    candidates: impl IntoIterator<Item = &'n str>,
    (schema, table): (&str, &str),
    lock_timeout: Duration,
) -> std::result::Result<Option<Located<'a>>, (String, tokio_postgres::Error)> {
    use tokio_postgres::types::Type;
    const HOLDS_TABLE: &str = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)";
    for dbname in candidates {
        let located = if dbname == target.dbname() {
            Located::borrowed(dbname, main)
        } else {
            match target.session_in(dbname).await {
                Ok(client) => Located { dbname: dbname.to_owned(), session: LocatedSession::Kept(client) },
                Err(_) => continue,
            }
        };
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
            [(&schema, Type::TEXT), (&table, Type::TEXT)];
        let holds = bounded_read(located.client(), lock_timeout, HOLDS_TABLE, &params)
            .await
            .and_then(|rows| rows.first().map_or(Ok(false), |row| row.try_get::<_, bool>(0)));
        match holds {
            Ok(true) => return Ok(Some(located)),
            Ok(false) => {}
            Err(err) => return Err((located.dbname, err)),
        }
    }
    Ok(None)
}

/// Whether the server refused the login itself: 28P01 is a rejected password, 28000 an unknown
/// role or no `pg_hba.conf` entry (under SCRAM an absent role answers 28P01 too).
pub fn is_auth_failure_code(code: &str) -> bool {
    matches!(code, "28P01" | "28000")
}

/// The server's or the OS's reason, without tokio-postgres' nesting noise.
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let piece = inner.to_string();
        if !text.contains(&piece) {
            text.push_str(": ");
            text.push_str(&piece);
        }
        source = inner.source();
    }
    crate::dburl::redact_in_text(&text)
}

/// TLS as libpq's `prefer`/`require`: encrypt, without verifying the certificate. Supabase's
/// database image ships a self-signed certificate, so verification would always fail there.
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS cannot be set up ({e}); use --sslmode disable")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// libpq's `require` semantics: the channel is encrypted, the peer is not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A current-thread runtime for the commands that talk to PostgreSQL. `generate-keys` never
/// builds one, which keeps it a few-millisecond process.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Error::Io {
        action: "start",
        path: "the async runtime".into(),
        reason: e.to_string(),
    })
}

/// The outcome of one login.
#[derive(Debug, Clone, Serialize)]
pub struct LoginResult {
    /// The role.
    pub role: String,
    /// Whether the server accepted the password.
    pub ok: bool,
    /// Why not, when it did not (the server's words, never a password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Logs in as each role with `password`, all at once, and reports each result in `roles` order.
/// Used by the rotation's verification (step 7) and by `check --db`. An attempt whose task did not
/// finish is reported as a failed login, never dropped.
pub async fn logins<R: AsRef<str>>(target: &Target, roles: &[R], password: &Secret) -> Vec<LoginResult> {
    let mut set = tokio::task::JoinSet::new();
    let mut index_of = std::collections::HashMap::with_capacity(roles.len());
    for (index, role) in roles.iter().enumerate() {
        let login = target.as_login(role.as_ref(), password);
        let handle = set.spawn(async move { login.try_login().await });
        index_of.insert(handle.id(), index);
    }
    let mut outcomes: Vec<Result<(), String>> = vec![Err("the login attempt did not finish".to_owned()); roles.len()];
    while let Some(joined) = set.join_next_with_id().await {
        if let Ok((id, outcome)) = joined {
            if let Some(&index) = index_of.get(&id) {
                outcomes[index] = outcome;
            }
        }
    }
    roles
        .iter()
        .zip(outcomes)
        .map(|(role, outcome)| LoginResult {
            role: role.as_ref().to_owned(),
            ok: outcome.is_ok(),
            error: outcome.err(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_names_follow_libpq() {
        assert_eq!(parse_sslmode("disable", "PGSSLMODE").unwrap(), SslMode::Disable);
        assert_eq!(parse_sslmode("require", "PGSSLMODE").unwrap(), SslMode::Require);
        assert!(parse_sslmode("verify-full", "PGSSLMODE").is_err(), "never silently weakened");
        assert!(parse_sslmode("bogus", "PGSSLMODE").is_err());
    }
}
