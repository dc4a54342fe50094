//! Reads of the stream whose replies are bounded in size. XREADGROUP and XAUTOCLAIM return
//! every entry whole, so a producer that appends entries of megabytes would make each read
//! hold megabytes times the batch. These run the same commands inside a Lua script that
//! measures each entry (its field names and values together) on the Redis side: an entry
//! over the limit comes back with each value cut to [`PREVIEW_BYTES`] and one more field,
//! [`ENTRY_BYTES_FIELD`], holding its real size, so Pulse dead-letters it with a truncated
//! copy instead of reading it.
//!
//! Blocking reads cannot run in a script. The reader blocks for at most one entry when the
//! stream is idle (an entry read that way is bounded by [`bound_entry`] as soon as it
//! arrives, so only one oversize entry at a time is ever held whole), then reads the rest of
//! its batch through [`read_group`].

use fred::prelude::*;
use fred::types::streams::XID;

use super::entry::RawEntry;
pub use super::entry::ENTRY_BYTES_FIELD;
use super::group::Member;
use super::reply::{parse_claim_reply, parse_read_reply};

/// Bytes of each value kept in the copy of an oversize entry.
pub const PREVIEW_BYTES: usize = 1024;

/// The script: `KEYS[1]` the stream; `ARGV[1]` the size limit, `ARGV[2]` the bytes kept per
/// value, `ARGV[3]` `read` or `claim`, then the command's own arguments.
const SCRIPT: &str = r#"
local limit = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local function bound(entries)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    if type(fields) == 'table' then
      local size = 0
      for i = 1, #fields do size = size + #fields[i] end
      if size > limit then
        for i = 1, #fields do
          if #fields[i] > keep then fields[i] = string.sub(fields[i], 1, keep) end
        end
        fields[#fields + 1] = '__pulse_entry_bytes'
        fields[#fields + 1] = tostring(size)
      end
    end
  end
end
if ARGV[3] == 'read' then
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[4], ARGV[5], 'COUNT', ARGV[6],
    'STREAMS', KEYS[1], ARGV[7])
  if not reply then return false end
  for _, stream in ipairs(reply) do bound(stream[2]) end
  return reply
end
local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[4], ARGV[5], ARGV[6], ARGV[7],
  'COUNT', ARGV[8])
bound(reply[2])
return reply
"#;

/// Runs the script in `mode` (`read` or `claim`) with the command's own arguments.
async fn run_script(
    redis: &Client,
    member: Member<'_>,
    max_entry_bytes: usize,
    mode: &str,
    args: &[String],
) -> Result<Value, Error> {
    let mut argv = vec![
        max_entry_bytes.to_string(),
        PREVIEW_BYTES.to_string(),
        mode.to_string(),
        member.group.to_string(),
        member.consumer.to_string(),
    ];
    argv.extend_from_slice(args);
    redis.eval(SCRIPT, vec![member.stream], argv).await
}

/// XREADGROUP `COUNT count` from `id` (`>` for new entries), without blocking, bounded.
pub async fn read_group(
    redis: &Client,
    member: Member<'_>,
    count: u64,
    id: &str,
    max_entry_bytes: usize,
) -> Result<Vec<RawEntry>, Error> {
    let args = [count.max(1).to_string(), id.to_string()];
    let reply = run_script(redis, member, max_entry_bytes, "read", &args).await?;
    Ok(parse_read_reply(reply))
}

/// XAUTOCLAIM of entries idle at least `min_idle_ms`, from `start`, bounded: the cursor to
/// continue from (`0-0` when the pending list was walked through) and the entries claimed.
pub async fn claim(
    redis: &Client,
    member: Member<'_>,
    min_idle_ms: u64,
    start: &str,
    count: u64,
    max_entry_bytes: usize,
) -> Result<(String, Vec<RawEntry>), Error> {
    let args = [
        min_idle_ms.to_string(),
        start.to_string(),
        count.max(1).to_string(),
    ];
    let reply = run_script(redis, member, max_entry_bytes, "claim", &args).await?;
    Ok(parse_claim_reply(reply))
}

/// A blocking XREADGROUP of at most one new entry (what wakes an idle reader), bounded as
/// soon as it arrives.
pub async fn wait_for_one(
    redis: &Client,
    member: Member<'_>,
    block_ms: u64,
    max_entry_bytes: usize,
) -> Result<Vec<RawEntry>, Error> {
    let reply: Value = redis
        .xreadgroup(
            member.group,
            member.consumer,
            Some(1),
            Some(block_ms),
            false,
            member.stream,
            XID::from(">"),
        )
        .await?;
    let mut entries = parse_read_reply(reply);
    for entry in &mut entries {
        if entry.oversize.is_none() {
            entry.oversize = bound_entry(&mut entry.fields, max_entry_bytes);
        }
    }
    Ok(entries)
}

/// The size of an entry read whole, when it is over `max_entry_bytes`; its values are then
/// cut to [`PREVIEW_BYTES`] as the script would have cut them.
pub fn bound_entry(fields: &mut [(String, Vec<u8>)], max_entry_bytes: usize) -> Option<u64> {
    let size: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size <= max_entry_bytes {
        return None;
    }
    for (_, value) in fields.iter_mut() {
        value.truncate(PREVIEW_BYTES);
        value.shrink_to_fit();
    }
    Some(size as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_over_the_limit_are_cut_and_measured() {
        let mut small = vec![("event".to_string(), vec![b'x'; 100])];
        assert_eq!(bound_entry(&mut small, 1_000), None);
        assert_eq!(small[0].1.len(), 100);
        let mut big = vec![
            ("event".to_string(), vec![b'x'; 5_000]),
            ("junk".to_string(), vec![b'y'; 10]),
        ];
        assert_eq!(bound_entry(&mut big, 1_000), Some(5_000 + 5 + 10 + 4));
        assert_eq!(big[0].1.len(), PREVIEW_BYTES);
        assert_eq!(big[1].1.len(), 10);
    }
}
