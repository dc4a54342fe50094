//! The stream's upkeep, for the group monitor: trimming entries the group acknowledged,
//! capping the dead-letter stream and removing consumers of processes that are gone.

use fred::prelude::*;

use super::group::GroupStats;

/// Trims `stream` below the lowest id `group` may still need (`XTRIM MINID ~`): the oldest
/// pending entry, else the last delivered one. Every entry below it has been acknowledged by
/// this group. Returns how many entries went.
pub async fn trim_acknowledged(
    redis: &Client,
    stream: &str,
    group: &str,
    stats: &GroupStats,
) -> Result<i64, Error> {
    let min_id = if stats.pending > 0 {
        let summary: Value = redis.xpending(stream, group, ()).await?;
        match summary {
            Value::Array(parts) => parts.get(1).and_then(|v| v.as_string()),
            _ => None,
        }
    } else {
        stats.last_delivered_id.clone()
    };
    let Some(min_id) = min_id else { return Ok(0) };
    redis.xtrim(stream, ("MINID", "~", min_id.as_str())).await
}

/// The largest entry id: appended with it (by a producer that sets ids itself), it leaves
/// Redis no id to give any later entry, and every `XADD *` is refused until it is set back.
pub const LAST_POSSIBLE_ID: &str = "18446744073709551615-18446744073709551615";

/// `KEYS[1]` the stream, `ARGV[1]` the group. Answers `{state, id, delivered, first}`:
/// `"used_up"` while the stream's ids are used up and the group has not yet read and
/// acknowledged the entry that used them; `"reset"` once it set them back to `id`; else `"ok"`
/// with the stream's last generated id, the last one delivered to the group (empty without the
/// group) and the stream's first entry's (empty when it holds none), read together.
///
/// Set back: nothing can be appended meanwhile, so once the group has delivered and
/// acknowledged every entry, that entry is deleted, the stream's last id set to its newest
/// remaining entry's (or Redis's clock, when none remains) with the newest id deleted before
/// it, and every group that had read up to it set back to the same id with every entry read.
/// In one script, so two monitors cannot both do it.
const RESET_USED_UP_IDS: &str = r#"
local last_possible = '18446744073709551615-18446744073709551615'
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
end
-- Ids as numbers written out: the shorter is the smaller, else the first in text order.
local function number_before(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function not_after(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  if am ~= bm then return number_before(am, bm) end
  return as == bs or number_before(as, bs)
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local ours
for _, g in ipairs(groups) do
  if field(g, 'name') == ARGV[1] then ours = g end
end
if field(info, 'last-generated-id') ~= last_possible then
  local delivered = ours and field(ours, 'last-delivered-id') or ''
  local first = field(info, 'first-entry')
  local first_id = ''
  if type(first) == 'table' and first[1] then first_id = first[1] end
  return {'ok', field(info, 'last-generated-id'), delivered, first_id}
end
if not ours or field(ours, 'last-delivered-id') ~= last_possible
    or field(ours, 'pending') ~= 0 then
  return {'used_up', '', '', ''}
end
redis.call('XDEL', KEYS[1], last_possible)
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id
if #newest > 0 then
  id = newest[1][1]
else
  local now = redis.call('TIME')
  id = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000)) .. '-0'
end
local added = field(info, 'entries-added')
if added then
  -- The newest id deleted before, so groups' lag can still be told (Redis cannot past a
  -- deletion after a group's position); 0-0 would leave it as the deletion above made it.
  local deleted = field(info, 'max-deleted-entry-id') or '0-1'
  if deleted == '0-0' or not not_after(deleted, id) then deleted = '0-1' end
  redis.call('XSETID', KEYS[1], id, 'ENTRIESADDED', added, 'MAXDELETEDID', deleted)
else
  redis.call('XSETID', KEYS[1], id)
end
for _, g in ipairs(groups) do
  if field(g, 'last-delivered-id') == last_possible then
    if added then
      redis.call('XGROUP', 'SETID', KEYS[1], field(g, 'name'), id, 'ENTRIESREAD', added)
    else
      redis.call('XGROUP', 'SETID', KEYS[1], field(g, 'name'), id)
    end
  end
end
return {'reset', id, '', ''}
"#;

