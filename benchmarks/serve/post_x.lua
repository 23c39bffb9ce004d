-- wrk script for torch_batching.py: POST {"x": [64 floats]} as JSON to the URL.
-- The 64 values are drawn once (fixed seed), so every request carries the same body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(1)
local xs = {}
for i = 1, 64 do
  xs[i] = string.format("%.4f", math.random() * 2 - 1)
end
wrk.body = '{"x": [' .. table.concat(xs, ", ") .. ']}'
