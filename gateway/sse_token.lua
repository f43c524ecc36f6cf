-- Browser EventSource cannot send an Authorization header. On SSE routes only, take
-- the access token from the `access_token` query parameter or cookie and present it
-- as a Bearer header, so jwt_authn and the service verify it like any other. The
-- query string is never logged (the access log prints the path without it).
local function from_query(path)
  if path == nil then return nil end
  local q = string.match(path, "%?(.*)$")
  if q == nil then return nil end
  for pair in string.gmatch(q, "[^&]+") do
    local k, v = string.match(pair, "^([^=]+)=(.*)$")
    if k == "access_token" and v ~= nil and #v > 0 then return v end
  end
  return nil
end

local function from_cookie(cookie)
  if cookie == nil then return nil end
  for pair in string.gmatch(cookie, "[^;]+") do
    local k, v = string.match(pair, "^%s*([^=]+)=(.*)$")
    if k == "access_token" and v ~= nil and #v > 0 then return v end
  end
  return nil
end

function envoy_on_request(handle)
  local headers = handle:headers()
  if headers:get("authorization") ~= nil then return end
  local token = from_query(headers:get("x-envoy-original-path")) or from_cookie(headers:get("cookie"))
  if token ~= nil and string.match(token, "^[A-Za-z0-9%-_%.]+$") then
    headers:replace("authorization", "Bearer " .. token)
  end
end