/// What [`check_ids`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ids {
    /// Appends work: the stream's last generated id, the group's last delivered one and the
    /// stream's first entry's, read at one instant.
    Ok(IdsNow),
    /// Used up, waiting for the group to read and acknowledge the entry that used them.
    UsedUp,
    /// Used up, and set back to this id.
    Reset(String),
}

/// Checks whether `stream`'s ids are used up, and sets them back once `group` has read and
/// acknowledged the entry that used them (see [`LAST_POSSIBLE_ID`]).
pub async fn check_ids(redis: &Client, stream: &str, group: &str) -> Result<Ids, Error> {
    let reply: Vec<String> = match redis
        .eval(RESET_USED_UP_IDS, vec![stream], vec![group])
        .await
    {
        Ok(reply) => reply,
        Err(e) if e.details().contains("no such key") => return Ok(Ids::Ok(IdsNow::default())),
        Err(e) => return Err(e),
    };
    let [state, id, delivered, first] = reply.as_slice() else {
        return Err(Error::new(
            ErrorKind::Parse,
            "unexpected reply to the id check",
        ));
    };
    Ok(match state.as_str() {
        "reset" => Ids::Reset(id.clone()),
        "used_up" => Ids::UsedUp,
        _ => {
            let given = |id: &String| Some(id.clone()).filter(|id| !id.is_empty());
            Ids::Ok(IdsNow {
                generated: given(id),
                delivered: given(delivered),
                first: given(first),
            })
        }
    })
}

/// The ids [`check_ids`] reads at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdsNow {
    /// The stream's last generated id: the newest entry appended (or set by `XSETID`).
    pub generated: Option<String>,
    /// The last id delivered to the group.
    pub delivered: Option<String>,
    /// The stream's first entry's id; `None` when it holds none.
    pub first: Option<String>,
}

impl IdsNow {
    /// Whether the entry generated as `before` (read earlier) was removed before the group
    /// read it: the group has not reached it, and the stream no longer holds it (its first
    /// entry is after it, or it holds none). Redis keeps no count of entries trimmed
    /// (`XTRIM`, `XADD ... MAXLEN`), so a removal shows only this way, from one look to the
    /// next; removals between two looks that spare the newest entry do not show.
    pub fn removed_unread(&self, before: &str) -> bool {
        let (Some(delivered), Some(generated)) = (&self.delivered, &self.generated) else {
            return false;
        };
        // Ids that went back (the stream made anew, or its ids set back) tell nothing.
        !id_after(before, generated)
            && id_after(before, delivered)
            && self.first.as_deref().is_none_or(|f| id_after(f, before))
    }
}

/// Whether stream id `a` is after `b` (`<ms>-<seq>`, compared as numbers).
pub fn id_after(a: &str, b: &str) -> bool {
    let parse = |id: &str| -> Option<(u64, u64)> {
        let (ms, seq) = id.split_once('-')?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    };
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a > b,
        _ => false,
    }
}

/// What [`cap_dead_letters`] trimmed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeadLettersTrimmed {
    pub trimmed: i64,
    pub kept: i64,
    /// The stream's size before, in bytes, as `MEMORY USAGE` estimates it.
    pub bytes: f64,
}

/// Trims the oldest letters of `dead` while it holds more than `cap_bytes` (as `MEMORY USAGE`
/// estimates it), keeping a tenth below the cap. `None` when it was under the cap.
pub async fn cap_dead_letters(
    redis: &Client,
    dead: &str,
    cap_bytes: f64,
) -> Result<Option<DeadLettersTrimmed>, Error> {
    let used: Option<i64> = redis.memory_usage(dead, None).await?;
    let Some(used) = used.map(|u| u as f64).filter(|&u| u > cap_bytes) else {
        return Ok(None);
    };
    let len: i64 = redis.xlen(dead).await?;
    let keep = (((len as f64) * cap_bytes / used * 0.9).floor() as i64).max(0);
    let trimmed: i64 = redis.xtrim(dead, ("MAXLEN", keep)).await?;
    Ok(Some(DeadLettersTrimmed {
        trimmed,
        kept: keep,
        bytes: used,
    }))
}

