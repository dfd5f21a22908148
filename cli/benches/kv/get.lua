-- A random key among the 10,000 filled ones.
-- edge routes by Host; deno ignores it.
wrk.headers["Host"] = "kvbench.localhost"
request = function()
  return wrk.format("GET", "/get?k=k" .. math.random(0, 9999))
end
