-- The `json` scenario's request: POST / with a fixed JSON body of exactly 4096 bytes.
local items = {}
local function body_with(pad)
  return '{"tag":"bench","items":[' .. table.concat(items, ",") .. '],"pad":"' .. pad .. '"}'
end
local i = 0
while #body_with("") < 4096 - 64 do
  items[#items + 1] = string.format('{"id":%d,"name":"item-%d","value":%d,"tags":["a","b"]}', i, i, (i * 7) % 1000)
  i = i + 1
end
wrk.method = "POST"
wrk.body = body_with(string.rep("x", 4096 - #body_with("")))
wrk.headers["Content-Type"] = "application/json"
