#!/usr/bin/env bash
# Three Plaza nodes on one Redis, on this machine: redis-server on 6379
# (Debian's, installed if missing; no persistence: a demo), Plaza on ports
# 8001, 8002 and 8003 with the demo's stream namespace (deploy/demo.json
# without its map and board namespaces, which the Redis engine does not
# serve yet) and engine.type redis. Open http://localhost:8001/ and
# http://localhost:8002/ side by side: the lobby, presence and history are
# shared. Ctrl-C stops everything.
#
#   deploy/three-nodes.sh [REDIS_PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
REDIS_PORT=${1:-6379}
scripts/setup
if ! command -v redis-server >/dev/null; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
scripts/build build -DPLAZA_TEST_ENGINES=OFF
cfg=$(mktemp /tmp/plaza-three.XXXXXX.json)
node -e '
  const c = JSON.parse(require("fs").readFileSync("deploy/demo.json", "utf8"));
  c.channel.namespaces = c.channel.namespaces.filter((n) => !n.subscription_type && !n.board);
  delete c.port;
  console.log(JSON.stringify(c));' >"$cfg"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -f "$cfg"' EXIT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning &
pids+=($!)
for port in 8001 8002 8003; do
  build/plaza serve --config "$cfg" --web-root web --port "$port" --set store.path= \
    --set engine.type=redis --set engine.redis.address=127.0.0.1:"$REDIS_PORT" &
  pids+=($!)
done
wait
