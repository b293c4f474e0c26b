//! Sessions as Redis hashes that expire by themselves.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Script, ScriptInvocation};

use crate::backend::convert::{millis_to_db, version_to_db};
use crate::backend::{
    BackendError, Change, ChangeFeed, FieldSave, Record, SaveOutcome, SessionBackend, StorageKey,
    readable_version,
};

/// The prefix used unless told otherwise.
const DEFAULT_PREFIX: &str = "typed_session:";

/// How many announcements may wait for the store before the pub/sub reader waits too.
const CHANGES_BUFFER: usize = 1024;

/// How many keys one `SCAN` step asks for.
const SCAN_BATCH: usize = 500;

/// The Lua that reads a session's record from its hash: the `d` field, or, for a session
/// stored field by field ([`RedisBackend::with_partial_writes`]), its head `h` and one field per
/// session field (`f00`, `f01`, … by position, each holding that field's `"name":value`),
/// joined in order into the very record that was saved.
const STORED_DATA: &str = r#"
local function stored_data(key, d, h)
  if d or not h then return d end
  local all = redis.call('HGETALL', key)
  local names, members = {}, {}
  for n = 1, #all, 2 do
    if string.sub(all[n], 1, 1) == 'f' then
      names[#names + 1] = all[n]
      members[all[n]] = all[n + 1]
    end
  end
  table.sort(names)
  local ordered = {}
  for n, name in ipairs(names) do ordered[n] = members[name] end
  return h .. '"fields":{' .. table.concat(ordered, ',') .. '}}'
end
"#;

/// The session under a key, read in one step so the fields and the expiry belong to the same
/// write. Answers nil for no key, else `{expiry, type, d, v}`: the fields (nil when missing) are
/// read only from a hash, since any other command on a key of another type fails, and a
/// failure would be a 503 for as long as the key lives (for good, if it has no expiry).
const LOAD_SCRIPT: &str = r"
-- KEYS[1]: the session key.
local expiry = redis.call('PEXPIRETIME', KEYS[1])
if expiry == -2 then return false end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' then return {expiry, kind, false, false, false} end
local fields = redis.call('HMGET', KEYS[1], 'd', 'v', 'i', 'h')
return {expiry, kind, stored_data(KEYS[1], fields[1], fields[4]), fields[2], fields[3]}
";

/// The Lua that keeps a session's index set (`<prefix>index:<value>`, the storage keys of the
/// sessions with that `#[session(index)]` value) lasting as long as its longest-lived member.
/// Members whose session ended or moved to another value are dropped when the set is read.
const EXTEND_SET: &str = r"
local function extend_set(set, expires_at)
  local current = redis.call('PEXPIRETIME', set)
  if current ~= -2 and current < tonumber(expires_at) then
    redis.call('PEXPIREAT', set, expires_at)
  end
end
";

/// The Lua both save scripts share: the compare-and-set check, and the upkeep of the index
/// sets. `v` is compared as text: both sides are canonical decimals, and no version is ever
/// turned into a Lua number (a double, which cannot tell versions above 2^53 apart) or added
/// to here. A live key that is not a session hash with a version is damage: never written
/// over, it fails the check (a conflict), so the store reloads, finds it malformed and drops
/// its cached copy. `HMGET` runs under `pcall`: a key of another type answers `WRONGTYPE`,
/// which is that damage, so no `TYPE` first; any other error is raised.
const SAVE_STEPS: &str = r"
-- Whether the live session under key is at version expected ('' for none) at now: then also
-- its expiry, whether it is live, its index value and its head (stored field by field).
local function expected_holds(key, expected, now)
  local expiry = redis.call('PEXPIRETIME', key)
  local live = expiry == -1 or expiry > tonumber(now)
  local current, old_index, by_field = false, false, false
  if live then
    local fields = redis.pcall('HMGET', key, 'v', 'i', 'h')
    if fields.err then
      if string.find(fields.err, 'WRONGTYPE', 1, true) then return false end
      error(fields.err)
    end
    if not fields[1] then return false end
    current, old_index, by_field = fields[1], fields[2], fields[3]
  end
  if expected == '' then
    if current then return false end
  elseif current ~= expected then
    return false
  end
  return true, expiry, live, old_index, by_field
end

-- Moves member (a storage key) from the set of old_index to the set of index ('' for none).
local function keep_index(member, old_index, index, index_prefix, expires_at)
  if old_index and old_index ~= index then
    redis.call('SREM', index_prefix .. old_index, member)
  end
  if index ~= '' then
    local set = index_prefix .. index
    redis.call('SADD', set, member)
    extend_set(set, expires_at)
  end
end
";

/// Compare-and-set write of the whole record (see [`SAVE_STEPS`] for the check).
///
/// Every server-side step costs the one Redis all servers share, so the common save (a live
/// session replaced) takes five: read the expiry, read the version and index (`pcall`: a key
/// of another type answers `WRONGTYPE`, a conflict, instead of failing the script, so no
/// `TYPE` first; any other error is the script's), write
/// the fields in place, set the expiry, announce. A leftover past its expiry is deleted first,
/// whatever its type, and so is a session stored field by field (a hash holds one layout);
/// the `i` field goes only when the index does.
const SAVE_SCRIPT: &str = r"
-- KEYS[1]: the session key.
-- ARGV: expected version ('' for none), data, new version, expires_at, now (unix ms), the
-- changes channel, the announcement, the index value ('' for none), the index set prefix, the
-- storage key.
local holds, expiry, live, old_index, by_field = expected_holds(KEYS[1], ARGV[1], ARGV[5])
if not holds then return 0 end
if (not live and expiry ~= -2) or by_field then redis.call('DEL', KEYS[1]) end
if ARGV[8] == '' then
  redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', ARGV[3])
  if old_index then redis.call('HDEL', KEYS[1], 'i') end
else
  redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', ARGV[3], 'i', ARGV[8])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
keep_index(ARGV[10], old_index, ARGV[8], ARGV[9], ARGV[4])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
";

/// [`SAVE_SCRIPT`] for a session stored field by field ([`RedisBackend::with_partial_writes`]):
/// the hash holds `v`, `i`, the record's head `h` and one `f<position>` per field. A partial save
/// writes only the fields it carries, and answers 2 (writing nothing) when the stored session
/// is not stored field by field, so the caller sends every field; a whole save replaces the
/// hash.
const SAVE_FIELDS_SCRIPT: &str = r"
-- KEYS[1]: the session key.
-- ARGV: as SAVE_SCRIPT's, with the record's head in place of its data, then '1' for a partial
-- save ('' for a whole one), then hash field and member pairs.
local holds, expiry, live, old_index, by_field = expected_holds(KEYS[1], ARGV[1], ARGV[5])
if not holds then return 0 end
local partial = ARGV[11] ~= ''
if partial and not by_field then return 2 end
if not partial and expiry ~= -2 then redis.call('DEL', KEYS[1]) end
local write = {'v', ARGV[3], 'h', ARGV[2]}
if ARGV[8] ~= '' then
  write[#write + 1] = 'i'
  write[#write + 1] = ARGV[8]
end
for n = 12, #ARGV, 2 do
  write[#write + 1] = ARGV[n]
  write[#write + 1] = ARGV[n + 1]
end
redis.call('HSET', KEYS[1], unpack(write))
if partial and old_index and ARGV[8] == '' then redis.call('HDEL', KEYS[1], 'i') end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
keep_index(ARGV[10], old_index, ARGV[8], ARGV[9], ARGV[4])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
";

/// The save scripts' answer for a record written (0: a conflict).
const WRITTEN: i64 = 1;

/// [`SAVE_FIELDS_SCRIPT`]'s answer to a partial save of a session not stored field by field.
const NOT_STORED_BY_FIELD: i64 = 2;

/// Deletes a session (and its index set membership) and, if there was one, announces it.
/// ARGV: the changes channel, the announcement, the index set prefix, the storage key.
const DELETE_SCRIPT: &str = r"
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  local index = redis.call('HGET', KEYS[1], 'i')
  if index then redis.call('SREM', ARGV[3] .. index, ARGV[4]) end
end
local deleted = redis.call('DEL', KEYS[1])
if deleted > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return deleted
";

/// The live sessions of one index value, as `{storage key, expiry, d, v, i}` each; members
/// that ended or moved to another value are dropped from the set.
const FIND_SCRIPT: &str = r"
-- KEYS[1]: the index set. ARGV: now (unix ms), the session key prefix, the index value.
local found = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[2] .. member
  local expiry = redis.call('PEXPIRETIME', key)
  local live = (expiry == -1 or expiry > tonumber(ARGV[1]))
    and redis.call('TYPE', key).ok == 'hash'
  local fields = live and redis.call('HMGET', key, 'd', 'v', 'i', 'h')
  local data = fields and stored_data(key, fields[1], fields[4])
  if fields and fields[3] == ARGV[3] and data and fields[2] then
    table.insert(found, {member, expiry, data, fields[2], fields[3]})
  elseif not live or (fields and fields[3] ~= ARGV[3]) then
    redis.call('SREM', KEYS[1], member)
  end
end
return found
";

/// Moves a live session's expiry. Answers nil for no live session, `{1, version}` once moved,
/// or `{0, why}` for a key that is not a session hash with a version, left as it is.
const TOUCH_SCRIPT: &str = r"
-- KEYS[1]: the session key. ARGV: expires_at, now (unix ms), the index set prefix.
local expiry = redis.call('PEXPIRETIME', KEYS[1])
if expiry == -2 or (expiry ~= -1 and expiry <= tonumber(ARGV[2])) then
  return false
end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' then
  return {0, 'the key holds a ' .. kind .. ', not a session hash'}
end
local version = redis.call('HGET', KEYS[1], 'v')
if not version then
  return {0, 'the stored session lacks its v (version) field'}
end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
local index = redis.call('HGET', KEYS[1], 'i')
if index then extend_set(ARGV[3] .. index, ARGV[1]) end
return {1, version}
";

/// Stores sessions in Redis (7.0 or later), one hash per session, so several application
/// servers can share them.
///
/// A session lives under the key `<prefix><storage key>` (prefix `typed_session:` unless
/// changed with [`with_prefix`](Self::with_prefix)) as a hash with fields `d` (the encoded
/// session) and `v` (its version), and expires by itself at its `expires_at` through
/// `PEXPIREAT`, so [`delete_expired`](SessionBackend::delete_expired) has nothing to do. With
/// [`with_partial_writes`](Self::with_partial_writes) the encoded session is kept field by
/// field instead (`h` and `f00`, `f01`, …), and a save writes only the changed fields.
/// Loads, saves and touches are Lua scripts, atomic on the server. Counting, listing and
/// [`delete_all`](SessionBackend::delete_all) walk the prefix with `SCAN`, never `KEYS` or
/// `FLUSHDB`: every key under the prefix belongs to this backend, and no other key is touched.
///
/// ```no_run
/// use typed_session::backend::{RedisBackend, SessionBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typed_session::backend::BackendError> {
/// let backend = RedisBackend::connect("redis://127.0.0.1:6379")
///     .await?
///     .with_prefix("app:sessions:")?;
/// backend.create_schema().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    manager: ConnectionManager,
    /// For the dedicated pub/sub connection of [`changes`](SessionBackend::changes); `None`
    /// when built [`from_manager`](Self::from_manager).
    client: Option<Client>,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
    /// This instance's tag in its announcements, so that its own are left out of its feed.
    origin: Arc<str>,
    /// Sessions are written field by field (see [`with_partial_writes`](Self::with_partial_writes)).
    partial_writes: bool,
}

/// The scripts, hashed once; the server compiles each once and runs it by hash afterwards.
struct Scripts {
    load: Script,
    save: Script,
    save_fields: Script,
    touch: Script,
    delete: Script,
    find: Script,
    /// `<prefix>*`, for `SCAN MATCH`.
    scan_pattern: String,
    /// `<prefix>index:`, before the value in an index set's key.
    index_prefix: String,
    /// `<prefix>changes`: the pub/sub channel of saves and deletes under the prefix.
    channel: String,
}

impl Scripts {
    fn new(prefix: &str) -> Self {
        Self {
            load: Script::new(&format!("{STORED_DATA}{LOAD_SCRIPT}")),
            save: Script::new(&format!("{EXTEND_SET}{SAVE_STEPS}{SAVE_SCRIPT}")),
            save_fields: Script::new(&format!("{EXTEND_SET}{SAVE_STEPS}{SAVE_FIELDS_SCRIPT}")),
            touch: Script::new(&format!("{EXTEND_SET}{TOUCH_SCRIPT}")),
            delete: Script::new(DELETE_SCRIPT),
            find: Script::new(&format!("{STORED_DATA}{FIND_SCRIPT}")),
            scan_pattern: format!("{prefix}*"),
            index_prefix: format!("{prefix}index:"),
            channel: format!("{prefix}changes"),
        }
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects to `url` (for example `redis://127.0.0.1:6379`, or `redis://host/2` for
    /// database 2) and uses the prefix `typed_session:`. The connection reconnects by itself.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        let context = "connecting to Redis";
        let client = Client::open(url).map_err(|e| BackendError::new(context, e))?;
        // One retry, not the driver's six with growing delays (6 to 13 s in all): while Redis is
        // down a request should get its 503 at once, and the manager reconnects in the
        // background all the same.
        let config = ConnectionManagerConfig::new().set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        Ok(Self {
            client: Some(client),
            ..Self::from_manager(manager)
        })
    }

    /// Uses an existing connection manager and the prefix `typed_session:`. Such a backend
    /// announces its saves and deletes but cannot subscribe to other servers' (it has no client
    /// to open the pub/sub connection with): its store learns of them at its next touch.
    /// [`connect`](Self::connect) gives both.
    #[must_use]
    pub fn from_manager(manager: ConnectionManager) -> Self {
        Self {
            manager,
            client: None,
            prefix: DEFAULT_PREFIX.into(),
            scripts: Arc::new(Scripts::new(DEFAULT_PREFIX)),
            origin: uuid::Uuid::new_v4().simple().to_string().into(),
            partial_writes: false,
        }
    }

    /// Stores each session field in a hash field of its own, so that a save writes only the
    /// fields that changed: a one-field change to a session holding a large cart sends and
    /// stores that field, not the cart. Off by default.
    ///
    /// Every version from this one reads sessions stored either way, and a save meeting a
    /// session stored the other way rewrites it whole. Versions before it cannot read a
    /// session stored field by field (to them it is damaged, and its visitor gets a fresh
    /// session), so on several servers turn this on once every server runs this version or a
    /// later one. A store sealing whole records (`with_encrypt_all`) writes them whole all the
    /// same.
    ///
    /// ```no_run
    /// use typed_session::backend::RedisBackend;
    ///
    /// # async fn run() -> Result<(), typed_session::backend::BackendError> {
    /// let backend = RedisBackend::connect("redis://127.0.0.1:6379")
    ///     .await?
    ///     .with_partial_writes(true);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_partial_writes(self, enabled: bool) -> Self {
        Self {
            partial_writes: enabled,
            ..self
        }
    }

    /// The arguments both save scripts begin with: the expected version, `data` (the record,
    /// or the head of one stored field by field), the new version, expires_at, now, the changes
    /// channel, the announcement, the index value, the index set prefix and the storage key.
    fn save_arguments<'i, 's>(
        &self,
        invocation: &'i mut ScriptInvocation<'s>,
        key: &StorageKey,
        record: &Record,
        data: &str,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<&'i mut ScriptInvocation<'s>, BackendError> {
        Ok(invocation
            .arg(expected_version.map_or_else(String::new, |v| v.to_string()))
            .arg(data)
            .arg(version_to_db(record.version)?.to_string())
            .arg(millis_to_db(record.expires_at))
            .arg(millis_to_db(now))
            .arg(&self.scripts.channel)
            .arg(self.announcement(key, Some(record.version)))
            .arg(record.index.as_deref().unwrap_or(""))
            .arg(&self.scripts.index_prefix)
            .arg(key.as_str()))
    }

    /// One run of the field-by-field save script: `partial` sends only the changed fields.
    /// Answers [`WRITTEN`], 0 (a conflict) or [`NOT_STORED_BY_FIELD`].
    async fn save_by_field(
        &self,
        key: &StorageKey,
        fields: &FieldSave<'_>,
        expected_version: Option<u64>,
        now: u64,
        partial: bool,
    ) -> Result<i64, BackendError> {
        let mut conn = self.manager.clone();
        let mut invocation = self.scripts.save_fields.key(self.key_name(key));
        let record = fields.record();
        self.save_arguments(
            &mut invocation,
            key,
            record,
            fields.head(),
            expected_version,
            now,
        )?
        .arg(if partial { "1" } else { "" });
        for (position, member) in fields.members().enumerate() {
            if member.changed || !partial {
                invocation.arg(format!("f{position:02}")).arg(member.json);
            }
        }
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| BackendError::new("saving a session", e))
    }

    /// Stores sessions under `prefix` instead: printable ASCII without spaces, and none of the
    /// `SCAN` pattern characters `* ? [ ] \`, since the prefix is matched with `SCAN MATCH`.
    pub fn with_prefix(self, prefix: &str) -> Result<Self, BackendError> {
        let valid = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"*?[]\\".contains(&b));
        if !valid {
            return Err(BackendError::new(
                "choosing the Redis key prefix",
                format!(
                    "invalid key prefix {prefix:?}: it must be non-empty printable ASCII without \
                     spaces or any of the characters * ? [ ] \\"
                ),
            ));
        }
        Ok(Self {
            prefix: prefix.into(),
            scripts: Arc::new(Scripts::new(prefix)),
            ..self
        })
    }

    /// The connection manager, for your own commands.
    #[must_use]
    pub fn manager(&self) -> &ConnectionManager {
        &self.manager
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What a save (at `version`) or a delete (`None`) under `key` announces on the changes
    /// channel: `<storage key> <version or -> <origin>`.
    fn announcement(&self, key: &StorageKey, version: Option<u64>) -> String {
        let version = version.map_or_else(|| "-".to_owned(), |version| version.to_string());
        format!("{key} {version} {}", self.origin)
    }

    fn key_name(&self, key: &StorageKey) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Every key under the prefix, each once (`SCAN` may repeat a key).
    async fn scan(&self) -> Result<BTreeSet<Vec<u8>>, RedisError> {
        let mut conn = self.manager.clone();
        let mut names = BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&self.scripts.scan_pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query_async(&mut conn)
                .await?;
            names.extend(batch);
            if next == 0 {
                return Ok(names);
            }
            cursor = next;
        }
    }

    /// The storage keys of every live session, in one pipeline of expiry lookups per batch.
    async fn live_keys(
        &self,
        now: u64,
        context: &'static str,
    ) -> Result<Vec<StorageKey>, BackendError> {
        let names = self
            .scan()
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let names: Vec<Vec<u8>> = names.into_iter().collect();
        let mut conn = self.manager.clone();
        let mut keys = Vec::new();
        for batch in names.chunks(SCAN_BATCH) {
            let mut pipe = redis::pipe();
            for name in batch {
                pipe.cmd("PEXPIRETIME").arg(name);
            }
            let expiries: Vec<i64> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| BackendError::new(context, e))?;
            for (name, expiry) in batch.iter().zip(expiries) {
                if name.starts_with(self.scripts.index_prefix.as_bytes()) {
                    continue;
                }
                if stored_expiry(expiry).is_some_and(|at| at > now) {
                    keys.push(self.storage_key(name, context)?);
                }
            }
        }
        Ok(keys)
    }

    /// The storage key in a key name found under the prefix.
    fn storage_key(&self, name: &[u8], context: &'static str) -> Result<StorageKey, BackendError> {
        std::str::from_utf8(name)
            .ok()
            .and_then(|name| name.strip_prefix(&*self.prefix))
            .and_then(StorageKey::parse)
            .ok_or_else(|| {
                BackendError::malformed(
                    context,
                    format!(
                        "key {:?} under the prefix is not a session key",
                        String::from_utf8_lossy(name)
                    ),
                )
            })
    }
}

impl SessionBackend for RedisBackend {
    /// Redis needs no schema; this only checks that the server answers.
    async fn create_schema(&self) -> Result<(), BackendError> {
        let mut conn = self.manager.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| BackendError::new("reaching Redis", e))
    }

    async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
        let context = "loading a session";
        let mut conn = self.manager.clone();
        let found: Option<(i64, String, HashField, HashField, HashField)> = self
            .scripts
            .load
            .key(self.key_name(key))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let Some((expiry, kind, data, version, index)) = found else {
            return Ok(None);
        };
        let Some(expires_at) = stored_expiry(expiry).filter(|&at| at > now) else {
            return Ok(None);
        };
        if kind != "hash" {
            return Err(BackendError::malformed(
                context,
                format!("the key holds a {kind}, not a session hash"),
            ));
        }
        let (Some(data), Some(version)) = (data, version) else {
            return Err(BackendError::malformed(
                context,
                "stored session lacks its d (data) or v (version) field",
            ));
        };
        record_from_fields(Some(data), &version, expires_at, index, context).map(Some)
    }

    async fn save(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let mut conn = self.manager.clone();
        let mut invocation = self.scripts.save.key(self.key_name(key));
        let written: i64 = self
            .save_arguments(
                &mut invocation,
                key,
                record,
                &record.data,
                expected_version,
                now,
            )?
            .invoke_async(&mut conn)
            .await
            .map_err(|e| BackendError::new("saving a session", e))?;
        Ok(SaveOutcome::written(written == WRITTEN))
    }

    /// With [`with_partial_writes`](RedisBackend::with_partial_writes): the session field by
    /// field, only the changed fields when the stored session is the one this save replaces
    /// and is stored that way (else every field). Without it, [`save`](SessionBackend::save).
    async fn save_fields(
        &self,
        key: &StorageKey,
        fields: &FieldSave<'_>,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        if !self.partial_writes || !fields.worth_storing_apart() {
            return self.save(key, fields.record(), expected_version, now).await;
        }
        let partial = fields.is_partial() && expected_version.is_some();
        let mut answer = self
            .save_by_field(key, fields, expected_version, now, partial)
            .await?;
        if answer == NOT_STORED_BY_FIELD {
            answer = self
                .save_by_field(key, fields, expected_version, now, false)
                .await?;
        }
        Ok(SaveOutcome::written(answer == WRITTEN))
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: u64,
        now: u64,
    ) -> Result<Option<u64>, BackendError> {
        let context = "touching a session";
        let mut conn = self.manager.clone();
        let touched: Option<(i64, Vec<u8>)> = self
            .scripts
            .touch
            .key(self.key_name(key))
            .arg(millis_to_db(expires_at))
            .arg(millis_to_db(now))
            .arg(&self.scripts.index_prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        match touched {
            None => Ok(None),
            Some((1, version)) => parse_version(&version, context).map(Some),
            Some((_, why)) => Err(BackendError::malformed(
                context,
                String::from_utf8_lossy(&why).into_owned(),
            )),
        }
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
        let mut conn = self.manager.clone();
        self.scripts
            .delete
            .key(self.key_name(key))
            .arg(&self.scripts.channel)
            .arg(self.announcement(key, None))
            .arg(&self.scripts.index_prefix)
            .arg(key.as_str())
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(|e| BackendError::new("deleting a session", e))
    }

    /// Always `0`: Redis removes expired sessions by itself.
    async fn delete_expired(&self, _now: u64) -> Result<u64, BackendError> {
        Ok(0)
    }

    async fn count(&self, now: u64) -> Result<u64, BackendError> {
        let keys = self.live_keys(now, "counting sessions").await?;
        Ok(u64::try_from(keys.len()).unwrap_or(u64::MAX))
    }

    async fn delete_all(&self) -> Result<(), BackendError> {
        let context = "deleting all sessions";
        let names = self
            .scan()
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let names: Vec<Vec<u8>> = names.into_iter().collect();
        let mut conn = self.manager.clone();
        for batch in names.chunks(SCAN_BATCH) {
            redis::cmd("DEL")
                .arg(batch)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| BackendError::new(context, e))?;
        }
        // One announcement for them all: other servers treat every cached session as unverified.
        redis::cmd("PUBLISH")
            .arg(&self.scripts.channel)
            .arg(format!("* - {}", self.origin))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| BackendError::new(context, e))
    }

    async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
        self.live_keys(now, "listing session keys").await
    }

    async fn find_by_index(
        &self,
        index: &str,
        now: u64,
    ) -> Result<Vec<(StorageKey, Record)>, BackendError> {
        let context = "finding sessions by index";
        let mut conn = self.manager.clone();
        let rows: Vec<(String, i64, HashField, HashField, HashField)> = self
            .scripts
            .find
            .key(format!("{}{index}", self.scripts.index_prefix))
            .arg(millis_to_db(now))
            .arg(&*self.prefix)
            .arg(index)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        // A damaged session is left out, as the trait's default does.
        Ok(rows
            .into_iter()
            .filter_map(|(member, expiry, data, version, index)| {
                let key = StorageKey::parse(&member)?;
                let expires_at = stored_expiry(expiry)?;
                let version = version?;
                let record = record_from_fields(data, &version, expires_at, index, context);
                Some((key, record.ok()?))
            })
            .collect())
    }

    /// Subscribes to the prefix's changes channel on a connection of its own. The feed leaves
    /// out this instance's announcements and ends when that connection drops.
    async fn changes(&self) -> Result<Option<ChangeFeed>, BackendError> {
        let context = "subscribing to session changes";
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(|e| BackendError::new(context, e))?;
        pubsub
            .subscribe(&self.scripts.channel)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let (sender, feed) = tokio::sync::mpsc::channel(CHANGES_BUFFER);
        let origin = Arc::clone(&self.origin);
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let Ok(text) = message.get_payload::<String>() else {
                    continue;
                };
                let Some(change) = Change::parse(&text, Some(&origin)) else {
                    continue;
                };
                if sender.send(change).await.is_err() {
                    // The store is gone.
                    break;
                }
            }
        });
        Ok(Some(feed))
    }
}

