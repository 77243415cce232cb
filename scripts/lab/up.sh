#!/usr/bin/env bash
# up.sh: install (if missing) and start the dualmetrics real-backend lab on 127.0.0.1.
#
#   bash scripts/lab/up.sh                   # default ports (8428, 2003, 8125, ...)
#   LAB_PORTS=auto LAB_DIR=$(mktemp -d) bash scripts/lab/up.sh   # free ports, written to $LAB_DIR/lab.env
#   bash scripts/lab/smoke.sh                # proves each backend answers
#   bash scripts/lab/down.sh [--purge]       # stops exactly the recorded PIDs
#
# Components (LAB_COMPONENTS, space separated; default "vm statsd prometheus vmagent-prom rotel"):
#   vm            VictoriaMetrics 1.112 single node (Debian trixie .deb, extracted, never apt-installed)
#                 http $LAB_VM_HTTP (PromQL, Graphite /render, /opentelemetry/v1/metrics, /api/v1/export),
#                 Graphite plaintext tcp+udp $LAB_VM_GRAPHITE
#   statsd        Etsy statsd 0.9.0 (npm) udp $LAB_STATSD_UDP, admin tcp $LAB_STATSD_MGMT,
#                 graphite backend -> vm:$LAB_VM_GRAPHITE
#   prometheus    Prometheus 2.53.3 (Debian trixie .deb) http $LAB_PROM_HTTP, remote-write receiver.
#                 Debian compiled its OTLP receiver out, so OTLP reaches it through vmagent-prom.
#   vmagent-prom  vmagent 1.112 http $LAB_VMAGENT_PROM_HTTP: /opentelemetry/v1/metrics
#                 (-opentelemetry.usePrometheusNaming) -> remote write -> prometheus
#   rotel         rotel collector (PyPI rotel==0.0.1a15) OTLP gRPC $LAB_ROTEL_GRPC, OTLP/HTTP $LAB_ROTEL_HTTP
#                 -> OTLP/HTTP -> $ROTEL_TARGET (vm | prometheus (via vmagent-prom) | a full URL)
#   vmagent       (optional) vmagent 1.112 with stream aggregation (outputs: [total]) http $LAB_VMAGENT_HTTP -> vm
#
# Ports: every port has a variable (defaults in brackets): LAB_VM_HTTP [8428] LAB_VM_GRAPHITE [2003]
#   LAB_STATSD_UDP [8125] LAB_STATSD_MGMT [8126] LAB_PROM_HTTP [9090] LAB_VMAGENT_HTTP [8429]
#   LAB_VMAGENT_PROM_HTTP [8430] LAB_ROTEL_GRPC [4317] LAB_ROTEL_HTTP [4318].
#   LAB_PORTS=auto picks a free port for every variable that is not set explicitly.
#   The ports actually used are written to $LAB_DIR/lab.env (KEY=VALUE lines, shell-sourceable).
#   A port already in use is an error that names the component and the port.
#
# Other knobs: LAB_DIR [/tmp/dualmetrics-lab] (data, configs, logs, pids/), LAB_PREFIX [/opt/dualmetrics-lab]
#   (installed software), LAB_VENV [$LAB_PREFIX/venv] (rotel + OpenTelemetry Python SDK for smoke.sh),
#   LAB_SKIP_INSTALL [0], LAB_INSTALL_ONLY [0], LAB_WITH_VENV [1] (0: no venv unless rotel is wanted),
#   LAB_START_TIMEOUT_S [60],
#   STATSD_FLUSH_MS [1000], STATSD_LEGACY_NAMESPACE [false], STATSD_DELETE_IDLE [false] (see below),
#   VM_PROM_NAMING [0], VMAGENT_AGGR_INTERVAL [10s], ROTEL_TARGET [vm], PROM_OOO_WINDOW [0s],
#   LAB_RETENTION [1d] (VictoriaMetrics and Prometheus).
#
# STATSD_DELETE_IDLE defaults to false: statsd then flushes every counter key it has seen as 0 on each
# later flush. That zero is what makes totals exact on every read path: sum_over_time() over the raw
# samples gives the total, and VictoriaMetrics' Graphite /render (which carries a lone sample forward
# for a few steps) still sums to the total because the next point is an explicit 0. With true, a
# counter flushed once shows up in /render as the same value at several consecutive steps.
#
# Exit status: 0 when every selected component answers its health/port probe; non-zero otherwise,
# naming the component and printing the tail of its log. Components this run started are then stopped.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_DIR=${LAB_DIR:-/tmp/dualmetrics-lab}
LAB_PREFIX=${LAB_PREFIX:-/opt/dualmetrics-lab}
LAB_VENV=${LAB_VENV:-$LAB_PREFIX/venv}
LAB_COMPONENTS=${LAB_COMPONENTS:-"vm statsd prometheus vmagent-prom rotel"}
LAB_SKIP_INSTALL=${LAB_SKIP_INSTALL:-0}
LAB_INSTALL_ONLY=${LAB_INSTALL_ONLY:-0}
LAB_PORTS=${LAB_PORTS:-fixed}
LAB_START_TIMEOUT_S=${LAB_START_TIMEOUT_S:-60}
LAB_RETENTION=${LAB_RETENTION:-1d}

