-- wrk script: POST /users with a username and e-mail never sent before, from any thread.
--
--   wrk -t2 -c32 -d5s -s benches/wrk/users.lua http://127.0.0.1:8080
--
-- wrk runs one Lua state per thread, each with the same counter and the same unseeded
-- math.random, so a script that only counts sends every name once per thread: all but the
-- first of each are rightly answered 409 (a taken username). Here each thread's names carry
-- the thread's number and the start time. Answers other than 201 are counted by status.

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  refused = {}
  run = os.time()
end

function request()
  sent = sent + 1
  local name = string.format("load-%d-%d-%d", run, thread_number, sent)
  local body = string.format('{"username":"%s","email":"%s@example.com"}', name, name)
  return wrk.format("POST", "/users", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status ~= 201 then
    refused[status] = (refused[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local refused = thread:get("refused")
    for status, count in pairs(refused) do
      io.write(string.format("thread %d: %d answers %d\n", thread:get("thread_number"), count, status))
    end
  end
end
