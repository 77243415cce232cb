#!/usr/bin/env bash
# test.sh: THE test command (README and CI). Installs what it needs, starts the real-backend lab
# once on free ports, runs the unit, doc and end-to-end suites against it, stops the lab.
#
#   bash scripts/test.sh
#
# Steps: system packages (apt-get, only when a tool is missing) -> lab install + start
# (scripts/lab/up.sh, LAB_PORTS=auto, temp LAB_DIR) -> scripts/lab/smoke.sh -> cargo doc tests ->
# cargo nextest (or cargo test) with DUALMETRICS_E2E=1 and DUALMETRICS_LAB_ENV=<lab.env>.
# The lab is stopped on every exit (trap), and a process that survives makes the run fail.
# Knobs: LAB_PREFIX (installed software, default /opt/dualmetrics-lab), LAB_SMOKE=0 (skip
# smoke.sh), TEST_KEEP_LAB=1 (leave LAB_DIR on disk), DUALMETRICS_CI_TARGET_DIR (build cache kept
# between CI runs, default ~/.cache/dualmetrics/ci-target), extra args are passed to the test runner.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
now_ms() { date +%s%3N; }
T0=$(now_ms)
step() { printf '\n== [test.sh +%ss] %s\n' "$(( ($(now_ms) - T0) / 1000 ))" "$*"; }
# timed LABEL CMD...: run CMD, print how long it took
timed() { local l=$1 t; shift; t=$(now_ms); "$@"; echo "[test.sh] $l took $(( $(now_ms) - t )) ms"; }

