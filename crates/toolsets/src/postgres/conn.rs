//! One connection pool per link, the transaction every call runs in, and failures worded so a
//! model can act on them.
//!
//! The pool is built lazily with the toolset (no network until a call) and dropped with it.
//! Reads run in `BEGIN READ ONLY` with `SET LOCAL statement_timeout`, so PostgreSQL itself
//! refuses a write and stops a slow statement; writes run in their own transaction. A
//! connection goes back to the pool only after its transaction ended cleanly and its session
//! was reset (`DISCARD ALL`); one abandoned mid-stream is closed instead of drained, and its
//! statement is cancelled on the server (`pg_cancel_backend`): closing the socket alone
//! leaves PostgreSQL running it until it next writes to the client.

use std::time::Duration;

use linkmcp_api::link::SslMode;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, Postgres};

use crate::credentials::Credentials;

/// Connections one link keeps at most.
pub(crate) const MAX_CONNECTIONS: u32 = 4;
/// Longest wait for a pooled connection (and the pool's connect attempts) in one call.
const ACQUIRE_BUDGET: Duration = Duration::from_secs(5);
/// Longest wait of the one direct connection made to explain a failed acquire.
const PROBE_BUDGET: Duration = Duration::from_secs(3);
/// Idle connections are closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Connections are replaced after this, to follow DNS and failovers.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// The longest a read transaction waits for a lock (`lock_timeout`); reads take only
/// ACCESS SHARE locks, which wait only behind DDL or another exclusive lock.
pub(crate) const READ_LOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// Where a link's PostgreSQL is, for connecting and for messages (never a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The McpLink's name, named in authentication failures.
    pub link: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub ssl_mode: SslMode,
}

impl Target {
    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The kind of transaction a call runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

/// A link's pool and how to explain its failures.
pub(crate) struct Pool {
    pool: PgPool,
    options: PgConnectOptions,
    target: Target,
}

fn ssl_mode(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow => PgSslMode::Allow,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyCa => PgSslMode::VerifyCa,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

/// The user name when the credentials name none (libpq would take the process user, which in
/// a container says nothing).
pub(crate) const DEFAULT_USER: &str = "postgres";

impl Pool {
    /// A pool for `target` with `credentials` (`username` or `user`, `password`, and
    /// optionally `ca.crt`, a PEM CA bundle for `verify-ca`/`verify-full`). Opens no connection.
    pub(crate) fn new(target: Target, credentials: &Credentials) -> Self {
        let user = credentials
            .get("username")
            .or_else(|| credentials.get("user"))
            .unwrap_or(DEFAULT_USER);
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&target.host)
            .port(target.port)
            .database(&target.database)
            .username(user)
            .ssl_mode(ssl_mode(target.ssl_mode))
            .application_name("linkmcp")
            .statement_cache_capacity(32);
        if let Some(password) = credentials.get("password") {
            options = options.password(password);
        }
        if let Some(ca) = credentials.get("ca.crt") {
            options = options.ssl_root_cert_from_pem(ca.as_bytes().to_vec());
        }
        // The reaper of idle and old connections is a background task: only with a runtime
        // (a toolset built outside one, e.g. to list its tools, keeps connections until dropped).
        let background = tokio::runtime::Handle::try_current().is_ok();
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_BUDGET)
            .idle_timeout(background.then_some(IDLE_TIMEOUT))
            .max_lifetime(background.then_some(MAX_LIFETIME))
            .test_before_acquire(true)
            .after_release(|conn, _| {
                Box::pin(async move {
                    // Every call starts from a clean session: settings, roles, prepared
                    // statements, temporary tables and advisory locks of the last one are gone.
                    conn.clear_cached_statements().await?;
                    conn.execute("DISCARD ALL").await?;
                    Ok(true)
                })
            })
            .connect_lazy_with(options.clone());
        Self {
            pool,
            options,
            target,
        }
    }

