//! Sign-in sessions of the UI, when the server has an API token.
//!
//! A session id is 32 random bytes, sent to the browser as the session cookie and stored only
//! as its SHA-256, so that what the store holds cannot be replayed as a cookie. A session ends
//! after [`IDLE_LIFETIME`] without a request, after [`ABSOLUTE_LIFETIME`] in any case, when
//! its person signs out (the id is deleted: a copy of the cookie no longer works), and when
//! the server's API token changes (each session remembers a digest of the token it was opened
//! with).
//!
//! On PostgreSQL the sessions are in the `ui_sessions` table, so every replica knows every
//! session and signing out ends it everywhere; in memory they belong to the one process and
//! end with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// A session unused for this long has ended.
pub const IDLE_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after sign-in, used or not.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// On PostgreSQL, a session's last use is written at most this often: not on every request.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Where sessions are kept.
#[derive(Clone)]
pub enum SessionStore {
    Memory(Arc<MemorySessions>),
    Postgres(PgPool),
}

/// The sessions of this process, by the digest of their id.
#[derive(Default)]
pub struct MemorySessions(Mutex<HashMap<String, MemorySession>>);

struct MemorySession {
    token: String,
    created: Instant,
    last_seen: Instant,
}

impl MemorySession {
    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.last_seen) < IDLE_LIFETIME
            && now.duration_since(self.created) < ABSOLUTE_LIFETIME
    }
}

impl MemorySessions {
    fn open(&self, id_digest: String, token: &str, now: Instant) {
        let mut sessions = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.retain(|_, session| session.alive(now));
        sessions.insert(
            id_digest,
            MemorySession {
                token: token.to_owned(),
                created: now,
                last_seen: now,
            },
        );
    }

    fn is_open(&self, id_digest: &str, token: &str, now: Instant) -> bool {
        let mut sessions = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match sessions.get_mut(id_digest) {
            Some(session) if session.token == token && session.alive(now) => {
                session.last_seen = now;
                true
            }
            _ => false,
        }
    }

    fn close(&self, id_digest: &str) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(id_digest);
    }
}

/// A storage failure, for the log; the person gets a 503.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl From<sqlx::Error> for Unavailable {
    fn from(error: sqlx::Error) -> Self {
        Unavailable(error.to_string())
    }
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What the store keeps of the API token a session was opened with.
pub fn token_digest(token: &str) -> String {
    digest(&format!("sneakpeek-session-token:{token}"))
}

