-- Runs on every request except /health.
-- 1. gRPC metadata is narrower than HTTP: keys are [0-9a-z-_.] and plain (non "-bin") values
--    printable ASCII. A header legal for HTTP but not for gRPC makes the upstream's gRPC core
--    refuse the whole call as INTERNAL (a 500 for the client's mistake), so it is refused here
--    as a 400 instead.
-- 2. A call carrying the session cookies is a browser's: it is refused unless it comes from the
--    API's own origin or a listed one (Origin, else Sec-Fetch-Site). SameSite=Strict already
--    keeps other sites' pages from sending them; this holds even for a browser that ignores it,
--    and for a sibling subdomain, which SameSite counts as the same site.
local ALLOWED = {__ALLOWED_ORIGINS__}

local function session_cookie(cookie)
  if cookie == nil then return false end
  return string.find(cookie, "access_token=", 1, true) ~= nil or string.find(cookie, "refresh_token=", 1, true) ~= nil
end

local function trusted(headers)
  local origin = headers:get("origin")
  if origin ~= nil then
    if ALLOWED[origin] then return true end
    -- The API's own origin: its host is the request's. (The scheme is not compared: behind a
    -- TLS-terminating balancer Envoy may see plain HTTP while the page is https.)
    local host = string.match(origin, "^https?://(.+)$")
    return host ~= nil and host == headers:get(":authority")
  end
  local site = headers:get("sec-fetch-site")
  return site == nil or site == "same-origin" or site == "none"
end

function envoy_on_request(handle)
  local headers = handle:headers()
  for key, value in pairs(headers) do
    if string.find(key, "^:") == nil then
      if string.find(key, "[^%w%-_%.]") ~= nil then
        handle:respond({[":status"] = "400"}, "header name not allowed")
        return
      end
      if string.sub(key, -4) ~= "-bin" and string.find(value, "[^\32-\126]") ~= nil then
        handle:respond({[":status"] = "400"}, "header value not allowed: " .. key)
        return
      end
    end
  end
  if session_cookie(headers:get("cookie")) and not trusted(headers) then
    handle:respond({[":status"] = "403"}, "origin refused")
  end
end
