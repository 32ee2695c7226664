-- wrk script: cycle through the URL paths listed one per line in $PATHS_FILE; at the end,
-- one line of latency percentiles for bench_http.py (wrk's --latency stops at p99).
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do
  paths[#paths + 1] = line
end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local out = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    out[#out + 1] = string.format("p%s=%.3f", p, latency:percentile(p) / 1000)
  end
  out[#out + 1] = string.format("max=%.3f", latency.max / 1000)
  io.write("LATENCY_MS " .. table.concat(out, " ") .. "\n")
end
