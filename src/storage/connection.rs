//! Connections: one binary for SQLite and PostgreSQL, the backend picked from the URL.
//!
//! `DbConnection` is a Diesel `MultiConnection`; queries that compile for both backends are
//! written once inside [`with_conn!`], which expands to one arm per backend.

use super::StorageError;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection of either backend.
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::storage::connection::DbConnection::Sqlite($c) => $body,
            $crate::storage::connection::DbConnection::Postgres($c) => $body,
        }
    };
}
pub(crate) use with_conn;

/// The PostgreSQL advisory lock key nodes hold while they migrate ("PeerLink" in ASCII).
const MIGRATION_LOCK: i64 = 0x5065_6572_4c69_6e6b;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A file path.
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    /// Reads `postgres://…`, `postgresql://…`, `sqlite://PATH`, `sqlite:PATH` or a bare path.
    pub fn parse(raw: &str) -> Result<DatabaseUrl, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("is empty".into());
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(raw.to_owned()));
        }
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("names no SQLite file (use sqlite://PATH)".into());
            }
            return Ok(DatabaseUrl::Sqlite(path.to_owned()));
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            return Err(format!("has the unsupported scheme {scheme:?} (use a SQLite path, sqlite://PATH or postgres://…)"));
        }
        Ok(DatabaseUrl::Sqlite(raw.to_owned()))
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{path}"),
            DatabaseUrl::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme_end), Some(at)) if at > scheme_end => {
                    let credentials = &url[scheme_end + 3..at];
                    let user = credentials.split(':').next().unwrap_or_default();
                    format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
                }
                _ => url.clone(),
            },
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

/// How hard SQLite syncs a commit to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    /// Survives a crash of the node process (`kill -9`), not of the machine.
    Normal,
    /// Also survives power loss: each commit waits for the disk.
    Full,
}

/// Opens one connection and prepares it for use.
pub fn establish(url: &DatabaseUrl, sync: SqliteSync) -> Result<DbConnection, StorageError> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn = SqliteConnection::establish(path)
                .map_err(|e| StorageError::Connect(e.to_string()))?;
            let sync = match sync {
                SqliteSync::Normal => "NORMAL",
                SqliteSync::Full => "FULL",
            };
            // busy_timeout first: it makes a second writer (identity creation beside the
            // group-commit thread) wait instead of failing, and covers the pragmas after it.
            // WAL (set once per file, in `open_pool`) lets readers run beside the writer.
            conn.batch_execute(&format!("PRAGMA busy_timeout = 5000; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"))
            .map_err(|e| StorageError::Connect(e.to_string()))?;
            Ok(DbConnection::Sqlite(conn))
        }
        DatabaseUrl::Postgres(url) => PgConnection::establish(url)
            .map(DbConnection::Postgres)
            .map_err(|e| StorageError::Connect(e.to_string())),
    }
}

/// An r2d2 manager that knows which backend its URL names.
pub struct Manager {
    url: DatabaseUrl,
    sync: SqliteSync,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = StorageError;

    fn connect(&self) -> Result<DbConnection, StorageError> {
        establish(&self.url, self.sync)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), StorageError> {
        conn.batch_execute("SELECT 1").map_err(StorageError::from)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

pub type Pool = r2d2::Pool<Manager>;

/// Opens a pool of `size` connections; fails if the first cannot be made.
pub fn open_pool(url: &DatabaseUrl, sync: SqliteSync, size: u32) -> Result<Pool, StorageError> {
    if let DbConnection::Sqlite(mut conn) = establish(url, sync)? {
        // The journal mode is a property of the file; set it once, before the pool's
        // connections race to do it.
        conn.batch_execute("PRAGMA journal_mode = WAL;")
            .map_err(|e| StorageError::Connect(e.to_string()))?;
    }
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(Manager {
            url: url.clone(),
            sync,
        })
        .map_err(|e| StorageError::Connect(e.to_string()))
}

/// Applies every pending migration of the connection's backend; returns their versions.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, StorageError> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        DbConnection::Postgres(c) => {
            // Nodes of a cluster start together on one database: one migrates at a time,
            // and the others then find nothing pending.
            use diesel::RunQueryDsl;
            let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
            diesel::sql_query(lock).execute(c).map_err(|e| {
                StorageError::Migration(format!("cannot take the migration lock: {e}"))
            })?;
            let applied = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>());
            let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
            if let Err(e) = diesel::sql_query(unlock).execute(c) {
                log::warn!(
                    "could not release the migration lock (it goes with the connection): {e}"
                );
            }
            return applied.map_err(|e| StorageError::Migration(e.to_string()));
        }
    };
    applied
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| StorageError::Migration(e.to_string()))
}

/// Reverts every applied migration (for tests and for operators starting over).
pub fn revert_all(conn: &mut DbConnection) -> Result<Vec<String>, StorageError> {
    let reverted = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS),
        DbConnection::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS),
    };
    reverted
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| StorageError::Migration(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@127.0.0.1/db"),
            Ok(DatabaseUrl::Postgres("postgres://u:p@127.0.0.1/db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/x.db"),
            Ok(DatabaseUrl::Sqlite("data/x.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("/var/lib/x.db"),
            Ok(DatabaseUrl::Sqlite("/var/lib/x.db".into()))
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("  ").is_err());
    }

    #[test]
    fn passwords_never_reach_the_log() {
        let url = DatabaseUrl::parse("postgres://peer:s3cret@127.0.0.1:5432/pl").unwrap();
        assert_eq!(url.redacted(), "postgres://peer:***@127.0.0.1:5432/pl");
        assert!(!url.redacted().contains("s3cret"));
    }
}
