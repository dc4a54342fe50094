//! Reads of the stream whose replies are bounded in size. XREADGROUP and XAUTOCLAIM return
//! every entry whole, so a producer that appends entries of megabytes, or of hundreds of
//! thousands of tiny fields, would make each read hold that much times the batch (each field
//! costs Pulse far more than its bytes). These run the same commands inside a Lua script that
//! measures each entry (its field names and values together, and its number of fields) on the
//! Redis side: an entry over either limit comes back as a copy of its first [`PREVIEW_FIELDS`]
//! fields, each value cut to [`PREVIEW_BYTES`], followed by two marks,
//! [`ENTRY_BYTES_FIELD`] and [`ENTRY_FIELDS_FIELD`], holding its real size and field count, so
//! Pulse dead-letters the copy instead of reading the entry.
//!
//! Nothing reads the stream any other way: a blocking read cannot run in a script and returns
//! its entry whole, so an idle reader polls (see `ingest.idle_poll_ms`) instead of blocking.

use fred::prelude::*;

use super::entry::RawEntry;
pub use super::entry::{ENTRY_BYTES_FIELD, ENTRY_FIELDS_FIELD};
use super::group::Member;
use super::reply::{parse_claim_reply, parse_read_reply};

/// Bytes of each value kept in the copy of a cut entry.
pub const PREVIEW_BYTES: usize = 1024;
/// Fields (name and value pairs) kept in the copy of a cut entry.
pub const PREVIEW_FIELDS: usize = 4;

/// What a bounded read may return of each entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryLimits {
    /// Largest entry read whole, field names and values together, in bytes.
    pub bytes: usize,
    /// Most fields of an entry read whole.
    pub fields: usize,
}

/// The script: `KEYS[1]` the stream; `ARGV[1]` the size limit, `ARGV[2]` the field limit,
/// `ARGV[3]` the bytes kept per value, `ARGV[4]` the fields kept, `ARGV[5]` `read` or `claim`,
/// then the command's own arguments.
const SCRIPT: &str = r#"
local limit = tonumber(ARGV[1])
local max_fields = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local keep_fields = tonumber(ARGV[4])
local function bound(entries)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    if type(fields) == 'table' then
      local n = #fields
      local size = 0
      for i = 1, n do size = size + #fields[i] end
      if size > limit or n > 2 * max_fields then
        local copy = {}
        for i = 1, math.min(n - n % 2, 2 * keep_fields) do
          local value = fields[i]
          if #value > keep then value = string.sub(value, 1, keep) end
          copy[i] = value
        end
        copy[#copy + 1] = '__pulse_entry_bytes'
        copy[#copy + 1] = tostring(size)
        copy[#copy + 1] = '__pulse_entry_fields'
        copy[#copy + 1] = tostring(math.floor(n / 2))
        entry[2] = copy
      end
    end
  end
end
if ARGV[5] == 'read' then
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[6], ARGV[7], 'COUNT', ARGV[8],
    'STREAMS', KEYS[1], ARGV[9])
  if not reply then return false end
  for _, stream in ipairs(reply) do bound(stream[2]) end
  return reply
end
local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[6], ARGV[7], ARGV[8], ARGV[9],
  'COUNT', ARGV[10])
bound(reply[2])
return reply
"#;

/// Runs the script in `mode` (`read` or `claim`) with the command's own arguments.
async fn run_script(
    redis: &Client,
    member: Member<'_>,
    limits: EntryLimits,
    mode: &str,
    args: &[String],
) -> Result<Value, Error> {
    let mut argv = vec![
        limits.bytes.to_string(),
        limits.fields.max(1).to_string(),
        PREVIEW_BYTES.to_string(),
        PREVIEW_FIELDS.to_string(),
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
    limits: EntryLimits,
) -> Result<Vec<RawEntry>, Error> {
    let args = [count.max(1).to_string(), id.to_string()];
    let reply = run_script(redis, member, limits, "read", &args).await?;
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
    limits: EntryLimits,
) -> Result<(String, Vec<RawEntry>), Error> {
    let args = [
        min_idle_ms.to_string(),
        start.to_string(),
        count.max(1).to_string(),
    ];
    let reply = run_script(redis, member, limits, "claim", &args).await?;
    Ok(parse_claim_reply(reply))
}
