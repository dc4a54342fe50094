//! The [`Authenticator`]: turns presented credentials into a [`Principal`]. It keeps every
//! key's role and revocation state in memory, re-read from PostgreSQL every
//! `auth.key_refresh_secs`, so checking a token costs no database round trip and a key
//! revoked by any process stops working everywhere within that interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::hashing::{Presented, Verifier};
use super::keys::{self, StoredKey};
use super::token::{Issued, TokenCodec};
use super::{AuthError, Principal, Role};
use crate::config::AuthSettings;
use crate::models::key_scope::KeyScope;
use crate::telemetry::names;

/// How long a key presented directly (`X-API-Key`) stays verified without rehashing, from its
/// last use.
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// Most directly-presented keys remembered as verified.
const VERIFIED_MAX: usize = 10_000;
/// How long a presented key that failed its check is refused without another one.
const FAILED_TTL: Duration = Duration::from_secs(60);
/// Most failed keys remembered.
const FAILED_MAX: usize = 4_096;
/// Revocations buffered for a slow listener before it is told it lagged.
const REVOCATION_BUFFER: usize = 256;

#[derive(Debug, Clone)]
struct KeyState {
    role: Role,
    revoked: bool,
    /// The key whose producer this one speaks as, when not itself.
    speaks_as: Option<Arc<str>>,
    /// What it may send, when limited.
    scope: Option<Arc<KeyScope>>,
}

impl From<keys::Standing> for KeyState {
    fn from(s: keys::Standing) -> Self {
        KeyState::new(s.role, s.revoked, s.speaks_as, s.scope)
    }
}

impl KeyState {
    fn new(role: Role, revoked: bool, speaks_as: Option<String>, scope: Option<KeyScope>) -> Self {
        KeyState {
            role,
            revoked,
            speaks_as: speaks_as.map(Arc::from),
            scope: scope.map(Arc::new),
        }
    }

    /// The caller this key is, presented as `id`.
    fn principal(self, id: &str, expires_at: Option<chrono::DateTime<Utc>>) -> Principal {
        Principal {
            producer: Some(self.speaks_as.unwrap_or_else(|| id.into())),
            key_id: Some(id.into()),
            role: self.role,
            scope: self.scope,
            expires_at,
        }
    }
}

/// The SHA-256 a presented key is remembered by.
fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The latest changes made in this process, numbered.
#[derive(Debug, Default)]
struct LocalChanges {
    count: u64,
    /// The last [`LOCAL_CHANGES_KEPT`] changes: their number and key.
    recent: std::collections::VecDeque<(u64, String)>,
}

/// Changes made here that a refresh can tell apart; more during one read and it starts over.
const LOCAL_CHANGES_KEPT: usize = 1_024;

impl LocalChanges {
    fn record(&mut self, id: &str) {
        self.count += 1;
        if self.recent.len() == LOCAL_CHANGES_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back((self.count, id.to_string()));
    }

    /// The keys changed after change `since`; `None` when more changed than are kept.
    fn since(&self, since: u64) -> Option<std::collections::HashSet<&str>> {
        let kept_from = self.recent.front().map_or(self.count + 1, |(n, _)| *n);
        if self.count > since && kept_from > since + 1 {
            return None;
        }
        Some(
            self.recent
                .iter()
                .filter(|(n, _)| *n > since)
                .map(|(_, id)| id.as_str())
                .collect(),
        )
    }
}

/// See the module documentation.
pub struct Authenticator {
    codec: TokenCodec,
    pool: Pool,
    keys: RwLock<HashMap<String, KeyState>>,
    /// Changes made here at once (a revocation, a new scope), recorded under the `keys` lock: a
    /// read of the database that began before one would put back what the change replaced.
    changed_here: Mutex<LocalChanges>,
    verified: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    /// Presented keys that failed lately (by SHA-256): a client repeating one pays no check.
    failed: Mutex<HashMap<[u8; 32], Instant>>,
    /// Keys being checked now (by SHA-256): a client opening many connections with one key
    /// pays one check, and its requests do not fill the network's share of the queue.
    checking: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    verifier: Verifier,
    refresh_every: Duration,
    /// Ids of keys as they are found revoked, here or by another process.
    revocations: broadcast::Sender<Arc<str>>,
    /// The hash checked when a presented key's id is unknown (of a secret nobody has).
    decoy_hash: String,
}