STATSD_FLUSH_MS=${STATSD_FLUSH_MS:-1000}
STATSD_LEGACY_NAMESPACE=${STATSD_LEGACY_NAMESPACE:-false}
STATSD_DELETE_IDLE=${STATSD_DELETE_IDLE:-false}
VM_PROM_NAMING=${VM_PROM_NAMING:-0}
VMAGENT_AGGR_INTERVAL=${VMAGENT_AGGR_INTERVAL:-10s}
ROTEL_TARGET=${ROTEL_TARGET:-vm}
PROM_OOO_WINDOW=${PROM_OOO_WINDOW:-0s}

STATSD_VERSION=0.9.0
ROTEL_VERSION=0.0.1a15
OTEL_PY_VERSION=1.45.2
PROM_UPSTREAM=2.53.3      # trixie: prometheus 2.53.3+ds1-2
VM_UPSTREAM=1.112.        # trixie: victoria-metrics 1.112.0+ds1-2 (contains vmagent too)

H=127.0.0.1
KNOWN="vm statsd prometheus vmagent vmagent-prom rotel"
PORT_VARS="LAB_VM_HTTP LAB_VM_GRAPHITE LAB_STATSD_UDP LAB_STATSD_MGMT LAB_PROM_HTTP LAB_VMAGENT_HTTP LAB_VMAGENT_PROM_HTTP LAB_ROTEL_GRPC LAB_ROTEL_HTTP"
declare -A DEFAULT_PORT=([LAB_VM_HTTP]=8428 [LAB_VM_GRAPHITE]=2003 [LAB_STATSD_UDP]=8125 [LAB_STATSD_MGMT]=8126
  [LAB_PROM_HTTP]=9090 [LAB_VMAGENT_HTTP]=8429 [LAB_VMAGENT_PROM_HTTP]=8430 [LAB_ROTEL_GRPC]=4317 [LAB_ROTEL_HTTP]=4318)
declare -A PORT_OWNER=([LAB_VM_HTTP]=vm [LAB_VM_GRAPHITE]=vm [LAB_STATSD_UDP]=statsd [LAB_STATSD_MGMT]=statsd
  [LAB_PROM_HTTP]=prometheus [LAB_VMAGENT_HTTP]=vmagent [LAB_VMAGENT_PROM_HTTP]=vmagent-prom
  [LAB_ROTEL_GRPC]=rotel [LAB_ROTEL_HTTP]=rotel)
declare -A PORT_PROTO=([LAB_VM_GRAPHITE]="tcp udp" [LAB_STATSD_UDP]=udp)

