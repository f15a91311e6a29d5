//! SQLite persistence: tokens plus a `meta` table holding the signing key and the bootstrap
//! token's uuid, so a file database keeps both across restarts.
//!
//! One connection behind a `std::sync::Mutex`: every statement takes microseconds, so
//! holding the lock inside async handlers is cheaper than a hop to `spawn_blocking`.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rand::RngCore as _;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::data::{RESERVED_NAME, USERS};
use super::jwt;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid    TEXT    NOT NULL UNIQUE,
    user_id INTEGER NOT NULL,
    name    TEXT    NOT NULL,
    expires INTEGER NULL,      -- unix seconds, NULL = never
    token   TEXT    NOT NULL   -- the full JWT, so nothing needs re-signing
);
CREATE INDEX IF NOT EXISTS tokens_user_id ON tokens(user_id);
";

pub(crate) const BOOTSTRAP_NAME: &str = "sandbox-bootstrap";

/// One row of `tokens`.
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub id: i64,
    pub uuid: String,
    pub user_id: i64,
    pub name: String,
    /// Unix seconds; `None` = never expires.
    pub expires: Option<i64>,
    pub token: String,
}

impl TokenRow {
    pub(crate) fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|at| at <= now.timestamp())
    }
}

pub(crate) struct Store {
    conn: Mutex<Connection>,
    key: Vec<u8>,
}

impl Store {
    /// Opens (and on first use initialises) the database. `file` is `None` for in-memory.
    pub(crate) fn open(file: Option<&std::path::Path>) -> rusqlite::Result<(Store, String)> {
        let conn = match file {
            Some(path) => {
                let conn = Connection::open(path)?;
                // WAL lets a second process (e.g. sqlite3 for debugging) read while we write.
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(SCHEMA)?;
        let key = load_or_create_key(&conn)?;
        let store = Store {
            conn: Mutex::new(conn),
            key,
        };
        for user in USERS {
            store.seed_system_token(user.id)?;
        }
        let bootstrap = store.bootstrap()?;
        Ok((store, bootstrap))
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent, so ignore poisoning.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a token and returns its row (with the full value).
    pub(crate) fn insert(
        &self,
        user_id: i64,
        name: &str,
        expires: Option<DateTime<Utc>>,
    ) -> rusqlite::Result<TokenRow> {
        let uuid = uuid::Uuid::new_v4().to_string();
        let token = jwt::encode(&self.key, &uuid, expires);
        let expires = expires.map(|at| at.timestamp());
        let conn = self.conn();
        conn.execute(
            "INSERT INTO tokens (uuid, user_id, name, expires, token) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![uuid, user_id, name, expires, token],
        )?;
        Ok(TokenRow {
            id: conn.last_insert_rowid(),
            uuid,
            user_id,
            name: name.to_owned(),
            expires,
            token,
        })
    }

    /// Creates many tokens in one transaction (the control API's seeding): `expires_in(i)` gives
    /// the i-th token's lifetime in seconds, `None` for never. Returns how many were created.
    pub(crate) fn insert_many(
        &self,
        user_id: i64,
        names: impl Iterator<Item = String>,
        now: DateTime<Utc>,
        expires_in: impl Fn(usize) -> Option<i64>,
    ) -> rusqlite::Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut created = 0;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO tokens (uuid, user_id, name, expires, token) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (i, name) in names.enumerate() {
                let uuid = uuid::Uuid::new_v4().to_string();
                let expires = expires_in(i)
                    .and_then(|secs| now.checked_add_signed(chrono::Duration::seconds(secs)))
                    .and_then(|at| DateTime::from_timestamp(at.timestamp(), 0));
                let token = jwt::encode(&self.key, &uuid, expires);
                stmt.execute(params![
                    uuid,
                    user_id,
                    name,
                    expires.map(|at| at.timestamp()),
                    token
                ])?;
                created += 1;
            }
        }
        tx.commit()?;
        Ok(created)
    }

    /// The user's tokens in creation order, without the platform's own `elitea-system` token.
    pub(crate) fn list(&self, user_id: i64) -> rusqlite::Result<Vec<TokenRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, uuid, user_id, name, expires, token FROM tokens
             WHERE user_id = ?1 AND name <> ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![user_id, RESERVED_NAME], row_to_token)?;
        rows.collect()
    }

    pub(crate) fn get(&self, uuid: &str) -> rusqlite::Result<Option<TokenRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, uuid, user_id, name, expires, token FROM tokens WHERE uuid = ?1")?;
        stmt.query_row(params![uuid], row_to_token).optional()
    }

    pub(crate) fn delete(&self, uuid: &str) -> rusqlite::Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM tokens WHERE uuid = ?1", params![uuid])?;
        Ok(n > 0)
    }

    fn seed_system_token(&self, user_id: i64) -> rusqlite::Result<()> {
        let exists: bool = self.conn().query_row(
            "SELECT EXISTS(SELECT 1 FROM tokens WHERE user_id = ?1 AND name = ?2)",
            params![user_id, RESERVED_NAME],
            |row| row.get(0),
        )?;
        if !exists {
            self.insert(user_id, RESERVED_NAME, None)?;
        }
        Ok(())
    }

    /// The never-expiring token printed at start-up: created once per database and reused,
    /// re-created only if someone deleted it.
    fn bootstrap(&self) -> rusqlite::Result<String> {
        let uuid: Option<String> = self
            .conn()
            .query_row(
                "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'bootstrap_uuid'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(row) = uuid.map(|u| self.get(&u)).transpose()?.flatten() {
            return Ok(row.token);
        }
        let row = self.insert(USERS[0].id, BOOTSTRAP_NAME, None)?;
        self.conn().execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('bootstrap_uuid', ?1)",
            params![row.uuid],
        )?;
        Ok(row.token)
    }
}

fn load_or_create_key(conn: &Connection) -> rusqlite::Result<Vec<u8>> {
    let existing: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'signing_key'", [], |row| {
            row.get(0)
        })
        .optional()?;
    if let Some(key) = existing {
        return Ok(key);
    }
    // 64 bytes: as long as the HS512 output, more is no stronger.
    let mut key = vec![0u8; 64];
    rand::rng().fill_bytes(&mut key);
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('signing_key', ?1)",
        params![key],
    )?;
    Ok(key)
}

fn row_to_token(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: row.get(0)?,
        uuid: row.get(1)?,
        user_id: row.get(2)?,
        name: row.get(3)?,
        expires: row.get(4)?,
        token: row.get(5)?,
    })
}