    /// Starts a transaction of `mode` whose statements PostgreSQL cancels after
    /// `statement_timeout`; `call_timeout` bounds the wait for a connection.
    pub(crate) async fn begin(
        &self,
        mode: Mode,
        call_timeout: Duration,
        statement_timeout: Duration,
    ) -> Result<Session, String> {
        let conn = self.acquire(call_timeout).await?;
        let mut session = Session {
            conn,
            ended: false,
            cancel: None,
        };
        let millis = statement_timeout.as_millis().clamp(1, i32::MAX as u128);
        let sql = match mode {
            // The SELECT takes the transaction's first snapshot, after which PostgreSQL no
            // longer lets it switch to read-write (`SET TRANSACTION READ WRITE`). A read never
            // waits long for a lock: while it waits, its queued request would hold back every
            // later session wanting a conflicting lock on the same table.
            Mode::Read => {
                let lock_millis = millis.min(READ_LOCK_TIMEOUT.as_millis());
                format!(
                    "BEGIN READ ONLY; SET LOCAL statement_timeout = {millis}; \
                     SET LOCAL lock_timeout = {lock_millis}; SELECT pg_backend_pid()"
                )
            }
            Mode::Write => format!(
                "BEGIN READ WRITE; SET LOCAL statement_timeout = {millis}; SELECT pg_backend_pid()"
            ),
        };
        // The same round trip tells the backend's process id, which a cancel names.
        let pid: Option<i32> = session
            .conn()
            .fetch_optional(sqlx::raw_sql(AssertSqlSafe(sql)))
            .await
            .map_err(|e| self.explain(&e, statement_timeout))?
            .and_then(|row| sqlx::Row::try_get(&row, 0).ok());
        session.cancel = pid.map(|pid| Canceller {
            options: self.options.clone(),
            pid,
        });
        Ok(session)
    }

    async fn acquire(&self, call_timeout: Duration) -> Result<PoolConnection<Postgres>, String> {
        let budget = (call_timeout / 2).clamp(Duration::from_millis(100), ACQUIRE_BUDGET);
        match tokio::time::timeout(budget, self.pool.acquire()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => Err(self.diagnose().await),
            Ok(Err(err)) => Err(self.explain(&err, call_timeout)),
        }
    }

    /// Why no connection could be had: the pool retries refused connections until its
    /// deadline, hiding the reason, so one direct attempt tells it.
    async fn diagnose(&self) -> String {
        let address = self.target.address();
        match tokio::time::timeout(PROBE_BUDGET, PgConnection::connect_with(&self.options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                format!(
                    "all {MAX_CONNECTIONS} connections of link {} to postgres at {address} are \
                     busy; try again shortly",
                    self.target.link
                )
            }
            Ok(Err(err)) => self.explain(&err, PROBE_BUDGET),
            Err(_) => format!(
                "cannot reach postgres at {address}: no answer within {}s; check the host, port \
                 and NetworkPolicy",
                PROBE_BUDGET.as_secs()
            ),
        }
    }

    /// A failure in words a model can act on; never a credential (only the link name, host,
    /// port and database, and PostgreSQL's own message for statement errors).
    pub(crate) fn explain(&self, err: &sqlx::Error, statement_timeout: Duration) -> String {
        let address = self.target.address();
        let link = &self.target.link;
        match err {
            sqlx::Error::Io(e) => format!(
                "cannot reach postgres at {address}: {e}; check the host, port and NetworkPolicy"
            ),
            sqlx::Error::Tls(e) => format!(
                "TLS with postgres at {address} failed: {e}; check the link's sslMode (now {})",
                serde_json::to_value(self.target.ssl_mode)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            sqlx::Error::PoolTimedOut => format!(
                "no connection to postgres at {address} within {}s; check the host, port and \
                 NetworkPolicy",
                ACQUIRE_BUDGET.as_secs()
            ),
            sqlx::Error::PoolClosed => format!("the connections of link {link} were closed"),
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                match code.as_str() {
                    // invalid_password, invalid_authorization_specification (unknown role,
                    // pg_hba refusal): PostgreSQL's text names the user, so it is left out.
                    "28P01" | "28000" => format!(
                        "authentication failed for link {link}: check the credentials in its \
                         Secret"
                    ),
                    "3D000" => format!(
                        "database {} does not exist on postgres at {address}; check the link's \
                         database",
                        self.target.database
                    ),
                    "57014" if db.message().contains("statement timeout") => format!(
                        "the statement was cancelled by the call's timeout of {} \
                         (statement_timeout): narrow the query with WHERE or LIMIT, or ask for \
                         a longer timeout (spec.limits.timeoutSeconds)",
                        human(statement_timeout)
                    ),
                    "55P03" if db.message().contains("lock timeout") => format!(
                        "a table this statement reads is locked by another session, and reads \
                         wait at most {} for a lock (lock_timeout); try again shortly, or look \
                         for the holder in pg_locks",
                        human(READ_LOCK_TIMEOUT.min(statement_timeout))
                    ),
                    "25006" => format!(
                        "{} (SQLSTATE 25006): this tool runs in a READ ONLY transaction; changing \
                         data needs the link's execute tool, served only with writeAccess",
                        db.message()
                    ),
                    "53300" | "57P01" | "57P02" | "57P03" => format!(
                        "postgres at {address} cannot serve now: {} (SQLSTATE {code}); try again \
                         shortly",
                        db.message()
                    ),
                    _ => statement_error(db.as_ref(), &code),
                }
            }
            sqlx::Error::Protocol(message) => {
                format!("protocol error with postgres at {address}: {message}")
            }
            other => format!("postgres at {address}: {other}"),
        }
    }
}

