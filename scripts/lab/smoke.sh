#!/usr/bin/env bash
# smoke.sh: end-to-end proof that the lab started by up.sh works (ports come from $LAB_DIR/lab.env).
#  1. StatsD lines (counter, sampled counter, gauge, gauge delta, timer, set, DogStatsD tags)
#     -> UDP statsd -> statsd graphite backend -> VictoriaMetrics graphite listener,
#     read back via VM PromQL (/api/v1/query) and VM Graphite render API (/render).
#  2. OTLP metrics from the OpenTelemetry Python SDK (scripts/lab/otlp_send.py), cumulative AND delta:
#       a. OTLP/HTTP -> VictoriaMetrics /opentelemetry/v1/metrics
#       b. OTLP/HTTP -> vmagent-prom -> remote write -> Prometheus (Debian's Prometheus has no OTLP receiver)
#       c. OTLP/gRPC -> rotel -> OTLP/HTTP -> $ROTEL_TARGET
#     read back with PromQL: counter value, rate(), increase(), histogram_quantile().
# Prints "smoke: N passed, M failed"; exit status 1 if any check fails, 2 if the lab is not running.
# Bounded: sends a fixed number of packets/requests; each check polls for at most POLL_S [15] s.
set -uo pipefail
LAB_DIR=${LAB_DIR:-/tmp/dualmetrics-lab}
[[ -f $LAB_DIR/lab.env ]] || { echo "smoke: $LAB_DIR/lab.env not found; run scripts/lab/up.sh first" >&2; exit 2; }
# shellcheck disable=SC1091
source "$LAB_DIR/lab.env"
command -v jq >/dev/null || { echo "smoke: jq is required" >&2; exit 2; }
FLUSH_S=$(awk -v ms="$STATSD_FLUSH_MS" 'BEGIN{print ms/1000}')
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=$LAB_VENV/bin/python
H=127.0.0.1; VM=http://$H:$LAB_VM_HTTP; PROM=http://$H:${LAB_PROM_HTTP:-0}
RUN=r$(date +%s%N | cut -c1-13)
fails=0; checks=0

alive() { local f=$LAB_DIR/pids/$1.pid p; [[ -s $f ]] || return 1; p=$(cat "$f")
          kill -0 "$p" 2>/dev/null && [[ $(awk '/^State:/{print $2}' "/proc/$p/status" 2>/dev/null) != Z ]]; }
# pq BASEURL PROMQL -> "v1 v2 ..." (one value per series, sorted by labels)
pq() { curl -s -m 5 "$1/api/v1/query" --data-urlencode "query=$2" |
       jq -r '[.data.result | sort_by(.metric|tostring)[] | .value[1]] | join(" ")'; }
show() { printf '  %-58s -> %s\n' "$1" "$2"; }
check() { # check LABEL ACTUAL EXPECTED
  checks=$((checks+1))
  if [[ "$2" == "$3" ]]; then printf '  [ok]   %-52s = %s\n' "$1" "$2"
  else printf '  [FAIL] %-52s = "%s" (expected "%s")\n' "$1" "$2" "$3"; fails=$((fails+1)); fi
}
# echeck LABEL EXPECTED CMD... : like check, but re-runs CMD every 0.5 s for up to $POLL_S s until it
# yields EXPECTED (VictoriaMetrics makes freshly ingested samples searchable only after ~1-3 s).
POLL_S=${POLL_S:-15}
echeck() {
  local label=$1 exp=$2 got t0=$SECONDS; shift 2
  while :; do
    got=$("$@")
    [[ "$got" == "$exp" ]] && break
    (( SECONDS - t0 >= POLL_S )) && break
    sleep 0.5
  done
  check "$label" "$got" "$exp"
}
tags_q() { curl -s "$VM/api/v1/query" --data-urlencode "query=sum_over_time({__name__=\"$1\"}[2m])" |
           jq -r '[.data.result[] | "\(.metric.env)/\(.metric.region)=\(.value[1])"] | sort | join(",")'; }
render_sum() { # BASE TARGET [extra curl args]
  local b=$1 t=$2; shift 2
  curl -s "$b/render" --data-urlencode "target=$t" --data-urlencode format=json --data-urlencode from=-5min "$@" |
    jq -r '[.[0].datapoints[][0] | select(. != null)] | add'; }

for c in vm statsd; do alive $c || { echo "lab component '$c' not running; run up.sh first" >&2; exit 2; }; done
echo "smoke run id: $RUN   (LAB_DIR=$LAB_DIR, statsd flush ${FLUSH_S}s)"