BIN=$LAB_PREFIX/root/usr/bin
STATSD_DIR=$LAB_PREFIX/statsd
STATSD_JS=$STATSD_DIR/node_modules/statsd/stats.js
PIDS=$LAB_DIR/pids
LOGS=$LAB_DIR/logs
STARTED=""

log() { printf '[up %(%H:%M:%S)T] %s\n' -1 "$*"; }
err() { printf '[up] ERROR: %s\n' "$*" >&2; }
want() { [[ " $LAB_COMPONENTS " == *" $1 "* ]]; }
now_ms() { date +%s%3N; }
# running PID: exists and is not a zombie (an init that reaps late keeps exited servers as zombies)
running() { kill -0 "$1" 2>/dev/null && [[ $(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null) != Z ]]; }
alive() { local f=$PIDS/$1.pid; [[ -s $f ]] && running "$(cat "$f")"; }
rotel_bin() { compgen -G "$LAB_VENV/lib/python3*/site-packages/rotel/rotel-agent" | head -1; }

# fail COMPONENT MESSAGE [LOGFILE]: report, stop what this run started, exit non-zero
fail() {
  err "component '$1': $2"
  if [[ -n ${3:-} && -f $3 ]]; then
    echo "----- last 25 lines of $3 -----" >&2; tail -n 25 "$3" >&2; echo "-----" >&2
  fi
  if [[ -n $STARTED ]]; then
    log "stopping what this run started:$STARTED"
    LAB_DIR=$LAB_DIR LAB_DOWN_ONLY="$STARTED" bash "$HERE/down.sh" >&2 || true
  fi
  exit 1
}

for c in $LAB_COMPONENTS; do
  [[ " $KNOWN " == *" $c "* ]] || { err "unknown component '$c' in LAB_COMPONENTS (known: $KNOWN)"; exit 2; }
done
case $LAB_PORTS in fixed|auto) ;; *) err "LAB_PORTS must be 'fixed' or 'auto', not '$LAB_PORTS'"; exit 2;; esac
for t in curl ss setsid flock awk; do
  command -v $t >/dev/null || { err "required tool '$t' not found (install curl, iproute2, util-linux, gawk/mawk)"; exit 2; }
done
[[ $STATSD_FLUSH_MS =~ ^[0-9]+$ ]] || { err "STATSD_FLUSH_MS must be a number of milliseconds"; exit 2; }

