-- Ten consecutive keys from a random start.
request = function()
  return wrk.format("GET", "/get10?k=" .. math.random(0, 9999))
end
