#!/usr/bin/env bash
# Three Plaza nodes on Redis, on this machine: Plaza on ports 8001, 8002 and
# 8003 with the demo's configuration (deploy/demo.json) and engine.type
# redis, on one redis-server on port 6379 or, with --cluster, a Redis
# Cluster of three masters on ports 7001-7003 (Debian's redis-server,
# installed if missing; no persistence: a demo). Open http://localhost:8001/
# and http://localhost:8002/ side by side: the lobby, presence, history,
# maps and the board are shared. Ctrl-C stops everything.
#
#   deploy/three-nodes.sh [--cluster] [REDIS_PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=0
[[ ${1:-} == --cluster ]] && { CLUSTER=1; shift; }
REDIS_PORT=${1:-$((CLUSTER ? 7001 : 6379))}
scripts/setup
if ! command -v redis-server >/dev/null; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
scripts/build build -DPLAZA_TEST_ENGINES=OFF
work=$(mktemp -d /tmp/plaza-three.XXXXXX)
node -e '
  const c = JSON.parse(require("fs").readFileSync("deploy/demo.json", "utf8"));
  delete c.port;
  console.log(JSON.stringify(c));' >"$work/plaza.json"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$work"' EXIT
redis_opts=(--bind 127.0.0.1 --save "" --appendonly no --loglevel warning --dir "$work")
if ((CLUSTER)); then
  seeds=()
  for port in $REDIS_PORT $((REDIS_PORT + 1)) $((REDIS_PORT + 2)); do
    redis-server --port "$port" "${redis_opts[@]}" --cluster-enabled yes \
      --cluster-config-file "$work/nodes-$port.conf" &
    pids+=($!)
    seeds+=("127.0.0.1:$port")
  done
  sleep 0.5
  redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  engine=(--set engine.redis.cluster=true --set "engine.redis.address=${seeds[0]}")
else
  redis-server --port "$REDIS_PORT" "${redis_opts[@]}" &
  pids+=($!)
  engine=(--set "engine.redis.address=127.0.0.1:$REDIS_PORT")
fi
for port in 8001 8002 8003; do
  build/plaza serve --config "$work/plaza.json" --web-root web --port "$port" --set store.path= \
    --set engine.type=redis "${engine[@]}" &
  pids+=($!)
done
wait
