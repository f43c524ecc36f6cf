-- Runs on every request except /health. gRPC metadata is narrower than HTTP: keys are
-- [0-9a-z-_.] and plain (non "-bin") values printable ASCII. A header legal for HTTP but not
-- for gRPC makes the upstream's gRPC core refuse the whole call as INTERNAL (a 500 for the
-- client's mistake), so it is refused here as a 400 instead.
function envoy_on_request(handle)
  for key, value in pairs(handle:headers()) do
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
end
