#!/usr/bin/env bash
# Time from `npm start` to a ready server (GET /api/v1/ready = 200), N times on one data directory.
#   bash scripts/measure-start.sh [runs=3]
# The first run may build and create the data directory; later ones show an unchanged restart.
set -euo pipefail
runs=${1:-3}
data=$(mktemp -d /tmp/smcp-measure-XXXX)
port=$((20000 + RANDOM % 20000))
trap 'rm -rf "$data"' EXIT
for i in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  DATA_DIR="$data/data" PORT=$port setsid npm start >"$data/server.log" 2>&1 &
  pid=$!
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/api/v1/ready" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "npm start exited:"; tail -20 "$data/server.log"; exit 1; }
    sleep 0.1
  done
  end=$(date +%s%N)
  echo "run $i: ready after $(( (end - start) / 1000000 )) ms ($(grep -o 'build: .*' "$data/server.log" || true))"
  kill -TERM -- -"$pid"
  wait "$pid" 2>/dev/null || true
done
