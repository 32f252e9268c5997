//! The node's one connection to Redis, and the errors every cluster call can return.
//!
//! `Link` holds a multiplexed connection shared by membership, the directory and
//! presence. A command that fails in a way that leaves the connection unusable (I/O
//! error, dropped connection, no reply in time) drops it; only the membership task
//! reconnects, with backoff, so that it alone sees every reconnect and can check
//! whether the server it reached is still the one it registered with (`run_id`).
//! Callers never wait for a reconnect: while the link is down they get
//! [`ClusterError::Unavailable`] at once.
//!
//! It must never retry a command itself: a script that may have run is not safe to
//! repeat blindly, so that decision stays with the caller.

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, RedisError, RedisResult, ScriptInvocation,
};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What a cluster call can fail with. Callers branch on the first three.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    /// Redis cannot be reached right now; the membership task is reconnecting.
    #[error("redis is unreachable; the cluster link is reconnecting")]
    Unavailable,
    /// This node incarnation was declared dead by another node: it must leave, and
    /// start again with a new incarnation.
    #[error("this node incarnation was declared dead and must leave the cluster")]
    Evicted,
    /// This incarnation's alive key has lapsed; the next heartbeat registers it again.
    #[error("this node is not registered right now; retry after the next heartbeat")]
    NotRegistered,
    /// The timings make no sense (for example a death bound shorter than two beats).
    #[error("invalid cluster timings: {0}")]
    Timings(String),
    /// Redis answered with something this code does not understand.
    #[error("unexpected answer from redis: {0}")]
    Protocol(String),
    /// Redis refused a command (a script error, out of memory, a wrong type).
    #[error("redis error: {0}")]
    Redis(String),
}

/// The shared connection and how often it has been replaced.
pub(crate) struct Link {
    client: redis::Client,
    config: AsyncConnectionConfig,
    state: Mutex<LinkState>,
}

struct LinkState {
    /// `None` while the link is down.
    connection: Option<MultiplexedConnection>,
    /// Bumped on every new connection, so that a failure seen on an old connection
    /// does not drop a newer one.
    generation: u64,
}

impl Link {
    /// Connects once; an unreachable Redis at start is an error for the caller.
    ///
    /// `reply_timeout` bounds every command and every connection attempt: a reply that
    /// slow is treated as a broken link rather than waited for.
    pub(crate) async fn open(
        client: redis::Client,
        reply_timeout: Duration,
    ) -> Result<Link, ClusterError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(reply_timeout)
            .set_response_timeout(reply_timeout);
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| classify(&e))?;
        Ok(Link {
            client,
            config,
            state: Mutex::new(LinkState {
                connection: Some(connection),
                generation: 1,
            }),
        })
    }

    pub(crate) fn is_up(&self) -> bool {
        self.lock().connection.is_some()
    }

    /// Replaces a lost connection. Called by the membership task only.
    pub(crate) async fn reconnect(&self) -> Result<(), ClusterError> {
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(|e| classify(&e))?;
        let mut state = self.lock();
        state.connection = Some(connection);
        state.generation += 1;
        Ok(())
    }

    /// Runs a script on the current connection.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, ClusterError> {
        let (mut connection, generation) = self.current()?;
        let result = invocation.invoke_async(&mut connection).await;
        self.settle(generation, result)
    }

    /// Runs one command on the current connection.
    pub(crate) async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, ClusterError> {
        let (mut connection, generation) = self.current()?;
        let result = command.query_async(&mut connection).await;
        self.settle(generation, result)
    }

    /// The server's `run_id`, which changes on every restart of redis-server.
    pub(crate) async fn run_id(&self) -> Result<String, ClusterError> {
        let info: String = self.query(redis::cmd("INFO").arg("server")).await?;
        info.lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .map(|id| id.trim().to_owned())
            .ok_or_else(|| ClusterError::Protocol("INFO server has no run_id".to_owned()))
    }

    fn current(&self) -> Result<(MultiplexedConnection, u64), ClusterError> {
        let state = self.lock();
        match &state.connection {
            Some(connection) => Ok((connection.clone(), state.generation)),
            None => Err(ClusterError::Unavailable),
        }
    }

    /// Maps a command's result, dropping the connection it ran on if the failure
    /// means that connection can no longer be trusted.
    fn settle<T>(&self, generation: u64, result: RedisResult<T>) -> Result<T, ClusterError> {
        let error = match result {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let classified = classify(&error);
        if classified == ClusterError::Unavailable {
            let mut state = self.lock();
            if state.generation == generation {
                state.connection = None;
            }
        }
        Err(classified)
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        // The state is two plain fields written together; a panic elsewhere cannot
        // leave it half-written, so a poisoned lock is still good to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether an error means "the link is gone" or "redis said no".
fn classify(error: &RedisError) -> ClusterError {
    let link_lost = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error();
    if link_lost {
        ClusterError::Unavailable
    } else {
        ClusterError::Redis(error.to_string())
    }
}