# ------------------------------------------------------------------ 1. StatsD
echo; echo "== 1. StatsD -> statsd 0.9.0 -> graphite plaintext -> VictoriaMetrics"
S=smoke.$RUN
send() { printf '%s' "$1" >"/dev/udp/$H/$LAB_STATSD_UDP"; }
send "$S.hits:5|c
$S.hits:3|c
$S.hits:2|c|@0.5"                       # 5+3+2/0.5 = 12 (one flush: rate = 12/flush)
send "$S.queue:42|g
$S.queue:+8|g"                                     # 50 (one datagram: one flush)
send "$S.lat:100|ms
$S.lat:200|ms
$S.lat:300|ms"
send "$S.users:alice|s
$S.users:bob|s
$S.users:alice|s"               # 2 unique
send "$S.tagged:7|c|#env:prod,region:eu"; send "$S.tagged:1|c|#env:prod,region:us"
send "$S.multi:1|c
$S.multi:2|c"                                                            # 2 lines in one datagram
sleep "$(awk -v f="$FLUSH_S" 'BEGIN{print f*2.5+0.5}')"

c="stats.counters.$S"
echo "  metric names VM received for this run:"
curl -s "$VM/api/v1/label/__name__/values" | jq -r '.data[]' | grep -F "$S" | sed 's/^/    /' | head -40
echeck "statsd counter  sum_over_time(${c#stats.counters.}.hits.count)" 12 \
  pq $VM "sum_over_time({__name__=\"$c.hits.count\"}[2m])"
echeck "statsd counter  max_over_time(.hits.rate)  [per second]" "$(awk -v f="$FLUSH_S" 'BEGIN{print 12/f}')" \
  pq $VM "max_over_time({__name__=\"$c.hits.rate\"}[2m])"
echeck "statsd gauge    last_over_time(stats.gauges...queue)" 50 \
  pq $VM "last_over_time({__name__=\"stats.gauges.$S.queue\"}[2m])"
echeck "statsd timer    max_over_time(stats.timers...lat.upper_90)" 300 \
  pq $VM "max_over_time({__name__=\"stats.timers.$S.lat.upper_90\"}[2m])"
echeck "statsd timer    sum_over_time(stats.timers...lat.count)" 3 \
  pq $VM "sum_over_time({__name__=\"stats.timers.$S.lat.count\"}[2m])"
echeck "statsd set      max_over_time(stats.sets...users.count)" 2 \
  pq $VM "max_over_time({__name__=\"stats.sets.$S.users.count\"}[2m])"
echeck "statsd multi-line datagram  sum(.multi.count)" 3 \
  pq $VM "sum_over_time({__name__=\"$c.multi.count\"}[2m])"
echeck "dogstatsd tags -> labels {env,region}" "prod/eu=7,prod/us=1" tags_q "$c.tagged.count"
echo "  VM Graphite render API (/render, storage_step = flush interval):"
echeck "VM /render summarize(hits.count,1h,sum)" 12 \
  render_sum $VM "summarize($c.hits.count,'1h','sum')" --data-urlencode "storage_step=${FLUSH_S}s"
r=$(curl -s "$VM/render" --data-urlencode "target=seriesByTag('name=$c.tagged.count','region=eu')" \
      --data-urlencode format=json --data-urlencode from=-5min --data-urlencode "storage_step=${FLUSH_S}s")
show "VM /render seriesByTag(name=...tagged.count, region=eu)" "$(jq -c '[.[] | {target, sum: ([.datapoints[][0] | select(. != null)] | add)}]' <<<"$r")"
show "VM /render without storage_step arg (server -search.graphiteStorageStep)" \
  "$(render_sum $VM "summarize($c.hits.count,'1h','sum')")"


