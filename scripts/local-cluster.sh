#!/usr/bin/env bash
# A herald cluster on loopback in one command: three nats-server nodes
# (JetStream, clustered, with deploy/nats/cluster.conf, the file the e2e
# cluster tests run) and two herald nodes on them with replicas: 3.
# See docs/operations.md, "A local cluster in one command".
#
#   scripts/local-cluster.sh start    build, start what is not running, wait until every node is ready
#   scripts/local-cluster.sh status   one line per process; exit 0 all up, 1 some, 3 none
#   scripts/local-cluster.sh stop     SIGTERM to every process (herald first), wait until they are gone
#   scripts/local-cluster.sh clean    stop, then remove the state directory's data, logs and binaries
#
# Environment [default]:
#   LOCAL_CLUSTER_DIR            binaries, data, logs, pid files [.local-cluster in the repository]
#   LOCAL_CLUSTER_HERALD_PORTS   the herald nodes' HTTP ports [18081 18082]
#   LOCAL_CLUSTER_NATS_PORTS     NATS client ports [14222 14223 14224]
#   LOCAL_CLUSTER_ROUTE_PORTS    NATS cluster (route) ports [16222 16223 16224]
#   LOCAL_CLUSTER_MONITOR_PORTS  NATS monitoring ports, probed at /healthz [18222 18223 18224]
#   LOCAL_CLUSTER_TIMEOUT        seconds any one wait may take [60]
#   HERALD_BIN, NATS_SERVER_BIN  prebuilt binaries; unset, they are built with go into the state dir
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prog=scripts/local-cluster.sh

die() {
  echo "local-cluster: $*" >&2
  exit 1
}

read -r -a herald_ports <<<"${LOCAL_CLUSTER_HERALD_PORTS:-18081 18082}"
read -r -a nats_ports <<<"${LOCAL_CLUSTER_NATS_PORTS:-14222 14223 14224}"
read -r -a route_ports <<<"${LOCAL_CLUSTER_ROUTE_PORTS:-16222 16223 16224}"
read -r -a monitor_ports <<<"${LOCAL_CLUSTER_MONITOR_PORTS:-18222 18223 18224}"
timeout_s=${LOCAL_CLUSTER_TIMEOUT:-60}