# ---------------------------------------------------------------- system packages
step "system packages"
need=()
command -v curl >/dev/null     || need+=(curl ca-certificates)
command -v jq >/dev/null       || need+=(jq)
command -v ss >/dev/null       || need+=(iproute2)
command -v setsid >/dev/null && command -v flock >/dev/null || need+=(util-linux)
command -v gawk >/dev/null || command -v mawk >/dev/null || need+=(gawk)
command -v dpkg-deb >/dev/null || need+=(dpkg)
[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || need+=(debian-archive-keyring)
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
command -v chromium >/dev/null || need+=(chromium)   # the comparator's HTML report is checked in headless Chromium
if ! command -v python3 >/dev/null; then need+=(python3 python3-venv)
elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then need+=(python3-venv); fi
if (( ${#need[@]} )); then
  echo "[test.sh] installing: ${need[*]}"
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo -n"
  $sudo apt-get update -qq </dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
else
  echo "[test.sh] curl jq ss setsid flock dpkg-deb node npm python3(venv) present: nothing to install"
fi
echo "[test.sh] versions: $(bash --version | head -1)"
echo "  $(cargo --version)"; echo "  $(rustc --version)"
echo "  node $(node --version), npm $(npm --version 2>/dev/null), $(python3 --version 2>&1)"
# CI builds in a fresh clone on the same machine: a target dir outside the clone keeps the build
# cache from one run to the next (set CARGO_TARGET_DIR yourself to choose another one).
if [[ ${CI:-} == true && -z ${CARGO_TARGET_DIR:-} ]]; then
  export CARGO_TARGET_DIR=${DUALMETRICS_CI_TARGET_DIR:-$HOME/.cache/dualmetrics/ci-target}
  mkdir -p "$CARGO_TARGET_DIR"
  echo "  CI: CARGO_TARGET_DIR=$CARGO_TARGET_DIR (kept between runs)"
  # no incremental data (a fresh clone never reuses it) and no unbounded growth: stale
  # artifacts of earlier runs accumulate in a kept target dir, so past 40 GB it starts over
  export CARGO_INCREMENTAL=0
  kept_gb=$(du -s --block-size=1G "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1)
  if [[ ${kept_gb:-0} -gt 40 ]]; then
    echo "  CI: $CARGO_TARGET_DIR holds ${kept_gb} GB: removing it (a full build follows)"
    rm -rf "$CARGO_TARGET_DIR"; mkdir -p "$CARGO_TARGET_DIR"
  fi
fi
nextest=0
if cargo nextest --version >/dev/null 2>&1; then nextest=1; echo "  $(cargo nextest --version 2>/dev/null | head -1)"; fi

# ---------------------------------------------------------------- the lab
LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dualmetrics-test-lab.XXXXXX")
export LAB_DIR
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  step "stopping the lab ($LAB_DIR)"
  local purge=--purge; [[ ${TEST_KEEP_LAB:-0} == 1 ]] && purge=""
  if ! timed "down.sh" bash scripts/lab/down.sh $purge; then
    echo "[test.sh] ERROR: scripts/lab/down.sh reports a lab process that survived" >&2
    rc=1
  fi
  echo "[test.sh] total $(( ($(now_ms) - T0) / 1000 )) s, exit $rc"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "lab: install if missing, start on free ports (LAB_DIR=$LAB_DIR)"
# explicit LAB_* ports from a developer's shell must not leak in: every port is picked free
for v in LAB_VM_HTTP LAB_VM_GRAPHITE LAB_STATSD_UDP LAB_STATSD_MGMT LAB_PROM_HTTP LAB_VMAGENT_HTTP \
         LAB_VMAGENT_PROM_HTTP LAB_ROTEL_GRPC LAB_ROTEL_HTTP; do unset "$v"; done
timed "up.sh" env LAB_PORTS=auto bash scripts/lab/up.sh
export DUALMETRICS_LAB_ENV=$LAB_DIR/lab.env DUALMETRICS_E2E=1
echo "[test.sh] DUALMETRICS_LAB_ENV=$DUALMETRICS_LAB_ENV DUALMETRICS_E2E=1"

if [[ ${LAB_SMOKE:-1} == 1 ]]; then
  step "lab smoke (scripts/lab/smoke.sh: every backend answers with the expected values)"
  timed "smoke.sh" bash scripts/lab/smoke.sh
fi

# ---------------------------------------------------------------- Rust suites
step "one TLS stack: no OpenSSL or native-tls in the workspace, nor in the SDK's feature sets"
for tree in "--workspace" "-p dualmetrics" "-p dualmetrics --features http-proto" \
  "-p dualmetrics --no-default-features --features http-proto" \
  "-p dualmetrics --features http-proto,tls-webpki-roots"; do
  for crate in openssl-sys native-tls; do
    # shellcheck disable=SC2086  # $tree is a list of cargo arguments
    if cargo tree $tree -e normal -i "$crate" >/dev/null 2>&1; then
      echo "[test.sh] ERROR: $crate is in the dependency tree of 'cargo tree $tree' (rustls only):" >&2
      cargo tree $tree -e normal -i "$crate" >&2
      exit 1
    fi
  done
done
echo "[test.sh] cargo tree -i openssl-sys / native-tls: in none of the trees"

step "the SDK builds alone in each documented feature set (the workspace build unifies features)"
for features in "" "--features metrics-rs" "--no-default-features --features http-proto" \
  "--no-default-features --features grpc,tls-webpki-roots"; do
  # shellcheck disable=SC2086  # $features is a list of cargo arguments
  timed "cargo check -p dualmetrics $features" cargo check -q -p dualmetrics --lib $features
done
echo "[test.sh] SDK crates (cargo tree -p dualmetrics -e normal, unique): default $(cargo tree -p dualmetrics -e normal --prefix none | sort -u | wc -l), with http-proto $(cargo tree -p dualmetrics -e normal --prefix none --features http-proto | sort -u | wc -l)"

step "publishable: cargo package for the SDK and the model (packaged alone, then built)"
timed "cargo package" cargo package -q -p dualmetrics-model -p dualmetrics --allow-dirty

step "build the tests"
if [[ $nextest == 1 ]]; then
  timed "build" cargo nextest run --workspace --all-targets --no-run
else
  timed "build" cargo test --workspace --all-targets --no-run
fi

step "doc tests"
timed "doc tests" cargo test --workspace --doc

step "unit + integration + end-to-end tests (against the lab above)"
if [[ $nextest == 1 ]]; then
  timed "tests" cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
  timed "tests" cargo test --workspace --all-targets --no-fail-fast "$@"
fi
