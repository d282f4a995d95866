"""The Lua scripts of the Redis event log: each runs atomically inside Redis.

Appending checks seq continuity, writes the per-job streams, the all-jobs stream and the jobs
index in one step, so no reader ever sees a half-written batch and two writers cannot interleave.
"""

from __future__ import annotations

from typing import Final

# KEYS: 1 all-jobs stream, 2 all-jobs counter, 3 jobs sorted set, then (stream, info) per job.
# ARGV: 1 lenient ("1": events already stored with the same body are skipped, for retries and
#   imports), 2 per-job cap (0: none), 3 "~" or "=" for that cap, 4 all-jobs cap (0: none),
#   5 job count, then 4 per job (job_id, started_at, workflow, project; "" = none),
#   then 5 per event (job index, seq, end status or "", timestamp, body).
# Returns {events written, cursor of the last one written (0 if none)}.
APPEND: Final = """
local lenient = ARGV[1] == '1'
local job_cap, approx, all_cap = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local njobs = tonumber(ARGV[5])
local stored, last = {}, {}
for j = 1, njobs do
  stored[j] = tonumber(redis.call('HGET', KEYS[3 + 2 * j], 'last_seq')) or 0
  last[j] = stored[j]
end
local base = 5 + 4 * njobs
local keep = {}
for a = base, #ARGV - 1, 5 do
  local j, seq = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local job_id = ARGV[6 + 4 * (j - 1)]
  if seq == last[j] + 1 then
    last[j] = seq
    keep[#keep + 1] = a
  elseif lenient and seq <= stored[j] then
    local found = redis.call('XRANGE', KEYS[2 + 2 * j], seq .. '-0', seq .. '-0')
    if #found > 0 and found[1][2][2] ~= ARGV[a + 5] then
      return redis.error_reply('SPRUCE job ' .. job_id .. ': seq ' .. seq ..
        ' is already stored with other content')
    end
  else
    return redis.error_reply('SPRUCE job ' .. job_id .. ': seq ' .. seq ..
      ' does not follow ' .. last[j])
  end
end
for j = 1, njobs do
  if stored[j] == 0 and last[j] > 0 then
    local a = 6 + 4 * (j - 1)
    local info = KEYS[3 + 2 * j]
    redis.call('HSET', info, 'job_id', ARGV[a], 'started_at', ARGV[a + 1], 'status', 'running')
    if ARGV[a + 2] ~= '' then redis.call('HSET', info, 'workflow', ARGV[a + 2]) end
    if ARGV[a + 3] ~= '' then redis.call('HSET', info, 'project', ARGV[a + 3]) end
    redis.call('ZADD', KEYS[3], ARGV[a + 1], ARGV[a])
  end
end
local cursor = 0
for _, a in ipairs(keep) do
  local j = tonumber(ARGV[a + 1])
  cursor = redis.call('INCR', KEYS[2])
  if all_cap > 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', all_cap, cursor .. '-0', 'e', ARGV[a + 5])
  else
    redis.call('XADD', KEYS[1], cursor .. '-0', 'e', ARGV[a + 5])
  end
  local id = ARGV[a + 2] .. '-0'
  if job_cap > 0 then
    redis.call('XADD', KEYS[2 + 2 * j], 'MAXLEN', approx, job_cap, id, 'e', ARGV[a + 5],
      'c', cursor)
  else
    redis.call('XADD', KEYS[2 + 2 * j], id, 'e', ARGV[a + 5], 'c', cursor)
  end
  if ARGV[a + 3] ~= '' then
    redis.call('HSET', KEYS[3 + 2 * j], 'status', ARGV[a + 3], 'ended_at', ARGV[a + 4])
  end
end
for j = 1, njobs do
  if last[j] ~= stored[j] then redis.call('HSET', KEYS[3 + 2 * j], 'last_seq', last[j]) end
end
return {#keep, cursor}
"""

# KEYS: 1 job stream, 2 job info, 3 jobs sorted set, 4 all-jobs stream, 5 all-jobs floor.
# ARGV: 1 job_id, 2 keep (0: remove the whole job, else keep its newest `keep` events).
# The removed events leave the all-jobs stream too, and the floor rises past their cursors so
# that a firehose reader behind them gets a reset.  Returns {events removed, job removed 0/1}.
REMOVE: Final = """
local keep = tonumber(ARGV[2])
local stop = '+'
if keep > 0 then
  local last = tonumber(redis.call('HGET', KEYS[2], 'last_seq')) or 0
  local first = last - keep + 1
  if first <= 1 then return {0, 0} end
  stop = '(' .. first .. '-0'
end
local removed, top, start = 0, 0, '-'
while true do
  local page = redis.call('XRANGE', KEYS[1], start, stop, 'COUNT', 500)
  if #page == 0 then break end
  local cursors = {}
  for i, entry in ipairs(page) do
    local fields = entry[2]
    for f = 1, #fields, 2 do
      if fields[f] == 'c' then
        cursors[#cursors + 1] = fields[f + 1] .. '-0'
        top = math.max(top, tonumber(fields[f + 1]))
      end
    end
  end
  if #cursors > 0 then redis.call('XDEL', KEYS[4], unpack(cursors)) end
  removed = removed + #page
  if #page < 500 then break end
  start = '(' .. page[#page][1]
end
if top > (tonumber(redis.call('GET', KEYS[5])) or 0) then redis.call('SET', KEYS[5], top) end
if keep > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', string.sub(stop, 2))
  return {removed, 0}
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return {removed, 1}
"""

# KEYS: 1 job stream, 2 job info, 3 all-jobs stream.  ARGV: 1 job_id, 2 seq.
# Removes the job's last event, an end event, from both streams and marks the job running again;
# the stream's last id steps back so that the job's next XADD may reuse the seq.
REOPEN: Final = """
local seq = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[2], 'last_seq')) or 0
local found = redis.call('XRANGE', KEYS[1], seq .. '-0', seq .. '-0')
if last ~= seq or #found == 0 or not redis.call('HGET', KEYS[2], 'ended_at') then
  return redis.error_reply('SPRUCE job ' .. ARGV[1] .. ': seq ' .. seq ..
    ' is not its stored end event')
end
local fields = found[1][2]
for f = 1, #fields, 2 do
  if fields[f] == 'c' then redis.call('XDEL', KEYS[3], fields[f + 1] .. '-0') end
end
redis.call('XDEL', KEYS[1], seq .. '-0')
if seq > 1 then redis.call('XSETID', KEYS[1], (seq - 1) .. '-0') end
redis.call('HSET', KEYS[2], 'status', 'running', 'last_seq', seq - 1)
redis.call('HDEL', KEYS[2], 'ended_at')
return 1
"""
