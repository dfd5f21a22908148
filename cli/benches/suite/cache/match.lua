-- A random key among the 1,000 filled ones.
request = function()
  return wrk.format("GET", "/match?k=k" .. math.random(0, 999))
end
