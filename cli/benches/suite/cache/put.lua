-- A fresh key per request, with a 1 KiB body.
local body = string.rep("x", 1024)
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/put?k=p" .. n .. "-" .. math.random(0, 1e9), nil, body)
end
