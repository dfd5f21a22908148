-- A fresh key per request (a write, never a no-op), 64-byte value.
math.randomseed(os.time())
local n = 0
local seed = math.random(0, 1000000000)
local body = string.rep("v", 64)
request = function()
  n = n + 1
  return wrk.format("PUT", "/put?k=w" .. seed .. "-" .. n, nil, body)
end
