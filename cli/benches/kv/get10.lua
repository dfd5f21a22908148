-- Ten consecutive keys from a random start.
-- edge routes by Host; deno ignores it.
wrk.headers["Host"] = "kvbench.localhost"
request = function()
  return wrk.format("GET", "/get10?k=" .. math.random(0, 9999))
end
