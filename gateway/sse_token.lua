-- Browser EventSource cannot send an Authorization header. On SSE routes (and the recorded
-- session exports) only, take the access token from the session cookie and present it as a
-- Bearer header, so jwt_authn and the service verify it like any other. A token in the query
-- string is not accepted (URLs end up in histories, proxies' logs and Referer headers); it is
-- still cut out of the original path, which traces carry, so a client that sends one anyway
-- never has it recorded.
local function from_cookie(cookie)
  if cookie == nil then return nil end
  for pair in string.gmatch(cookie, "[^;]+") do
    local k, v = string.match(pair, "^%s*([^=]+)=(.*)$")
    if (k == "access_token" or k == "__Secure-access_token") and v ~= nil and #v > 0 then return v end
  end
  return nil
end

-- The path without its access_token parameter.
local function without_token(path)
  local base, q = string.match(path, "^([^?]*)%?(.*)$")
  if base == nil then return path end
  local kept = {}
  for pair in string.gmatch(q, "[^&]+") do
    if string.match(pair, "^access_token=") == nil and pair ~= "access_token" then
      kept[#kept + 1] = pair
    end
  end
  if #kept == 0 then return base end
  return base .. "?" .. table.concat(kept, "&")
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local original = headers:get("x-envoy-original-path")
  local token = nil
  if headers:get("authorization") == nil then
    token = from_cookie(headers:get("cookie"))
  end
  if original ~= nil and string.find(original, "access_token", 1, true) ~= nil then
    headers:replace("x-envoy-original-path", without_token(original))
  end
  if token ~= nil and string.match(token, "^[A-Za-z0-9%-_%.]+$") then
    headers:replace("authorization", "Bearer " .. token)
  end
end