check_settings() {
  [ ${#herald_ports[@]} -eq 2 ] || die "LOCAL_CLUSTER_HERALD_PORTS needs 2 ports, got '${herald_ports[*]}'"
  [ ${#nats_ports[@]} -eq 3 ] || die "LOCAL_CLUSTER_NATS_PORTS needs 3 ports, got '${nats_ports[*]}'"
  [ ${#route_ports[@]} -eq 3 ] || die "LOCAL_CLUSTER_ROUTE_PORTS needs 3 ports, got '${route_ports[*]}'"
  [ ${#monitor_ports[@]} -eq 3 ] || die "LOCAL_CLUSTER_MONITOR_PORTS needs 3 ports, got '${monitor_ports[*]}'"
  local v all=("${herald_ports[@]}" "${nats_ports[@]}" "${route_ports[@]}" "${monitor_ports[@]}")
  for v in "${all[@]}"; do
    if ! [[ $v =~ ^[0-9]+$ ]] || [ "$v" -lt 1 ] || [ "$v" -gt 65535 ]; then
      die "not a port: '$v'"
    fi
  done
  [ "$(printf '%s\n' "${all[@]}" | sort -u | wc -l)" -eq ${#all[@]} ] || die "the 11 ports must differ: ${all[*]}"
  if ! [[ $timeout_s =~ ^[0-9]+$ ]] || [ "$timeout_s" -eq 0 ]; then
    die "LOCAL_CLUSTER_TIMEOUT must be a number of seconds, got '$timeout_s'"
  fi
}

# state_dir makes the state directory and sets dir to its absolute path.
state_dir() {
  local d=${LOCAL_CLUSTER_DIR:-$repo/.local-cluster}
  mkdir -p "$d" || die "cannot create the state directory $d"
  dir=$(cd "$d" && pwd)
  show=${dir#"$PWD"/} # for messages: relative when under the working directory
}

nodes=(nats-1 nats-2 nats-3 herald-1 herald-2)

# index of a node within its kind: nats-2 → 1.
idx() { echo $((${1##*-} - 1)); }

# alive PID: the process exists and is not a zombie.
alive() {
  if [ -r "/proc/$1/stat" ]; then
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
  else
    kill -0 "$1" 2>/dev/null
  fi
}

# ours PID NODE: the process was started by this script for NODE (each
# gets LOCAL_CLUSTER_NODE in its environment), so a pid file whose pid
# was reused by another program is not taken for the node.
ours() {
  [ -r "/proc/$1/environ" ] || return 0 # no /proc: trust the pid file
  grep -qzxF "LOCAL_CLUSTER_NODE=$dir/$2" "/proc/$1/environ" 2>/dev/null
}

# pid_of NODE prints the node's pid if it runs, and removes a stale pid file.
pid_of() {
  local f="$dir/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && ours "$pid" "$1"; then
    echo "$pid"
    return 0
  fi
  rm -f "$f"
  return 1
}

# port_busy PORT: something accepts connections on 127.0.0.1:PORT.
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

node_ports() {
  local i
  i=$(idx "$1")
  case $1 in
  nats-*) echo "${nats_ports[$i]} ${route_ports[$i]} ${monitor_ports[$i]}" ;;
  herald-*) echo "${herald_ports[$i]}" ;;
  esac
}

nats_url() { echo "nats://127.0.0.1:${nats_ports[$1]}"; }
nats_urls() { echo "$(nats_url 0),$(nats_url 1),$(nats_url 2)"; }
herald_url() { echo "http://127.0.0.1:${herald_ports[$1]}"; }
monitor_url() { echo "http://127.0.0.1:${monitor_ports[$1]}"; }

# probe NODE: the node answers its health check (NATS /healthz: JetStream
# current with the meta leader and every stream on the node current;
# herald /readyz). Prints the answer.
probe() {
  local i url out
  i=$(idx "$1")
  case $1 in
  nats-*) url="$(monitor_url "$i")/healthz" ;;
  herald-*) url="$(herald_url "$i")/readyz" ;;
  esac
  out=$(curl -s -m 2 -w ' (HTTP %{http_code})' "$url") || {
    echo "no answer from $url"
    return 1
  }
  out=${out//$'\n'/}
  echo "$out"
  [[ $out == *"(HTTP 200)" ]]
}

log_tail() {
  echo "--- last lines of $show/$1.log:" >&2
  tail -n 15 "$dir/$1.log" >&2 || true
}

# wait_ready NODE DEADLINE: polls the node's health check until it
# passes (0), the node exits (2), or SECONDS reaches DEADLINE (die).
wait_ready() {
  local pid last=""
  pid=$(cat "$dir/$1.pid")
  while :; do
    alive "$pid" || return 2
    if last=$(probe "$1"); then
      return 0
    fi
    if [ $SECONDS -ge "$2" ]; then
      log_tail "$1"
      die "$1 was not ready within ${timeout_s}s (last answer: ${last:-none}); the other nodes are left running: $prog stop"
    fi
    sleep 0.5
  done
}

# What herald says when it gives up on a cluster that is still electing
# its stream leaders (after a restart of every node, say): worth a retry.
transient='context deadline exceeded|timeout|no responders|temporarily unavailable|no suitable peers|insufficient resources'

build() {
  if [ -n "${HERALD_BIN:-}" ]; then
    herald_bin=$HERALD_BIN
  else
    herald_bin=$dir/bin/herald
    command -v go >/dev/null || die "go is not installed: install Go, or set HERALD_BIN and NATS_SERVER_BIN"
    echo "building herald (./cmd/herald) into $show/bin/herald"
    (cd "$repo" && go build -o "$herald_bin" ./cmd/herald) || die "go build ./cmd/herald failed"
  fi
  if [ -n "${NATS_SERVER_BIN:-}" ]; then
    nats_bin=$NATS_SERVER_BIN
  else
    nats_bin=$dir/bin/nats-server
    command -v go >/dev/null || die "go is not installed: install Go, or set HERALD_BIN and NATS_SERVER_BIN"
    # The version go.mod requires, from the module cache or proxy.
    echo "building nats-server (github.com/nats-io/nats-server/v2, go.mod's version) into $show/bin/nats-server"
    (cd "$repo" && go build -o "$nats_bin" github.com/nats-io/nats-server/v2) || die "go build nats-server failed"
  fi
  [ -x "$herald_bin" ] || die "HERALD_BIN: $herald_bin is not an executable"
  [ -x "$nats_bin" ] || die "NATS_SERVER_BIN: $nats_bin is not an executable"
}

# launch NODE CMD...: starts CMD in its own session, detached from the
# terminal and from the caller's output, and records its pid.
launch() {
  local node=$1
  shift
  echo "=== $(date '+%F %T') $prog start: $*" >>"$dir/$node.log"
  LOCAL_CLUSTER_NODE="$dir/$node" setsid "$@" </dev/null >>"$dir/$node.log" 2>&1 &
  echo $! >"$dir/$node.pid"
}

start_nats() {
  local i routes=() j
  i=$(idx "$1")
  for j in 0 1 2; do
    [ "$j" -eq "$i" ] || routes+=("nats://127.0.0.1:${route_ports[$j]}")
  done
  mkdir -p "$dir/$1"
  # Exactly the tests' invocation of deploy/nats/cluster.conf, plus -m for
  # /healthz (bound to the listen host, 127.0.0.1).
  NATS_NAME=$1 NATS_LISTEN=127.0.0.1:${nats_ports[$i]} NATS_CLUSTER_LISTEN=127.0.0.1:${route_ports[$i]} \
    NATS_STORE=$dir/$1 NATS_ROUTE_1=${routes[0]} NATS_ROUTE_2=${routes[1]} \
    launch "$1" "$nats_bin" -c "$repo/deploy/nats/cluster.conf" -m "${monitor_ports[$i]}"
}

# start_herald NODE starts the node and waits until it is ready, starting
# it again while it gives up on a cluster that is not ready yet.
start_herald() {
  local i from deadline=$((SECONDS + timeout_s)) why
  i=$(idx "$1")
  mkdir -p "$dir/$1"
  while :; do
    from=1
    [ ! -f "$dir/$1.log" ] || from=$(($(wc -c <"$dir/$1.log") + 1))
    launch "$1" "$herald_bin" serve --config "$dir/herald.yaml" --data "$dir/$1" \
      --listen "127.0.0.1:${herald_ports[$i]}" --nats "$(nats_urls)"
    wait_ready "$1" "$deadline" && return 0
    why=$(tail -c +"$from" "$dir/$1.log" | grep -E '^herald: ' | tail -n 1)
    if [ $SECONDS -lt $deadline ] && grep -qE "$transient" <<<"$why"; then
      echo "$1: ${why#herald: }; starting it again"
      continue
    fi
    log_tail "$1"
    die "$1 exited while starting (see $show/$1.log)"
  done
}

# save_key keeps the API key herald-1 printed at the cluster's first start
# (herald shows it only once; herald-2 finds the bootstrap done).
save_key() {
  local key
  key=$(sed -n 's/^  API key: //p' "$dir/herald-1.log" | tail -n 1)
  [ -n "$key" ] || return 0
  (umask 077 && echo "$key" >"$dir/api-key")
}

print_info() {
  local key="unknown: herald prints it at the cluster's first start only; '$prog clean' starts afresh"
  [ ! -s "$dir/api-key" ] || key="$(cat "$dir/api-key")   (in $show/api-key)"
  cat <<EOF
  herald-1  $(herald_url 0)   ws://127.0.0.1:${herald_ports[0]}/websocket?x-auth-scheme=api-token
  herald-2  $(herald_url 1)   ws://127.0.0.1:${herald_ports[1]}/websocket?x-auth-scheme=api-token
  NATS      $(nats_urls)
  API key   $key
  logs      $show/*.log

Publish to herald-1:
  curl -s -X POST $(herald_url 0)/api/events -H "x-auth-apikey: \$(cat $show/api-key)" \\
    -d '{"entity":"POLICY_ALERT","type":"CREATE","entityUuid":"alert-1","deviceUuid":"camera-1","policyAlertTriggers":["MOTION_HUMAN"]}'
Watch on herald-2:
  ${HERALD_BIN:-$show/bin/herald} monitor --url ws://127.0.0.1:${herald_ports[1]} --api-key "\$(cat $show/api-key)" --after 0
Stop: $prog stop    (clean: stop and remove the data)
EOF
}

cmd_start() {
  command -v curl >/dev/null || die "curl is needed to probe the nodes"
  command -v setsid >/dev/null || die "setsid (util-linux) is needed to detach the nodes"
  state_dir
  local node down=() busy=() p
  for node in "${nodes[@]}"; do
    pid_of "$node" >/dev/null || down+=("$node")
  done
  if [ ${#down[@]} -eq 0 ]; then
    echo "local cluster already running (state in $show)"
    print_info
    return 0
  fi
  for node in "${down[@]}"; do
    for p in $(node_ports "$node"); do
      port_busy "$p" && busy+=("127.0.0.1:$p ($node)")
    done
  done
  [ ${#busy[@]} -eq 0 ] || die "port in use by another program: ${busy[*]}; stop it or choose other ports (LOCAL_CLUSTER_*_PORTS, see $prog)"
  build
  cat >"$dir/herald.yaml" <<'EOF'
# Written by scripts/local-cluster.sh at every start. --nats, --listen and
# --data are given on the command line. Durability is the NATS servers'
# (sync_interval: always in deploy/nats/cluster.conf): herald's own sync
# setting applies to the embedded engine only.
replicas: 3
EOF
  echo "starting: ${down[*]} (state in $show)"
  for node in "${down[@]}"; do
    case $node in nats-*) start_nats "$node" ;; esac
  done
  local deadline=$((SECONDS + timeout_s))
  for node in nats-1 nats-2 nats-3; do
    wait_ready "$node" "$deadline" || {
      log_tail "$node"
      die "$node exited while starting (see $show/$node.log)"
    }
  done
  # One herald node after the other: the first start of the first creates
  # the default org and its key.
  for node in herald-1 herald-2; do
    if [[ " ${down[*]} " == *" $node "* ]]; then
      start_herald "$node"
      [ "$node" = herald-2 ] || save_key
    fi
  done
  echo "local cluster running"
  print_info
}

# stop_nodes SIGNAL NODE...: signals the running nodes and waits until
# they are gone, then SIGKILLs what outlived LOCAL_CLUSTER_TIMEOUT.
stop_nodes() {
  local sig=$1 node pid i pids=() names=() deadline=$((SECONDS + timeout_s)) left
  shift
  for node in "$@"; do
    pid=$(pid_of "$node") || continue
    kill "-$sig" "$pid" 2>/dev/null || true
    pids+=("$pid")
    names+=("$node")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  echo "stopping: ${names[*]}"
  while :; do
    left=()
    for i in "${!pids[@]}"; do
      alive "${pids[$i]}" && left+=("$i")
    done
    [ ${#left[@]} -gt 0 ] || break
    if [ $SECONDS -ge $deadline ]; then
      for i in "${left[@]}"; do
        echo "local-cluster: ${names[$i]} (pid ${pids[$i]}) outlived SIG$sig for ${timeout_s}s: SIGKILL" >&2
        kill -KILL "${pids[$i]}" 2>/dev/null || true
      done
      deadline=$((SECONDS + timeout_s))
      sig=KILL
      continue
    fi
    sleep 0.1
  done
  for node in "${names[@]}"; do
    rm -f "$dir/$node.pid"
  done
}

cmd_stop() {
  state_dir
  local node running=0
  for node in "${nodes[@]}"; do
    pid_of "$node" >/dev/null && running=$((running + 1))
  done
  if [ $running -eq 0 ]; then
    echo "local cluster not running (state in $show)"
    return 0
  fi
  # herald first: it closes its clients' connections while NATS is up.
  stop_nodes TERM herald-1 herald-2
  stop_nodes TERM nats-1 nats-2 nats-3
  echo "local cluster stopped (data kept in $show; '$prog clean' removes it)"
}

cmd_status() {
  state_dir
  local node pid i up=0 addr answer
  for node in "${nodes[@]}"; do
    i=$(idx "$node")
    case $node in
    nats-*) addr="$(nats_url "$i")  (monitor $(monitor_url "$i"))" ;;
    herald-*) addr=$(herald_url "$i") ;;
    esac
    if pid=$(pid_of "$node"); then
      up=$((up + 1))
      answer=$(probe "$node") || true
      printf '%-9s running  pid %-7s %s  %s\n' "$node" "$pid" "$addr" "$answer"
    else
      printf '%-9s stopped            %s\n' "$node" "$addr"
    fi
  done
  [ $up -eq ${#nodes[@]} ] && return 0
  [ $up -eq 0 ] && return 3
  return 1
}

cmd_clean() {
  cmd_stop
  local node
  for node in "${nodes[@]}"; do
    rm -rf "${dir:?}/$node" "$dir/$node.log" "$dir/$node.pid"
  done
  rm -rf "${dir:?}/bin" "$dir/api-key" "$dir/herald.yaml"
  rmdir "$dir" 2>/dev/null || true
  echo "removed the local cluster's data, logs and binaries"
}

check_settings
case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
clean) cmd_clean ;;
*)
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
  ;;
esac
