-- wrk script: POST a JSON-RPC tools/call of the echo tool {"text":"hi"} to an MCP endpoint.
-- usage: wrk ... -s tools_call.lua URL [-- SESSION_ID ...]
-- With session ids, requests round-robin over them (stateful servers); ids are unique per request.
-- done() prints one line "WRK_JSON {...}" with counts and latency percentiles in microseconds.

local threads = {}
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
  table.insert(threads, thread)
end

local sessions = {}
local counter = 0
bad = 0
checked = 0

function init(args)
  for i = 1, #args do
    sessions[#sessions + 1] = args[i]
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
end

function request()
  counter = counter + 1
  local headers = nil
  if #sessions > 0 then
    -- wrk.format uses the table given instead of wrk.headers (not merged), so copy them in.
    headers = {}
    for k, v in pairs(wrk.headers) do
      headers[k] = v
    end
    headers["Mcp-Session-Id"] = sessions[(counter % #sessions) + 1]
  end
  local body = string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}',
    tid * 1000000000 + counter
  )
  return wrk.format(nil, nil, headers, body)
end

function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or body == nil
      or not string.find(body, '"result"', 1, true)
      or string.find(body, '"isError"%s*:%s*true')
      or not string.find(body, '"hi"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local bad_total, checked_total = 0, 0
  for _, t in ipairs(threads) do
    bad_total = bad_total + (t:get("bad") or 0)
    checked_total = checked_total + (t:get("checked") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"bad_bodies":%d,"checked":%d,'
      .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    bad_total, checked_total,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)
  ))
end
