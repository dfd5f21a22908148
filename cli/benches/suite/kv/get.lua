-- A random key among the 10,000 filled ones.
request = function()
  return wrk.format("GET", "/get?k=k" .. math.random(0, 9999))
end