/// PostgreSQL's own error: message, SQLSTATE, detail, hint and position.
fn statement_error(db: &dyn sqlx::error::DatabaseError, code: &str) -> String {
    let mut out = format!("{} (SQLSTATE {code})", db.message());
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        if let Some(sqlx::postgres::PgErrorPosition::Original(position)) = pg.position() {
            out.push_str(&format!(" at character {position}"));
        }
        if let Some(detail) = pg.detail() {
            out.push_str(&format!("\nDETAIL: {detail}"));
        }
        if let Some(hint) = pg.hint() {
            out.push_str(&format!("\nHINT: {hint}"));
        }
    }
    out
}

/// `1s`, `1.5s`, `250ms`.
pub(crate) fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() > 0 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A pooled connection inside one transaction. [`Session::end`] ends the transaction and
/// returns the connection to the pool; dropped without it (a call abandoned mid-stream, a
/// result cut early), the connection is closed rather than drained of the rest of a result.
pub(crate) struct Session {
    conn: PoolConnection<Postgres>,
    ended: bool,
    /// How to stop the backend's statement if the session is dropped mid-statement.
    cancel: Option<Canceller>,
}

/// Cancels the statement of one backend from a connection of its own (the pool's may all be
/// busy): `pg_cancel_backend(pid)`.
struct Canceller {
    options: PgConnectOptions,
    pid: i32,
}

impl Canceller {
    /// Sends the cancel in the background; dropping happens in synchronous code.
    fn spawn(self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let cancel = async {
                let mut conn = PgConnection::connect_with(&self.options).await?;
                sqlx::query("SELECT pg_cancel_backend($1)")
                    .bind(self.pid)
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            };
            match tokio::time::timeout(PROBE_BUDGET, cancel).await {
                Ok(Ok(())) => tracing::debug!(pid = self.pid, "cancelled an abandoned statement"),
                Ok(Err(err)) => tracing::warn!(pid = self.pid, error = %err, "could not cancel an abandoned statement"),
                Err(_) => tracing::warn!(pid = self.pid, "cancelling an abandoned statement timed out"),
            }
        });
    }
}

impl Session {
    /// The connection, inside the transaction.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Ends the transaction: `COMMIT` or `ROLLBACK`, and returns the connection to the pool.
    /// A failed commit is returned (PostgreSQL has rolled the transaction back); a connection
    /// that could not end its transaction is closed.
    pub(crate) async fn end(mut self, commit: bool) -> Result<(), sqlx::Error> {
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        let result = self.conn.execute(sql).await.map(drop);
        self.ended = result.is_ok() || commit;
        result
    }

    /// Closes the connection without reading the rest of a result (the server stops sending
    /// when the socket goes); the server rolls the transaction back.
    pub(crate) fn abandon(self) {
        drop(self);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.ended {
            self.conn.close_on_drop();
            if let Some(cancel) = self.cancel.take() {
                cancel.spawn();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_secs(1)), "1s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn every_ssl_mode_maps() {
        assert!(matches!(ssl_mode(SslMode::Disable), PgSslMode::Disable));
        assert!(matches!(ssl_mode(SslMode::Prefer), PgSslMode::Prefer));
        assert!(matches!(
            ssl_mode(SslMode::VerifyFull),
            PgSslMode::VerifyFull
        ));
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let mut t = Target {
            link: "db".into(),
            host: "::1".into(),
            port: 5432,
            database: "app".into(),
            ssl_mode: SslMode::Disable,
        };
        assert_eq!(t.address(), "[::1]:5432");
        t.host = "db.data.svc".into();
        assert_eq!(t.address(), "db.data.svc:5432");
    }
}
