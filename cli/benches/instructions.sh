#!/usr/bin/env bash
# Instructions per request on the node, counted by valgrind's callgrind: deterministic where
# req/s on a shared 2-core machine moves ±15% from run to run, so it is the A/B measure for
# hot-path changes. Usage:
#
#   bash cli/benches/instructions.sh [hello|json] [path/to/edge]
#
# Serves the suite's app (cli/benches/suite/hello.js or json.js) with one isolate, drives it
# with `wrk -t1 -c4` for 15 s under callgrind (json: the suite's 4 KB POST, json.lua), and
# prints the requests served and userland instructions per request (on V8, including the
# JIT's background compiling; `--smc-check` lets valgrind follow generated code). Needs valgrind and wrk
# (apt-get install valgrind wrk). The edge binary defaults to target/release/edge.
set -euo pipefail
scenario=${1:-hello}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${2:-$here/../../target/release/edge}")
case $scenario in
  hello) lua=() ;;
  json) lua=(-s "$here/suite/json.lua") ;;
  *) echo "unknown scenario $scenario (hello or json)" >&2; exit 2 ;;
esac
for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install valgrind wrk curl)" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'kill -9 "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/apps/app"
cp "$here/suite/$scenario.js" "$work/apps/app/index.js"
printf 'name = "app"\nmain = "index.js"\n' > "$work/apps/app/edge.toml"
serve=(serve --apps "$work/apps" --listen 127.0.0.1:0 --data-dir "$work/data" --warm-isolates 0)

wait_listening() {
  for _ in $(seq 1 900); do
    grep -q 'listening on' "$1" && return 0
    sleep 0.2
  done
  echo "edge did not start; its output:" >&2; cat "$1" >&2; exit 1
}

# Build the startup snapshot outside valgrind first (under it, that takes minutes).
"$bin" "${serve[@]}" > "$work/pre.out" 2>&1 & pid=$!
wait_listening "$work/pre.out"
kill "$pid"; wait "$pid" 2>/dev/null || true

valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$work/cg.out" "$bin" "${serve[@]}" > "$work/out" 2>/dev/null & pid=$!
wait_listening "$work/out"
url=$(sed -n 's/^listening on //p' "$work/out")
for _ in 1 2; do curl -s -H "Host: app.localhost" "$url/" > /dev/null; done
callgrind_control -z "$pid" > /dev/null
n=$(wrk -t1 -c4 -d15s "${lua[@]}" -H "Host: app.localhost" "$url/" | awk '/requests in/ {print $1}')
callgrind_control -d "$pid" > /dev/null
sleep 2
total=$(callgrind_annotate "$work/cg.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$scenario: $n requests, $((total / n)) instructions per request"