/// A record from the fields of its hash; missing or mistyped ones are malformed.
fn record_from_fields(
    data: HashField,
    version: &[u8],
    expires_at: u64,
    index: HashField,
    context: &'static str,
) -> Result<Record, BackendError> {
    let data = data
        .and_then(|data| String::from_utf8(data).ok())
        .ok_or_else(|| BackendError::malformed(context, "stored session data is not UTF-8"))?;
    let index = index
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| BackendError::malformed(context, "stored index value is not UTF-8"))?;
    Ok(Record {
        data,
        version: parse_version(version, context)?,
        expires_at,
        index,
    })
}

/// The expiry `PEXPIRETIME` reports: `None` for a missing key (`-2`), `i64::MAX` for a key
/// without expiry (`-1`, which this backend never sets: treated as never expiring).
fn stored_expiry(expiry: i64) -> Option<u64> {
    match expiry {
        -1 => u64::try_from(i64::MAX).ok(),
        at => u64::try_from(at).ok(),
    }
}

/// A field of a session hash (`d`, the data, or `v`, the version), as raw bytes: what it holds
/// is checked here, so that damage reads as a malformed record rather than a failed command.
type HashField = Option<Vec<u8>>;

/// A stored version: a canonical decimal (no sign, no leading zero), as this backend writes
/// it, that a save can follow. The save script compares versions as text, so a non-canonical
/// one is malformed too.
fn parse_version(text: &[u8], context: &'static str) -> Result<u64, BackendError> {
    let canonical = !text.is_empty()
        && text.iter().all(u8::is_ascii_digit)
        && (text == b"0" || !text.starts_with(b"0"));
    let version = canonical
        .then(|| std::str::from_utf8(text).ok()?.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| {
            BackendError::malformed(
                context,
                format!(
                    "stored version {:?} is not a canonical unsigned 64-bit decimal",
                    String::from_utf8_lossy(text)
                ),
            )
        })?;
    readable_version(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MAX_VERSION;

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(parse_version(b"0", "t").unwrap(), 0);
        assert_eq!(parse_version(b"42", "t").unwrap(), 42);
        assert_eq!(
            parse_version(b"9223372036854775806", "t").unwrap(),
            MAX_VERSION - 1
        );
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            "1.0",
            " 1",
            "9223372036854775807",
            "18446744073709551615",
            "18446744073709551616",
            "x",
        ] {
            let error = parse_version(bad.as_bytes(), "t").unwrap_err();
            assert!(error.is_malformed(), "{bad:?}");
        }
    }

    #[test]
    fn expiries_map_redis_sentinels() {
        assert_eq!(stored_expiry(-2), None);
        assert_eq!(stored_expiry(-1), Some(i64::MAX as u64));
        assert_eq!(stored_expiry(1_000), Some(1_000));
    }
}
