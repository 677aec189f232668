-- wrk script: PUT /users/{id}, each thread replacing a user of its own at the version it last
-- got back, so that every write is a successful compare-and-swap. Run one connection per
-- thread, with one user id per thread after `--`:
--
--   wrk -t2 -c2 -d10s -s benches/wrk/put_user.lua http://127.0.0.1:8080 -- u_1 u_2
--
-- The answer's body carries the new version (a PUT answer has no ETag). The first request of a
-- thread sends version 0 and gets 409, whose problem names the current version; from then on
-- every write should succeed. Answers other than 200 are counted by status.

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  id = args[thread_number + 1]
  version = 0
  refused = {}
end

function request()
  local body = string.format(
    '{"username":"load-%s","email":"load-%s@example.com","version":%d}', id, id, version)
  return wrk.format("PUT", "/users/" .. id, { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status == 200 then
    version = tonumber(string.match(body, '"version":(%d+)')) or version
  else
    refused[status] = (refused[status] or 0) + 1
    version = tonumber(string.match(body, '"current_version":(%d+)')) or version
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local counts = thread:get("refused")
    for status, count in pairs(counts) do
      io.write(string.format("thread %d: %d answers %d\n", thread:get("thread_number"), count, status))
    end
  end
end