/// Deletes the consumers of `group`, other than `own`, that hold no pending entries and have
/// been idle for `stale_ms`; returns their names.
pub async fn remove_stale_consumers(
    redis: &Client,
    stream: &str,
    group: &str,
    own: &str,
    stale_ms: i64,
) -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    for c in super::group::consumers(redis, stream, group).await? {
        if c.name != own && c.pending == 0 && c.idle_ms >= stale_ms {
            let _: i64 = redis
                .xgroup_delconsumer(stream, group, c.name.as_str())
                .await?;
            removed.push(c.name);
        }
    }
    Ok(removed)
}

/// Publishes `consumer`'s settings `fingerprint` at `now_ms` in the hash beside `stream`, and
/// returns every consumer's published within `fresh_ms` (older ones are removed: their
/// processes are gone or stopped publishing).
pub async fn publish_fingerprint(
    redis: &Client,
    stream: &str,
    consumer: &str,
    fingerprint: &str,
    now_ms: i64,
    fresh_ms: i64,
) -> Result<Vec<(String, String)>, Error> {
    let _: i64 = redis
        .hset(
            fingerprints_key(stream),
            (consumer, format!("{fingerprint}@{now_ms}")),
        )
        .await?;
    let (fresh, stale) = read_fingerprints(redis, stream, now_ms, fresh_ms).await?;
    if !stale.is_empty() {
        let _: i64 = redis.hdel(fingerprints_key(stream), stale).await?;
    }
    Ok(fresh)
}

/// Every consumer's settings fingerprint published within `fresh_ms` of `now_ms`, by
/// consumer.
pub async fn fingerprints(
    redis: &Client,
    stream: &str,
    now_ms: i64,
    fresh_ms: i64,
) -> Result<Vec<(String, String)>, Error> {
    Ok(read_fingerprints(redis, stream, now_ms, fresh_ms).await?.0)
}

fn fingerprints_key(stream: &str) -> String {
    format!("{stream}:settings")
}

/// The fresh (consumer, fingerprint) pairs, sorted, and the consumers whose are stale.
async fn read_fingerprints(
    redis: &Client,
    stream: &str,
    now_ms: i64,
    fresh_ms: i64,
) -> Result<(Vec<(String, String)>, Vec<String>), Error> {
    let all: std::collections::HashMap<String, String> =
        redis.hgetall(fingerprints_key(stream)).await?;
    let mut fresh = Vec::new();
    let mut stale = Vec::new();
    for (name, value) in all {
        let parsed = value
            .rsplit_once('@')
            .and_then(|(print, at)| Some((print.to_string(), at.parse::<i64>().ok()?)));
        match parsed {
            Some((print, at)) if now_ms - at <= fresh_ms => fresh.push((name, print)),
            _ => stale.push(name),
        }
    }
    fresh.sort();
    Ok((fresh, stale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_as_numbers() {
        assert!(id_after("10-0", "9-5"));
        assert!(id_after("10-10", "10-9"));
        assert!(!id_after("10-9", "10-9"));
        assert!(id_after(LAST_POSSIBLE_ID, "1796317389748-0"));
        assert!(!id_after("junk", "1-0") && !id_after("1-0", ""));
    }

    #[test]
    fn an_entry_gone_before_the_group_reached_it_was_removed_unread() {
        let now = |delivered: &str, first: Option<&str>| IdsNow {
            generated: Some("50-0".into()),
            delivered: Some(delivered.into()),
            first: first.map(str::to_string),
        };
        // Appended as 30-0, not delivered, no longer held: removed unread.
        assert!(now("20-0", None).removed_unread("30-0"));
        assert!(now("20-0", Some("40-0")).removed_unread("30-0"));
        // Still held, or read since.
        assert!(!now("20-0", Some("25-0")).removed_unread("30-0"));
        assert!(!now("20-0", Some("30-0")).removed_unread("30-0"));
        assert!(!now("30-0", None).removed_unread("30-0"));
        // A stream made anew (Redis restarted without its data, a key deleted): its ids went
        // back, and nothing is judged.
        let anew = IdsNow {
            generated: Some("5-0".into()),
            ..now("0-0", None)
        };
        assert!(!anew.removed_unread("30-0"));
        // Without the group nothing is judged.
        let no_group = IdsNow {
            delivered: None,
            ..now("0-0", None)
        };
        assert!(!no_group.removed_unread("30-0"));
    }
}