/// A request's place among those checking one key; the last to leave forgets the key.
struct OneCheck<'a> {
    gate: Arc<tokio::sync::Mutex<()>>,
    digest: [u8; 32],
    checking: &'a Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
}

impl Drop for OneCheck<'_> {
    fn drop(&mut self) {
        let mut checking = self.checking.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's and this one's: nobody else waits for the key.
        if Arc::strong_count(&self.gate) <= 2 {
            checking.remove(&self.digest);
        }
    }
}

impl Authenticator {
    /// An authenticator for `settings` (the secret must be set and long enough).
    pub fn new(settings: &AuthSettings, pool: Pool) -> anyhow::Result<Arc<Authenticator>> {
        let codec = TokenCodec::new(
            settings.jwt_secret.expose(),
            &settings.issuer,
            settings.token_ttl_secs,
        )?;
        Ok(Arc::new(Authenticator {
            codec,
            pool,
            keys: RwLock::new(HashMap::new()),
            changed_here: Mutex::new(LocalChanges::default()),
            verified: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            checking: Mutex::new(HashMap::new()),
            verifier: Verifier::start()?,
            refresh_every: Duration::from_secs(settings.key_refresh_secs.max(1)),
            revocations: broadcast::channel(REVOCATION_BUFFER).0,
            decoy_hash: keys::hash_secret(&uuid::Uuid::new_v4().simple().to_string())?,
        }))
    }