/// Whether `id` has the shape of a session id: 64 lowercase hexadecimal digits.
fn well_formed(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

impl SessionStore {
    pub fn in_memory() -> Self {
        SessionStore::Memory(Arc::default())
    }

    /// Opens a session for the holder of the token whose [`token_digest`] is `token`; returns
    /// its id, the cookie's value.
    pub async fn open(&self, token: &str) -> Result<String, Unavailable> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|error| Unavailable(format!("no randomness for a session id: {error}")))?;
        let id: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        match self {
            SessionStore::Memory(sessions) => sessions.open(digest(&id), token, Instant::now()),
            SessionStore::Postgres(pool) => {
                // Sign-ins are rare: the moment to forget ended sessions.
                sqlx::query("DELETE FROM ui_sessions WHERE last_seen_at <= now() - make_interval(secs => $1) OR created_at <= now() - make_interval(secs => $2)")
                    .bind(IDLE_LIFETIME.as_secs_f64())
                    .bind(ABSOLUTE_LIFETIME.as_secs_f64())
                    .execute(pool)
                    .await?;
                sqlx::query("INSERT INTO ui_sessions (id_digest, token_digest) VALUES ($1, $2)")
                    .bind(digest(&id))
                    .bind(token)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(id)
    }

    /// Whether `id` is a session opened with `token` (a [`token_digest`]) that has not ended;
    /// counts as a use of it.
    pub async fn is_open(&self, id: &str, token: &str) -> Result<bool, Unavailable> {
        if !well_formed(id) {
            return Ok(false);
        }
        match self {
            SessionStore::Memory(sessions) => {
                Ok(sessions.is_open(&digest(id), token, Instant::now()))
            }
            SessionStore::Postgres(pool) => {
                let open: i64 = sqlx::query_scalar(
                    "WITH open AS (
                         SELECT id_digest, last_seen_at FROM ui_sessions
                         WHERE id_digest = $1 AND token_digest = $2
                           AND last_seen_at > now() - make_interval(secs => $3)
                           AND created_at > now() - make_interval(secs => $4)
                     ), touched AS (
                         UPDATE ui_sessions SET last_seen_at = now() FROM open
                         WHERE ui_sessions.id_digest = open.id_digest AND open.last_seen_at < now() - make_interval(secs => $5)
                     )
                     SELECT count(*) FROM open",
                )
                .bind(digest(id))
                .bind(token)
                .bind(IDLE_LIFETIME.as_secs_f64())
                .bind(ABSOLUTE_LIFETIME.as_secs_f64())
                .bind(TOUCH_EVERY.as_secs_f64())
                .fetch_one(pool)
                .await?;
                Ok(open > 0)
            }
        }
    }

    /// Ends the session `id`, if there is one.
    pub async fn close(&self, id: &str) -> Result<(), Unavailable> {
        match self {
            SessionStore::Memory(sessions) => sessions.close(&digest(id)),
            SessionStore::Postgres(pool) => {
                sqlx::query("DELETE FROM ui_sessions WHERE id_digest = $1")
                    .bind(digest(id))
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use engine::testing::TestDatabase;

    use super::*;

    /// What every store does, whatever it is kept in.
    async fn opens_checks_and_closes(store: &SessionStore) {
        let token = token_digest("s3cret token");
        let first = store.open(&token).await.unwrap();
        let second = store.open(&token).await.unwrap();
        assert_ne!(first, second);
        assert!(well_formed(&first), "{first}");
        assert!(store.is_open(&first, &token).await.unwrap());
        assert!(
            !store
                .is_open(&first, &token_digest("another token"))
                .await
                .unwrap(),
            "a new token ends the sessions"
        );
        assert!(
            !store.is_open(&digest(&first), &token).await.unwrap(),
            "what the store holds is no cookie"
        );
        assert!(!store.is_open("not a session", &token).await.unwrap());
        store.close(&first).await.unwrap();
        assert!(!store.is_open(&first, &token).await.unwrap());
        assert!(store.is_open(&second, &token).await.unwrap());
    }

    #[tokio::test]
    async fn in_memory() {
        opens_checks_and_closes(&SessionStore::in_memory()).await;
    }

    #[tokio::test]
    async fn on_postgresql() {
        let database = TestDatabase::create().await;
        let pool = PgPool::connect(&database.url).await.unwrap();
        engine::storage::postgres::MIGRATOR
            .run(&pool)
            .await
            .unwrap();
        opens_checks_and_closes(&SessionStore::Postgres(pool.clone())).await;
    }

    #[test]
    fn in_memory_sessions_end_when_idle_and_after_their_absolute_lifetime() {
        let sessions = MemorySessions::default();
        let signed_in = Instant::now();
        sessions.open("idle".to_owned(), "token", signed_in);
        sessions.open("used".to_owned(), "token", signed_in);
        let step = IDLE_LIFETIME / 2;
        let steps = (ABSOLUTE_LIFETIME.as_secs() / step.as_secs()) as u32;
        assert!(sessions.is_open(
            "idle",
            "token",
            signed_in + IDLE_LIFETIME - Duration::from_secs(1)
        ));
        for n in 1..steps {
            assert!(
                sessions.is_open("used", "token", signed_in + step * n),
                "used every 6 hours, {n} steps"
            );
        }
        assert!(
            !sessions.is_open("idle", "token", signed_in + IDLE_LIFETIME * 2),
            "unused for 12 hours"
        );
        assert!(
            !sessions.is_open("used", "token", signed_in + ABSOLUTE_LIFETIME),
            "7 days after sign-in, used or not"
        );
    }

    #[tokio::test]
    async fn on_postgresql_sessions_end_when_idle_and_after_their_absolute_lifetime() {
        let database = TestDatabase::create().await;
        let pool = PgPool::connect(&database.url).await.unwrap();
        engine::storage::postgres::MIGRATOR
            .run(&pool)
            .await
            .unwrap();
        let store = SessionStore::Postgres(pool.clone());
        let token = token_digest("s3cret token");
        let idle = store.open(&token).await.unwrap();
        let old = store.open(&token).await.unwrap();
        let fresh = store.open(&token).await.unwrap();
        for (id, column, hours) in [
            (&idle, "last_seen_at", 13),
            (&old, "created_at", 7 * 24 + 1),
            (&fresh, "last_seen_at", 2),
        ] {
            let statement = format!("UPDATE ui_sessions SET {column} = now() - make_interval(hours => $2) WHERE id_digest = $1");
            sqlx::query(&statement)
                .bind(digest(id))
                .bind(hours)
                .execute(&pool)
                .await
                .unwrap();
        }
        assert!(
            !store.is_open(&idle, &token).await.unwrap(),
            "unused for 13 hours"
        );
        assert!(
            !store.is_open(&old, &token).await.unwrap(),
            "signed in 7 days ago"
        );
        assert!(store.is_open(&fresh, &token).await.unwrap());
        let last_seen: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now() - last_seen_at)::float8 FROM ui_sessions WHERE id_digest = $1").bind(digest(&fresh)).fetch_one(&pool).await.unwrap();
        assert!(last_seen < 60.0, "a use is recorded: {last_seen}");
        store.open(&token).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM ui_sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(left, 2, "ended sessions are deleted at the next sign-in");
    }
}