# ---------------------------------------------------------------- install (idempotent, locked)
apt_mirror() {
  # the first non-security deb URI of the system's own apt configuration (deb822 or one-line format)
  local u=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    u=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)
  fi
  if [[ -z $u ]] && compgen -G '/etc/apt/sources.list*' >/dev/null; then
    u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1=="deb"{for(i=2;i<=NF;i++) if($i ~ /^[a-z]+:\/\//){print $i; break}}' | grep -v security | head -1 || true)
  fi
  [[ -n $u ]] || { echo "cannot derive a Debian mirror from /etc/apt" >&2; return 1; }
  echo "$u"
}

install_trixie() { # prometheus + victoria-metrics (+vmagent) from Debian trixie: download only, dpkg-deb -x
  [[ -x $BIN/prometheus && -x $BIN/victoria-metrics && -x $BIN/vmagent && -s $LAB_PREFIX/versions/victoria-metrics ]] && return 0
  local lg=$1 st=$LAB_PREFIX/.cache/apt-trixie mirror d
  log "downloading prometheus + victoria-metrics from Debian trixie (isolated apt state; the system is not upgraded)"
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { echo "apt-get/dpkg-deb not found" >>"$lg"; return 1; }
  mirror=$(apt_mirror 2>>"$lg") || return 1
  rm -rf "$st/debs" "$LAB_PREFIX/.staging"
  mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$st/debs" "$LAB_PREFIX/.staging" "$LAB_PREFIX/versions" || return 1
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$st/sources.list"
  local o=(-o Dir::Etc::SourceList="$st/sources.list" -o Dir::Etc::SourceParts=/nonexistent
           -o Dir::State::Lists="$st/lists" -o Dir::Cache="$st/cache" -o APT::Sandbox::User=root
           -o Debug::NoLocking=1)
  apt-get "${o[@]}" -q update >>"$lg" 2>&1 || return 1
  (cd "$st/debs" && apt-get "${o[@]}" -q download prometheus victoria-metrics) >>"$lg" 2>&1 || return 1
  for d in "$st/debs"/*.deb; do
    local pkg ver
    pkg=$(dpkg-deb -f "$d" Package) && ver=$(dpkg-deb -f "$d" Version) || return 1
    case $pkg in
      prometheus) [[ $ver == "$PROM_UPSTREAM"* ]] || { echo "trixie has prometheus $ver, expected $PROM_UPSTREAM" >>"$lg"; return 1; } ;;
      victoria-metrics) [[ $ver == "$VM_UPSTREAM"* ]] || { echo "trixie has victoria-metrics $ver, expected $VM_UPSTREAM*" >>"$lg"; return 1; } ;;
    esac
    dpkg-deb -x "$d" "$LAB_PREFIX/.staging" >>"$lg" 2>&1 || return 1
    echo "$ver" >"$LAB_PREFIX/versions/$pkg"
  done
  rm -rf "$LAB_PREFIX/root" && mv "$LAB_PREFIX/.staging" "$LAB_PREFIX/root" || return 1
  rm -rf "$st"   # ~100 MB of trixie package lists, not needed once the binaries are extracted
  [[ -x $BIN/prometheus && -x $BIN/victoria-metrics && -x $BIN/vmagent ]] || { echo "binaries missing after extraction" >>"$lg"; return 1; }
}

install_statsd() {
  if [[ -f $STATSD_JS ]] && [[ $(node -p "require('$STATSD_DIR/node_modules/statsd/package.json').version" 2>/dev/null) == "$STATSD_VERSION" ]]; then
    return 0
  fi
  local lg=$1
  log "npm install statsd@$STATSD_VERSION into $STATSD_DIR"
  command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm not found (apt-get install nodejs npm)" >>"$lg"; return 1; }
  mkdir -p "$STATSD_DIR" || return 1
  [[ -f $STATSD_DIR/package.json ]] || echo '{"name":"dualmetrics-lab-statsd","private":true}' >"$STATSD_DIR/package.json"
  (cd "$STATSD_DIR" && NPM_CONFIG_UPDATE_NOTIFIER=false npm install --no-audit --no-fund --omit=optional \
      "statsd@$STATSD_VERSION") >>"$lg" 2>&1 </dev/null || return 1
  [[ -f $STATSD_JS ]] || { echo "statsd/stats.js missing after npm install" >>"$lg"; return 1; }
}

install_venv() { # rotel (a gRPC/HTTP OTLP collector shipped as a wheel) + the OTel Python SDK for smoke.sh
  [[ -f $LAB_VENV/.dualmetrics-ok && -n $(rotel_bin) ]] && return 0
  local lg=$1
  log "creating venv $LAB_VENV (rotel==$ROTEL_VERSION, opentelemetry-sdk==$OTEL_PY_VERSION + OTLP exporters)"
  command -v python3 >/dev/null || { echo "python3 not found" >>"$lg"; return 1; }
  rm -rf "$LAB_VENV"
  python3 -m venv "$LAB_VENV" >>"$lg" 2>&1 || { echo "python3 -m venv failed (apt-get install python3-venv)" >>"$lg"; return 1; }
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$LAB_VENV/bin/pip" install --no-input -q "rotel==$ROTEL_VERSION" \
      "opentelemetry-sdk==$OTEL_PY_VERSION" "opentelemetry-exporter-otlp-proto-http==$OTEL_PY_VERSION" \
      "opentelemetry-exporter-otlp-proto-grpc==$OTEL_PY_VERSION" >>"$lg" 2>&1 </dev/null || return 1
  [[ -n $(rotel_bin) ]] || { echo "rotel-agent binary not found in the rotel wheel" >>"$lg"; return 1; }
  touch "$LAB_VENV/.dualmetrics-ok"
}

mkdir -p "$PIDS" "$LOGS"
touch "$LAB_DIR/.dualmetrics-lab"   # marker: down.sh --purge only deletes a directory that has it

if [[ $LAB_SKIP_INSTALL != 1 ]]; then
  mkdir -p "$LAB_PREFIX" || { err "cannot create LAB_PREFIX=$LAB_PREFIX"; exit 1; }
  exec 9>"$LAB_PREFIX/.install.lock"
  flock 9     # two up.sh runs sharing one prefix install one after the other
  t0=$(now_ms)
  if want vm || want prometheus || want vmagent || want vmagent-prom; then
    install_trixie "$LOGS/install-trixie.log" || fail "vm/prometheus/vmagent (install)" "download or extraction of the Debian trixie packages failed" "$LOGS/install-trixie.log"
  fi
  if want statsd; then
    install_statsd "$LOGS/install-statsd.log" || fail "statsd (install)" "npm install statsd@$STATSD_VERSION failed" "$LOGS/install-statsd.log"
  fi
  if want rotel || [[ ${LAB_WITH_VENV:-1} == 1 ]]; then
    install_venv "$LOGS/install-venv.log" || fail "rotel (install)" "venv / pip install failed" "$LOGS/install-venv.log"
  fi
  flock -u 9; exec 9>&-
  log "install check done in $(( $(now_ms) - t0 )) ms (prefix $LAB_PREFIX)"
fi
[[ $LAB_INSTALL_ONLY == 1 ]] && { log "LAB_INSTALL_ONLY=1: not starting anything"; exit 0; }

# ---------------------------------------------------------------- ports
in_use() { # in_use PORT PROTO -> prints the ss line(s) of a socket bound to PORT (any address, any state)
  local fl=-Htan; [[ $2 == udp ]] && fl=-Huan
  ss $fl "sport = :$1" 2>/dev/null | head -3
}
declare -A TAKEN=()
pick_free_port() { # a port in 20000-32767 (below the usual ephemeral range) that no socket uses
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12768 ))
    [[ -n ${TAKEN[$p]:-} ]] && continue
    [[ -z $(in_use "$p" tcp) && -z $(in_use "$p" udp) ]] && { echo "$p"; return 0; }
  done
  return 1
}

any_alive=0
for f in "$PIDS"/*.pid; do [[ -e $f ]] && running "$(cat "$f")" && any_alive=1; done
declare -A PREV=()
if [[ $any_alive == 1 && -f $LAB_DIR/lab.env ]]; then
  # part of this lab is already running: keep its ports for whatever was not set explicitly
  while IFS='=' read -r k v; do [[ " $PORT_VARS " == *" $k "* ]] && PREV[$k]=$v; done <"$LAB_DIR/lab.env"
fi
for v in $PORT_VARS; do
  if [[ -n ${!v:-} ]]; then
    [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} > 0 && ${!v} < 65536 )) || { err "$v='${!v}' is not a port number"; exit 2; }
  elif [[ -n ${PREV[$v]:-} ]]; then
    printf -v "$v" '%s' "${PREV[$v]}"
  elif [[ $LAB_PORTS == auto ]]; then
    p=$(pick_free_port) || { err "no free port found for $v"; exit 1; }
    printf -v "$v" '%s' "$p"
  else
    printf -v "$v" '%s' "${DEFAULT_PORT[$v]}"
  fi
  TAKEN[${!v}]=1
done
# the same port twice, or a port that something else already holds, is an error that names both
declare -A SEEN=(); conflicts=0
for v in $PORT_VARS; do
  want "${PORT_OWNER[$v]}" || continue
  p=${!v}
  if [[ -n ${SEEN[$p]:-} ]]; then err "port $p is configured twice: $v and ${SEEN[$p]}"; conflicts=1; fi
  SEEN[$p]=$v
  alive "${PORT_OWNER[$v]}" && continue   # it is ours and already running
  for proto in ${PORT_PROTO[$v]:-tcp}; do
    u=$(in_use "$p" "$proto")
    if [[ -n $u ]]; then
      err "component '${PORT_OWNER[$v]}' needs $proto port $p ($v), which is already in use:"
      sed 's/^/        /' <<<"$u" >&2
      conflicts=1
    fi
  done
done
if [[ $conflicts == 1 ]]; then
  err "choose other ports (set the variables above) or use LAB_PORTS=auto"; exit 1
fi

# ---------------------------------------------------------------- start helpers
http_ok() { curl -fsS -m 2 "$1"; }
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
udp_bound() { ss -Hlun "sport = :$1" | grep -F "$H:$1" >/dev/null; }

# start NAME CMD... : start CMD detached in its own session (setsid does not fork because this
# script is not a process-group leader, so $! is the server's own PID) and record the PID.
# Returns 1 (and starts nothing) if NAME is already running.
start() {
  local name=$1; shift
  if alive "$name"; then log "$name already running (pid $(cat "$PIDS/$name.pid"))"; return 1; fi
  [[ -x $1 ]] || command -v "$1" >/dev/null || fail "$name" "executable '$1' not found (install step skipped or incomplete?)"
  log "starting $name"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  STARTED+=" $name"
  return 0
}
# wait_for NAME CMD... : poll CMD until it succeeds; a dead process or a timeout is fatal
wait_for() {
  local name=$1; shift; local t0; t0=$(now_ms)
  while :; do
    if "$@" >/dev/null 2>&1; then log "$name ready in $(( $(now_ms) - t0 )) ms ($*)"; return 0; fi
    alive "$name" || fail "$name" "process exited during startup" "$LOGS/$name.log"
    (( $(now_ms) - t0 > LAB_START_TIMEOUT_S * 1000 )) &&
      fail "$name" "not ready after ${LAB_START_TIMEOUT_S} s" "$LOGS/$name.log"
    sleep 0.1
  done
}

T_START=$(now_ms)
# ---------------------------------------------------------------- VictoriaMetrics (single node)
if want vm; then
  vm_args=(-httpListenAddr=$H:$LAB_VM_HTTP -graphiteListenAddr=$H:$LAB_VM_GRAPHITE
           -storageDataPath="$LAB_DIR/vm" -retentionPeriod="$LAB_RETENTION"
           -search.latencyOffset=0s -search.disableCache
           -search.graphiteStorageStep="${STATSD_FLUSH_MS}ms" -loggerLevel=INFO)
  [[ $VM_PROM_NAMING == 1 ]] && vm_args+=(-opentelemetry.usePrometheusNaming)
  if start vm "$BIN/victoria-metrics" "${vm_args[@]}"; then wait_for vm http_ok "http://$H:$LAB_VM_HTTP/health"; fi
fi

# ---------------------------------------------------------------- statsd (Etsy, node)
if want statsd; then
  mkdir -p "$LAB_DIR/statsd"
  cat >"$LAB_DIR/statsd/config.js" <<EOF
{
  servers: [ { server: "./servers/udp", address: "$H", port: $LAB_STATSD_UDP } ],
  mgmt_address: "$H",
  mgmt_port: $LAB_STATSD_MGMT,
  graphiteHost: "$H",
  graphitePort: $LAB_VM_GRAPHITE,
  graphiteProtocol: "text",
  flushInterval: $STATSD_FLUSH_MS,
  percentThreshold: [90, 99],
  deleteIdleStats: $STATSD_DELETE_IDLE,
  automaticConfigReload: false,
  graphite: { legacyNamespace: $STATSD_LEGACY_NAMESPACE, globalPrefix: "stats" },
  backends: [ "./backends/graphite" ],
  title: false
}
EOF
  if start statsd node "$STATSD_JS" "$LAB_DIR/statsd/config.js"; then wait_for statsd udp_bound "$LAB_STATSD_UDP"; fi
fi

# ---------------------------------------------------------------- Prometheus
if want prometheus; then
  mkdir -p "$LAB_DIR/prometheus"
  cat >"$LAB_DIR/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 15s
  evaluation_interval: 15s
storage:
  tsdb:
    out_of_order_time_window: $PROM_OOO_WINDOW
scrape_configs: []
EOF
  if start prometheus "$BIN/prometheus" \
      --config.file="$LAB_DIR/prometheus/prometheus.yml" \
      --storage.tsdb.path="$LAB_DIR/prometheus/data" \
      --storage.tsdb.retention.time="$LAB_RETENTION" \
      --web.listen-address=$H:$LAB_PROM_HTTP \
      --enable-feature=native-histograms \
      --web.enable-remote-write-receiver \
      --web.enable-admin-api \
      --log.level=info; then
    wait_for prometheus http_ok "http://$H:$LAB_PROM_HTTP/-/ready"
  fi
fi

# ---------------------------------------------------------------- vmagent (optional: stream aggregation -> vm)
if want vmagent; then
  mkdir -p "$LAB_DIR/vmagent"
  cat >"$LAB_DIR/vmagent/streamaggr.yml" <<EOF
- match: '{__name__=~".+"}'
  interval: $VMAGENT_AGGR_INTERVAL
  outputs: [total]
EOF
  if start vmagent "$BIN/vmagent" -httpListenAddr=$H:$LAB_VMAGENT_HTTP \
      -remoteWrite.url=http://$H:$LAB_VM_HTTP/api/v1/write \
      -remoteWrite.tmpDataPath="$LAB_DIR/vmagent/tmp" \
      -streamAggr.config="$LAB_DIR/vmagent/streamaggr.yml" -streamAggr.keepInput \
      -remoteWrite.flushInterval=1s; then
    wait_for vmagent http_ok "http://$H:$LAB_VMAGENT_HTTP/health"
  fi
fi

# ---------------------------------------------------------------- vmagent-prom (OTLP -> Prometheus remote write)
# Prometheus rejects dotted names over remote write (Debian's legacy name validation), hence
# -opentelemetry.usePrometheusNaming here. One remote-write queue keeps each series in order:
# with the default 4 queues a later export can reach Prometheus first, and Prometheus (no
# out-of-order window) then rejects the earlier block with 400 and vmagent drops it.
if want vmagent-prom; then
  mkdir -p "$LAB_DIR/vmagent-prom"
  if start vmagent-prom "$BIN/vmagent" -httpListenAddr=$H:$LAB_VMAGENT_PROM_HTTP \
      -remoteWrite.url=http://$H:$LAB_PROM_HTTP/api/v1/write \
      -remoteWrite.tmpDataPath="$LAB_DIR/vmagent-prom/tmp" \
      -remoteWrite.flushInterval=1s -remoteWrite.queues=1 -opentelemetry.usePrometheusNaming; then
    wait_for vmagent-prom http_ok "http://$H:$LAB_VMAGENT_PROM_HTTP/health"
  fi
fi

# ---------------------------------------------------------------- rotel (OTLP gRPC/HTTP in, OTLP/HTTP out)
# With --otlp-exporter-protocol http the endpoint URL is used verbatim (full path). rotel refuses to
# start without a traces endpoint, so --otlp-exporter-endpoint is given too.
case $ROTEL_TARGET in
  prometheus) ROTEL_EP=http://$H:$LAB_VMAGENT_PROM_HTTP/opentelemetry/v1/metrics ;;
  vm)         ROTEL_EP=http://$H:$LAB_VM_HTTP/opentelemetry/v1/metrics ;;
  *)          ROTEL_EP=$ROTEL_TARGET ;;
esac
if want rotel; then
  mkdir -p "$LAB_DIR/rotel"
  if start rotel "$(rotel_bin)" start \
      --otlp-grpc-endpoint $H:$LAB_ROTEL_GRPC --otlp-http-endpoint $H:$LAB_ROTEL_HTTP \
      --pid-file "$LAB_DIR/rotel/rotel.pid" --log-file "$LAB_DIR/rotel/rotel.log" \
      --otlp-receiver-traces-disabled --otlp-receiver-logs-disabled \
      --exporter otlp --otlp-exporter-protocol http --otlp-exporter-compression none \
      --otlp-exporter-endpoint "$ROTEL_EP" --otlp-exporter-metrics-endpoint "$ROTEL_EP" \
      --batch-timeout 200ms; then
    wait_for rotel tcp_open $H "$LAB_ROTEL_GRPC"
    wait_for rotel tcp_open $H "$LAB_ROTEL_HTTP"
  fi
fi
log "started in $(( $(now_ms) - T_START )) ms"

# ---------------------------------------------------------------- versions
declare -A VER=()
VER[node]=$(node --version 2>/dev/null || echo unknown)
want statsd && VER[statsd]=$(node -p "require('$STATSD_DIR/node_modules/statsd/package.json').version" 2>/dev/null || echo unknown)
if want vm || want vmagent || want vmagent-prom; then
  # Debian's build prints an empty -version, so report the .deb version that was extracted
  VER[victoria_metrics]=$(cat "$LAB_PREFIX/versions/victoria-metrics" 2>/dev/null || echo unknown)
fi
want prometheus && VER[prometheus]=$("$BIN/prometheus" --version 2>&1 | awk 'NR==1{print $3}')
want rotel && VER[rotel]=$("$(rotel_bin)" --version 2>&1 | awk '{print $NF}' | tr -d '"')
VER[python_otel_sdk]=$("$LAB_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("opentelemetry-sdk"))' 2>/dev/null || echo none)

# ---------------------------------------------------------------- lab.env
{
  echo "# written by scripts/lab/up.sh at $(date -u +%FT%TZ); shell-sourceable KEY=VALUE"
  echo "LAB_DIR=$LAB_DIR"
  echo "LAB_PREFIX=$LAB_PREFIX"
  echo "LAB_VENV=$LAB_VENV"
  echo "LAB_HOST=$H"
  echo "LAB_COMPONENTS=\"$LAB_COMPONENTS\""
  for v in $PORT_VARS; do want "${PORT_OWNER[$v]}" && echo "$v=${!v}"; done
  echo "STATSD_FLUSH_MS=$STATSD_FLUSH_MS"
  echo "STATSD_DELETE_IDLE=$STATSD_DELETE_IDLE"
  echo "STATSD_LEGACY_NAMESPACE=$STATSD_LEGACY_NAMESPACE"
  echo "VM_PROM_NAMING=$VM_PROM_NAMING"
  want rotel && echo "ROTEL_TARGET=$ROTEL_TARGET" && echo "ROTEL_EXPORT_URL=$ROTEL_EP"
  for k in $(printf '%s\n' "${!VER[@]}" | sort); do echo "LAB_VERSION_${k^^}=${VER[$k]}"; done
} >"$LAB_DIR/lab.env.tmp"
mv "$LAB_DIR/lab.env.tmp" "$LAB_DIR/lab.env"

log "lab up: LAB_DIR=$LAB_DIR  (ports and versions in $LAB_DIR/lab.env)"
for k in $(printf '%s\n' "${!VER[@]}" | sort); do printf '  version %-18s %s\n' "$k" "${VER[$k]}"; done
for f in "$PIDS"/*.pid; do
  [[ -e $f ]] || continue
  n=$(basename "$f" .pid); p=$(cat "$f")
  ports=""; for v in $PORT_VARS; do [[ ${PORT_OWNER[$v]} == "$n" ]] && ports+=" ${v#LAB_}=${!v}"; done
  if running "$p"; then
    printf '  %-13s pid %-7s rss %6s KiB %s\n' "$n" "$p" "$(awk '/VmRSS/{print $2}' "/proc/$p/status")" "$ports"
  else
    fail "$n" "recorded pid $p is not running" "$LOGS/$n.log"
  fi
done
