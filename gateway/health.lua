-- GET /health: the gateway itself plus each service's grpc.health.v1 status,
-- asked live over each cluster. 200 when everything is SERVING, else 503.
local services = { __SERVICES__ }
-- An empty HealthCheckRequest in gRPC framing: flag 0, length 0.
local EMPTY_REQUEST = "\0\0\0\0\0"
local NAMES = { [0] = "UNKNOWN", [1] = "SERVING", [2] = "NOT_SERVING", [3] = "SERVICE_UNKNOWN" }

function envoy_on_request(handle)
  local parts = {}
  local all_ok = true
  for _, name in ipairs(services) do
    local ok, headers, body = pcall(function()
      return handle:httpCall(name, {
        [":method"] = "POST",
        [":path"] = "/grpc.health.v1.Health/Check",
        [":authority"] = name,
        ["content-type"] = "application/grpc",
        ["te"] = "trailers",
      }, EMPTY_REQUEST, 1000)
    end)
    local status = "UNAVAILABLE"
    -- A SERVING reply is the 7-byte frame 00 00000002 08 01.
    if ok and headers ~= nil and headers[":status"] == "200" and body ~= nil and #body >= 7 then
      status = NAMES[string.byte(body, 7)] or "UNKNOWN"
    elseif ok and body ~= nil and #body == 5 then
      status = "UNKNOWN"  -- default enum value encodes to an empty message
    end
    if status ~= "SERVING" then all_ok = false end
    table.insert(parts, string.format('"%s":"%s"', name, status))
  end
  local overall = all_ok and "SERVING" or "DEGRADED"
  local json = string.format('{"status":"%s","gateway":"SERVING","services":{%s}}', overall, table.concat(parts, ","))
  handle:respond({ [":status"] = all_ok and "200" or "503", ["content-type"] = "application/json",
                   ["cache-control"] = "no-store" }, json)
end