    /// Re-reads every key's role and revocation state.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let changes_before = self.local_changes().count;
        let client = self.pool.get().await?;
        let mut fresh: HashMap<String, KeyState> = crate::db::keys::states(&**client)
            .await?
            .into_iter()
            .map(|k| (k.id, KeyState::from(k.standing)))
            .collect();
        metrics::gauge!(names::AUTH_ACTIVE_KEYS)
            .set(fresh.values().filter(|k| !k.revoked).count() as f64);
        let newly_revoked: Vec<String> = {
            let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
            let local = self.local_changes();
            // What was read may predate a change made here since: those keys keep their state
            // here, and no key is ever revoked and then not.
            let Some(changed) = local.since(changes_before) else {
                return Ok(());
            };
            for (id, state) in fresh.iter_mut() {
                if let Some(old) = keys.get(id) {
                    state.revoked |= old.revoked;
                    if changed.contains(id.as_str()) {
                        state.scope = old.scope.clone();
                    }
                }
            }
            drop(local);
            let newly = fresh
                .iter()
                .filter(|(id, k)| k.revoked && keys.get(*id).is_none_or(|old| !old.revoked))
                .map(|(id, _)| id.clone())
                .collect();
            *keys = fresh;
            newly
        };
        for id in newly_revoked {
            let _ = self.revocations.send(id.into());
        }
        Ok(())
    }

    /// Ids of keys as they are found revoked from now on, by this process or another: what
    /// must end the sessions opened with them.
    pub fn revocations(&self) -> broadcast::Receiver<Arc<str>> {
        self.revocations.subscribe()
    }

    /// Whether key `id` is known to be revoked (here at once, by another process within
    /// `auth.key_refresh_secs`): what ends a long answer started with it.
    pub fn is_revoked(&self, id: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .is_some_and(|k| k.revoked)
    }

    /// Every key known to be revoked (for a listener that lagged behind [`Self::revocations`]).
    pub fn revoked_ids(&self) -> Vec<Arc<str>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, k)| k.revoked)
            .map(|(id, _)| Arc::from(id.as_str()))
            .collect()
    }

    /// Refreshes the key states every `auth.key_refresh_secs` until aborted.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.refresh_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.refresh().await {
                    tracing::warn!(error = %format_args!("{e:#}"), "could not refresh API key states; keeping the last ones");
                }
            }
        })
    }

    /// Marks key `id` revoked here at once (the database already says so) and tells the
    /// listeners.
    pub fn revoked(&self, id: &str) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        self.local_changes().record(id);
        if let Some(state) = keys.get_mut(id) {
            state.revoked = true;
        }
        drop(keys);
        let _ = self.revocations.send(id.into());
    }

    /// What key `id` may send, as last read; `None` when it may send anything or is unknown.
    pub fn scope_of(&self, id: &str) -> Option<KeyScope> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.get(id)?.scope.as_deref().cloned()
    }

    /// Gives key `id` its new scope here at once (the database already holds it).
    pub fn rescoped(&self, id: &str, scope: Option<KeyScope>) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        self.local_changes().record(id);
        if let Some(state) = keys.get_mut(id) {
            state.scope = scope.map(Arc::new);
        }
    }

    fn local_changes(&self) -> std::sync::MutexGuard<'_, LocalChanges> {
        self.changed_here
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The state of key `id`, from memory or, for a key newer than the last refresh, from
    /// the database.
    async fn state(&self, id: &str) -> Result<Option<KeyState>, AuthError> {
        if let Some(state) = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            return Ok(Some(state.clone()));
        }
        let changes_before = self.local_changes().count;
        let stored = self.stored(id).await?;
        let state = stored.map(|k| KeyState::from(k.standing));
        if let Some(state) = state.clone() {
            let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
            // Remembered only when no change made here since the read could be older than it.
            if self.local_changes().count == changes_before {
                keys.entry(id.to_string()).or_insert(state);
            }
        }
        Ok(state)
    }

    async fn stored(&self, id: &str) -> Result<Option<StoredKey>, AuthError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        keys::find(&**client, id)
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))
    }

    /// The caller behind a bearer token.
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.codec.verify(token)?;
        match self.state(&claims.sub).await? {
            None => Err(AuthError::InvalidToken("unknown key".into())),
            Some(s) if s.revoked => Err(AuthError::Revoked),
            Some(s) if s.role != claims.role => Err(AuthError::InvalidToken(
                "role does not match the key".into(),
            )),
            Some(s) => Ok(s.principal(&claims.sub, Utc.timestamp_opt(claims.exp, 0).single())),
        }
    }

    /// Whether `key` would be answered without an Argon2 check: it was verified or refused
    /// lately, or is not shaped like a key at all.
    pub fn remembers(&self, key: &str) -> bool {
        if keys::parse(key).is_none() {
            return true;
        }
        let digest = digest(key);
        self.remembered_id(&digest, false).is_some() || self.failed_lately(&digest)
    }

    /// The id of a key verified within [`VERIFIED_TTL`] of now; with `used`, the key is
    /// remembered from now on, so a key in use is never checked again (PostgreSQL may be
    /// away meanwhile: intake goes on into Redis, and revocations still apply through the
    /// key states).
    fn remembered_id(&self, digest: &[u8; 32], used: bool) -> Option<String> {
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        let (id, at) = verified
            .get_mut(digest)
            .filter(|(_, at)| at.elapsed() < VERIFIED_TTL)?;
        if used {
            *at = Instant::now();
        }
        Some(id.clone())
    }

    /// The one check of the key with `digest` that runs at a time, shared by every request
    /// presenting it now.
    fn one_check(&self, digest: [u8; 32]) -> OneCheck<'_> {
        let mut checking = self.checking.lock().unwrap_or_else(PoisonError::into_inner);
        OneCheck {
            gate: checking.entry(digest).or_default().clone(),
            digest,
            checking: &self.checking,
        }
    }

    fn failed_lately(&self, digest: &[u8; 32]) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .is_some_and(|at| at.elapsed() < FAILED_TTL)
    }

    fn remember_failure(&self, digest: [u8; 32]) {
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.len() >= FAILED_MAX {
            failed.retain(|_, at| at.elapsed() < FAILED_TTL);
            if failed.len() >= FAILED_MAX {
                failed.clear();
            }
        }
        failed.insert(digest, Instant::now());
    }

    /// Checks an API key presented from `network` against its stored hash; returns its id. A
    /// key that failed within [`FAILED_TTL`] is refused again without a check.
    async fn verify_key(&self, key: &str, network: &str) -> Result<String, AuthError> {
        let parsed = keys::parse(key).ok_or(AuthError::InvalidKey)?;
        let digest = digest(key);
        if self.failed_lately(&digest) {
            metrics::counter!(names::AUTH_REMEMBERED_FAILURES).increment(1);
            return Err(AuthError::InvalidKey);
        }
        let busy = || AuthError::Unavailable("every key check is busy; retry shortly".into());
        let presented = if self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(parsed.id)
        {
            Presented::Known(parsed.id)
        } else {
            Presented::Unknown
        };
        let turn = self.verifier.turn(network, presented).map_err(|_| busy())?;
        // An unknown id costs the same Argon2 check as a known one, so the answer's timing
        // does not tell which key ids exist (under a flood of guesses, a known id is answered
        // first: an id tells nothing of its key's 256-bit secret).
        let stored = self.stored(parsed.id).await?;
        let secret = parsed.secret.to_string();
        let hash = stored
            .as_ref()
            .map_or_else(|| self.decoy_hash.clone(), |k| k.hash.clone());
        let matches = self
            .verifier
            .verify(secret, hash, turn.known())
            .await
            .map_err(|_| busy())?;
        metrics::counter!(names::AUTH_KEY_VERIFICATIONS, "result" => if matches { "match" } else { "mismatch" })
            .increment(1);
        let Some(stored) = stored.filter(|_| matches) else {
            self.remember_failure(digest);
            return Err(AuthError::InvalidKey);
        };
        if stored.standing.revoked {
            return Err(AuthError::Revoked);
        }
        Ok(parsed.id.to_string())
    }

    /// The caller behind an API key presented directly from `network` (see
    /// [`super::hashing::PER_NETWORK`]). A verified key is remembered (by its SHA-256) while it
    /// is used, so only its first use pays for Argon2 and needs PostgreSQL; revocation still
    /// applies at once.
    pub async fn authenticate_key(&self, key: &str, network: &str) -> Result<Principal, AuthError> {
        let digest = digest(key);
        let id = match self.remembered_id(&digest, true) {
            Some(id) => id,
            None => {
                let check = self.one_check(digest);
                let _turn = check.gate.lock().await;
                // Another request of this key may have checked it while this one waited.
                match self.remembered_id(&digest, true) {
                    Some(id) => id,
                    None => {
                        let id = self.verify_key(key, network).await?;
                        let mut verified =
                            self.verified.lock().unwrap_or_else(PoisonError::into_inner);
                        if verified.len() >= VERIFIED_MAX {
                            verified.clear();
                        }
                        verified.insert(digest, (id.clone(), Instant::now()));
                        id
                    }
                }
            }
        };
        match self.state(&id).await? {
            Some(s) if !s.revoked => Ok(s.principal(&id, None)),
            Some(_) => Err(AuthError::Revoked),
            None => Err(AuthError::InvalidKey),
        }
    }

    /// Exchanges an API key presented from `network` for an access token. The key is checked
    /// as a request presenting it is: a client exchanging one key from many workers at once
    /// pays one Argon2 check, and the token carries the role the key has now.
    pub async fn exchange(&self, key: &str, network: &str) -> Result<Issued, AuthError> {
        let principal = self.authenticate_key(key, network).await?;
        let id = principal.key_id.as_deref().ok_or(AuthError::InvalidKey)?;
        if let Ok(client) = self.pool.get().await {
            if let Err(e) = keys::touch(&**client, id).await {
                tracing::debug!(error = %format_args!("{e:#}"), "could not record the key's last use");
            }
        }
        self.codec
            .issue(id, principal.role, Utc::now())
            .map_err(|e| AuthError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_knows_which_keys_changed_here_since_its_read_began() {
        let mut local = LocalChanges::default();
        assert_eq!(local.since(0), Some(Default::default()));
        local.record("a");
        let before = local.count;
        local.record("b");
        local.record("c");
        let changed = local.since(before).unwrap();
        assert_eq!(changed.len(), 2);
        assert!(changed.contains("b") && changed.contains("c") && !changed.contains("a"));
        for i in 0..LOCAL_CHANGES_KEPT {
            local.record(&format!("k{i}"));
        }
        assert_eq!(local.since(before), None, "more changed than is kept");
        assert_eq!(local.since(local.count).map(|c| c.len()), Some(0));
    }

    /// An authenticator whose PostgreSQL never answers: nothing listens at its address, so
    /// every read of it fails as unavailable.
    fn without_postgresql() -> Arc<Authenticator> {
        with_database("postgres://pulse@127.0.0.1:9/pulse")
    }

    fn with_database(url: &str) -> Arc<Authenticator> {
        let settings = AuthSettings {
            jwt_secret: crate::config::Secret(
                "e3a91c07f5d24b68a0c1e9f37b52d8a4c6e0f1a3b5d7c9e2".into(),
            ),
            ..AuthSettings::default()
        };
        Authenticator::new(&settings, crate::db::pool(url, 1).unwrap()).unwrap()
    }

    /// A client opening many connections at once with one key took a place in the queue for
    /// each, and past its network's share its own requests were answered busy.
    #[tokio::test]
    async fn requests_presenting_one_key_at_once_share_one_check() {
        // A PostgreSQL that takes connections and never answers: a check waits on it.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("postgres://pulse@{}/pulse", silent.local_addr().unwrap());
        let auth = with_database(&url);
        let key = format!("{}0123456789ab_{}", keys::KEY_PREFIX, "d".repeat(64));
        let network = "198.51.100.0/24";
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..2 * super::super::hashing::PER_NETWORK {
            let (auth, key) = (auth.clone(), key.clone());
            requests.spawn(async move { auth.authenticate_key(&key, network).await });
        }
        // Every request has started and waits: on PostgreSQL, or on the one check.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            auth.verifier.turn(network, Presented::Unknown).is_ok(),
            "the requests of one key hold every place of their network"
        );
        assert_eq!(auth.checking.lock().unwrap().len(), 1);
        requests.abort_all();
        while requests.join_next().await.is_some() {}
        assert!(
            auth.checking.lock().unwrap().is_empty(),
            "a key is remembered as being checked"
        );
    }

    /// A flood of made-up keys past what the checks can take asked PostgreSQL for each key's
    /// hash first (through the pipeline's pool), and only then was told the checks were busy.
    /// A flood from one network filled every place, and other networks' keys were busy too.
    #[tokio::test]
    async fn a_key_check_without_a_turn_asks_nothing_of_postgresql() {
        // A lookup would fail as unavailable, not as busy.
        let auth = without_postgresql();
        let key = format!("{}0123456789ab_{}", keys::KEY_PREFIX, "c".repeat(64));
        let flooding = "203.0.113.0/24";
        let mut turns = Vec::new();
        while let Ok(turn) = auth.verifier.turn(flooding, Presented::Unknown) {
            turns.push(turn);
        }
        match auth.authenticate_key(&key, flooding).await {
            Err(AuthError::Unavailable(why)) => assert!(why.contains("busy"), "{why}"),
            other => panic!("{other:?}"),
        }
        match auth.authenticate_key(&key, "198.51.100.0/24").await {
            Err(AuthError::Unavailable(why)) => assert!(!why.contains("busy"), "{why}"),
            other => panic!("{other:?}"),
        }
        drop(turns);
        match auth.authenticate_key(&key, flooding).await {
            Err(AuthError::Unavailable(why)) => assert!(!why.contains("busy"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    /// What a long answer started with a key asks as it goes on.
    #[tokio::test]
    async fn a_key_revoked_here_is_known_revoked_at_once() {
        let auth = without_postgresql();
        for id in ["0123456789ab", "ba9876543210"] {
            let state = KeyState::new(Role::Analyst, false, None, None);
            auth.keys.write().unwrap().insert(id.into(), state);
        }
        assert!(!auth.is_revoked("0123456789ab"));
        auth.revoked("0123456789ab");
        assert!(auth.is_revoked("0123456789ab"));
        assert!(!auth.is_revoked("ba9876543210"), "another key stands");
        assert!(!auth.is_revoked("unknown"), "unknown is not revoked");
    }

    /// A key in use stays verified however long PostgreSQL is away: its check is remembered
    /// from its last use, not from the check (which once refused every key after five minutes
    /// of outage).
    #[tokio::test]
    async fn a_key_in_use_is_remembered_from_its_last_use() {
        let auth = without_postgresql();
        let key = format!("{}0123456789ab_{}", keys::KEY_PREFIX, "c".repeat(64));
        let key = key.as_str();
        assert!(keys::parse(key).is_some());
        let state = KeyState::new(Role::Ingest, false, None, None);
        auth.keys
            .write()
            .unwrap()
            .insert("0123456789ab".into(), state);
        let checked = Instant::now() - VERIFIED_TTL + Duration::from_secs(5);
        auth.verified
            .lock()
            .unwrap()
            .insert(digest(key), ("0123456789ab".into(), checked));
        assert_eq!(
            auth.authenticate_key(key, "127.0.0.0/24")
                .await
                .unwrap()
                .key_id
                .as_deref(),
            Some("0123456789ab")
        );
        let (_, at) = auth.verified.lock().unwrap()[&digest(key)].clone();
        assert!(
            at.elapsed() < Duration::from_secs(5),
            "remembered from its use"
        );

        // One remembered only from a check longer ago is checked again: PostgreSQL is away.
        auth.verified.lock().unwrap().insert(
            digest(key),
            ("0123456789ab".into(), checked - Duration::from_secs(10)),
        );
        assert!(matches!(
            auth.authenticate_key(key, "127.0.0.0/24").await,
            Err(AuthError::Unavailable(_))
        ));
    }
}