# ------------------------------------------------------------------ 2. OTLP
echo; echo "== 2. OTLP (OpenTelemetry Python SDK $("$PY" -c 'import importlib.metadata as m; print(m.version("opentelemetry-sdk"))'))"
send_otlp() { # LABEL PROTOCOL ENDPOINT TEMPORALITY RUNID
  echo "  -- $1: $4 via $2 $3 (run=$5)"
  "$PY" "$HERE/otlp_send.py" --protocol "$2" --endpoint "$3" --temporality "$4" --run "$5" --rounds 2 --pause 1.2 2>&1 | sed 's/^/     /'
}
# report BACKEND_URL RUNID : print what the backend holds for a run
report() {
  local b=$1 r=$2
  show "series names for run=$r" "$(curl -s "$b/api/v1/series" --data-urlencode "match[]={run=\"$r\"}" | jq -r '[.data[].__name__] | unique | join(" ")')"
}
ctr='{__name__=~"http.server.requests|http_server_requests_total",run="%s"}'
bkt='{__name__=~"lab.latency_bucket|lab_latency_milliseconds_bucket",run="%s"}'
xbk='{__name__=~"lab.latency.exp_bucket|lab_latency_exp_milliseconds_bucket",run="%s"}'
otlp_checks() { # LABEL BACKEND_URL RUN_CUMULATIVE RUN_DELTA
  local l=$1 b=$2 rc=$3 rd=$4 q
  report "$b" "$rc"; report "$b" "$rd"
  q=$(printf "$ctr" "$rc"); echeck "$l cumulative counter value" 8 pq "$b" "$q"
  show "$l rate($q[1m])" "$(pq "$b" "rate($q[1m])")"
  show "$l increase($q[1m])" "$(pq "$b" "increase($q[1m])")"
  q=$(printf "$bkt" "$rc"); echeck "$l histogram_quantile(0.9, explicit buckets)" 800 pq "$b" "histogram_quantile(0.9, sum by (le) ($q))"
  q=$(printf "$xbk" "$rc"); show "$l histogram_quantile(0.9, exp. histogram as vmrange buckets; Prometheus cannot use vmrange)" "$(pq "$b" "histogram_quantile(0.9, sum by (vmrange) ($q))")"
  show "$l lab.latency count / sum" "$(pq "$b" "{__name__=~\"lab.latency_(count|sum)|lab_latency_milliseconds_(count|sum)\",run=\"$rc\"}")"
  echeck "$l DELTA run: cumulative UpDownCounter kept" 3 pq "$b" "{__name__=~\"lab.inflight|lab_inflight\",run=\"$rd\"}"
  q=$(printf "$ctr" "$rd"); check "$l DELTA counter stored? (1.112 parser drops delta)" "$(pq "$b" "count($q)")" ""
  q=$(printf "$bkt" "$rd"); check "$l DELTA histogram stored? (dropped)" "$(pq "$b" "count($q)")" ""
}

send_otlp "VictoriaMetrics direct" http "$VM/opentelemetry/v1/metrics" cumulative "${RUN}vc"
send_otlp "VictoriaMetrics direct" http "$VM/opentelemetry/v1/metrics" delta      "${RUN}vd"
if alive vmagent-prom && alive prometheus; then
  send_otlp "Prometheus via vmagent-prom" http "http://$H:$LAB_VMAGENT_PROM_HTTP/opentelemetry/v1/metrics" cumulative "${RUN}pc"
  send_otlp "Prometheus via vmagent-prom" http "http://$H:$LAB_VMAGENT_PROM_HTTP/opentelemetry/v1/metrics" delta      "${RUN}pd"
fi
if alive rotel; then
  send_otlp "rotel gRPC" grpc "http://$H:$LAB_ROTEL_GRPC" cumulative "${RUN}rc"
  send_otlp "rotel gRPC" grpc "http://$H:$LAB_ROTEL_GRPC" delta      "${RUN}rd"
fi
sleep 3   # vmagent remote-write flush (1 s) + rotel batch (200 ms) + VM ingestion buffer

echo; echo "  [VictoriaMetrics, OTLP/HTTP direct]"
otlp_checks "VM" "$VM" "${RUN}vc" "${RUN}vd"
echo "  VM dropped-row counters: $(curl -s "$VM/metrics" | grep '^vm_protoparser_rows_dropped_total{type="opentelemetry"' | sed 's/vm_protoparser_rows_dropped_total{type="opentelemetry",//' | tr '\n' ' ')"
if alive vmagent-prom && alive prometheus; then
  echo; echo "  [Prometheus 2.53.3, OTLP/HTTP -> vmagent-prom -> remote write]"
  otlp_checks "Prom" "$PROM" "${RUN}pc" "${RUN}pd"
fi
if alive rotel; then
  tgt=${ROTEL_TARGET:-vm}
  case $tgt in prometheus) rb=$PROM ;; *) rb=$VM ;; esac
  echo; echo "  [rotel OTLP/gRPC :$LAB_ROTEL_GRPC -> $tgt]"
  otlp_checks "rotel" "$rb" "${RUN}rc" "${RUN}rd"
fi

echo; echo "smoke: $((checks-fails)) passed, $fails failed"
exit $(( fails > 0 ))
