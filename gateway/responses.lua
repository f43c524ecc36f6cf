-- What every response looks like at the edge. First in the chain, so last to see a response:
-- * Envoy's own refusals — a missing or expired token, a body too large, a rate limit, no such
--   route, no healthy upstream, a body the transcoder cannot read — look like a service's
--   errors: a google.rpc.Status whose details carry a google.rpc.ErrorInfo with a stable
--   `reason`, and a message without protobuf internals;
-- * a browser on a listed origin may read every response, these refusals included (the cors
--   filter answers preflights, but skips responses Envoy makes itself or routes it never saw);
-- * every response says nosniff (and HSTS where TLS terminates in front);
-- * REST answers carry no gRPC headers, and WWW-Authenticate never names the request URL (it
--   may carry an access_token): the realm is the API's name.

local ALLOWED = {__ALLOWED_ORIGINS__}
local META = "tradesense.edge"

local DOMAIN = "tradesense.io"
-- Strict-Transport-Security where TLS terminates in front of this gateway ("" elsewhere:
-- a plain-HTTP local run must not pin browsers to HTTPS for localhost).
local HSTS = "__HSTS__"

-- (status, pattern in Envoy's message, reason, message shown); first match wins.
local KNOWN = {
  {401, "^Jwt is missing", "TOKEN_MISSING", "a bearer token is required"},
  {401, "^Jwt is expired", "TOKEN_EXPIRED", "the access token has expired; refresh it"},
  {401, "^Jwks", "TOKEN_UNVERIFIABLE", "the access token cannot be verified right now; retry"},
  {401, "", "TOKEN_INVALID", "the access token is not valid"},
  {400, "Cannot find field", "UNKNOWN_FIELD", nil},
  {400, "not allowed", "HEADER_NOT_ALLOWED", nil},
  {400, "", "MALFORMED_REQUEST", nil},
  {403, "^Audiences", "TOKEN_AUDIENCE", "this token is not for the public API"},
  {403, "^origin refused", "ORIGIN_REFUSED", "a call with the session cookie from a page this API does not trust"},
  {404, "", "NOT_FOUND", "no such route"},
  {405, "", "METHOD_NOT_ALLOWED", nil},
  {408, "", "REQUEST_TIMEOUT", "the request took too long to arrive"},
  {413, "", "BODY_TOO_LARGE", "the request body is too large"},
  {429, "", "RATE_LIMITED", "too many requests; retry later"},
  {431, "", "HEADERS_TOO_LARGE", "the request headers are too large"},
  {502, "", "UNAVAILABLE", "the service is unavailable; retry"},
  {503, "", "UNAVAILABLE", "the service is unavailable; retry"},
  {504, "", "TIMEOUT", "the service did not answer in time; retry"},
}

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

-- What Envoy's transcoder says of a body it cannot read, without type URLs, status prefixes
-- or the proto's own field paths.
local function plain(message)
  message = string.gsub(message, "type%.googleapis%.com/[%w%._]+", "value")
  message = string.gsub(message, "^%u[%u_]+:", "")
  message = string.gsub(message, "%s+", " ")
  if #message > 200 then message = string.sub(message, 1, 200) end
  return message
end

local function clean_authenticate(headers)
  local value = headers:get("www-authenticate")
  if value == nil then return end
  local err = string.match(value, 'error="([%w_]+)"')
  if err ~= nil then
    headers:replace("www-authenticate", 'Bearer realm="' .. DOMAIN .. '", error="' .. err .. '"')
  else
    headers:replace("www-authenticate", 'Bearer realm="' .. DOMAIN .. '"')
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local origin = headers:get("origin")
  local meta = handle:streamInfo():dynamicMetadata()
  if origin ~= nil and ALLOWED[origin] then meta:set(META, "origin", origin) end
  local ctype = headers:get("content-type") or ""
  if string.find(ctype, "application/grpc", 1, true) == 1 then meta:set(META, "grpc", "1") end
end

local function edge_headers(handle, headers)
  -- Every response, the services' and Envoy's own: no content sniffing, HSTS where TLS is.
  headers:replace("x-content-type-options", "nosniff")
  if HSTS ~= "" then headers:replace("strict-transport-security", HSTS) end
  local seen = handle:streamInfo():dynamicMetadata():get(META) or {}
  if seen["grpc"] == nil then
    for _, name in ipairs({"grpc-status", "grpc-message", "grpc-accept-encoding", "grpc-encoding"}) do
      headers:remove(name)
    end
  end
  local origin = seen["origin"]
  if origin ~= nil and headers:get("access-control-allow-origin") == nil then
    headers:add("access-control-allow-origin", origin)
    headers:add("access-control-allow-credentials", "true")
    headers:add("access-control-expose-headers", "x-request-id, retry-after")
    headers:add("vary", "origin")
  end
end

function envoy_on_response(handle)
  local headers = handle:headers()
  clean_authenticate(headers)
  edge_headers(handle, headers)
  local status = tonumber(headers:get(":status")) or 200
  local ctype = headers:get("content-type") or ""
  if status < 400 or string.find(ctype, "application/json", 1, true) == nil then return end
  local body = handle:body()
  if body == nil then return end
  local raw = body:getBytes(0, body:length())
  -- A service's error has its details already; an Envoy local reply has none.
  if string.find(raw, '"details":%[%]') == nil then return end
  local code = string.match(raw, '"code":(%d+)') or "2"
  local message = string.match(raw, '"message":"(.-)"[,}]') or ""
  message = string.gsub(message, '\\"', '"')
  for _, k in ipairs(KNOWN) do
    if k[1] == status and string.find(message, k[2]) ~= nil then
      local text = k[4] or plain(message)
      local out = '{"code":' .. code .. ',"message":' .. json_string(text) .. ',"details":[{"@type":'
        .. '"type.googleapis.com/google.rpc.ErrorInfo","reason":"' .. k[3] .. '","domain":"' .. DOMAIN
        .. '","metadata":{}}]}'
      body:setBytes(out)
      headers:replace("content-length", tostring(#out))
      return
    end
  end
end
