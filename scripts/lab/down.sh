#!/usr/bin/env bash
# down.sh: stop exactly the processes that up.sh recorded in $LAB_DIR/pids/*.pid.
#
#   LAB_DIR=/tmp/dualmetrics-lab bash scripts/lab/down.sh [--purge]
#
# For each recorded PID that is still running and still belongs to this lab (its command line
# mentions $LAB_DIR): SIGTERM to the PID (and to its process group, which up.sh's setsid made the PID
# lead), wait up to LAB_STOP_TIMEOUT_S [10] seconds, then SIGKILL. Afterwards every recorded PID and
# every process left in its group is checked again; anything still running makes the exit status 1.
# Nothing is ever looked up or signalled by name. Zombies count as stopped (an init that reaps late
# keeps exited servers as zombies for a moment).
#   --purge               also delete $LAB_DIR (only if up.sh created it: it holds .dualmetrics-lab)
#   LAB_DOWN_ONLY="a b"   stop only these components (up.sh uses it to undo a failed start)
set -uo pipefail
LAB_DIR=${LAB_DIR:-/tmp/dualmetrics-lab}
LAB_STOP_TIMEOUT_S=${LAB_STOP_TIMEOUT_S:-10}
PIDS=$LAB_DIR/pids
purge=0
for a in "$@"; do
  case $a in --purge) purge=1 ;; *) echo "usage: down.sh [--purge]" >&2; exit 2 ;; esac
done

now_ms() { date +%s%3N; }
running() { kill -0 "$1" 2>/dev/null && [[ $(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null) != Z ]]; }
# members_of PGID: running processes whose process group is PGID (read from /proc/*/stat, not by name)
members_of() {
  local s line pid f
  for s in /proc/[0-9]*/stat; do
    { read -r line <"$s"; } 2>/dev/null || continue
    pid=${line%% *}
    read -r -a f <<<"${line##*) }"      # after "(comm) ": state ppid pgrp ...
    if [[ ${f[2]:-} == "$1" && ${f[0]:-} != Z ]]; then echo "$pid"; fi
  done
}
is_ours() { [[ $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) == *"$LAB_DIR"* ]]; }
is_group_leader() { [[ $(awk '{print $5}' "/proc/$1/stat" 2>/dev/null) == "$1" ]] 2>/dev/null; }

if [[ ! -d $PIDS ]]; then
  echo "[down] nothing recorded in $PIDS"
else
  # stop the producers first, the stores last
  order="rotel vmagent-prom vmagent statsd prometheus vm"
  names=""
  for n in $order; do [[ -f $PIDS/$n.pid ]] && names+="$n "; done
  for f in "$PIDS"/*.pid; do
    [[ -e $f ]] || continue
    n=$(basename "$f" .pid); [[ " $names " == *" $n "* ]] || names+="$n "
  done
  if [[ -n ${LAB_DOWN_ONLY:-} ]]; then
    sel=""; for n in $names; do [[ " $LAB_DOWN_ONLY " == *" $n "* ]] && sel+="$n "; done; names=$sel
  fi

  declare -A PID_OF=() GROUP_OF=()
  for n in $names; do
    f=$PIDS/$n.pid; p=$(cat "$f" 2>/dev/null || true)
    if [[ -z $p ]] || ! running "$p"; then echo "[down] $n: not running"; rm -f "$f"; continue; fi
    if ! is_ours "$p"; then   # the PID was reused by something else: leave it alone
      echo "[down] $n: pid $p is no longer a process of $LAB_DIR, leaving it alone"; rm -f "$f"; continue
    fi
    PID_OF[$n]=$p
    is_group_leader "$p" && GROUP_OF[$n]=$p
    t0=$(now_ms)
    if [[ -n ${GROUP_OF[$n]:-} ]]; then kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
    else kill -TERM "$p" 2>/dev/null; fi
    deadline=$(( t0 + LAB_STOP_TIMEOUT_S * 1000 ))
    while running "$p" && (( $(now_ms) < deadline )); do sleep 0.05; done
    if running "$p"; then
      echo "[down] $n: pid $p ignored SIGTERM for ${LAB_STOP_TIMEOUT_S} s, sending SIGKILL"
      if [[ -n ${GROUP_OF[$n]:-} ]]; then kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
      else kill -KILL "$p" 2>/dev/null; fi
      for _ in $(seq 1 50); do running "$p" || break; sleep 0.1; done
    fi
    echo "[down] $n: stopped pid $p ($(( $(now_ms) - t0 )) ms)"
  done

  # verify by PID (and process group) that nothing survived
  survivors=0
  for n in "${!PID_OF[@]}"; do
    p=${PID_OF[$n]}
    left=""
    running "$p" && left="$p"
    if [[ -n ${GROUP_OF[$n]:-} ]]; then
      for q in $(members_of "$p"); do
        [[ $q == "$p" ]] && continue
        running "$q" || continue
        echo "[down] $n: pid $q is still running in process group $p, sending SIGKILL"
        kill -KILL "$q" 2>/dev/null; sleep 0.2
        running "$q" && left+=" $q"
      done
    fi
    if [[ -n $left ]]; then
      echo "[down] ERROR: $n survived: pid(s) $left still running" >&2; survivors=1
    else
      rm -f "$PIDS/$n.pid"
    fi
  done
  if [[ $survivors == 1 ]]; then exit 1; fi
  echo "[down] verified: no recorded process of $LAB_DIR is running"
fi

if [[ $purge == 1 ]]; then
  if [[ -f $LAB_DIR/.dualmetrics-lab ]]; then rm -rf "$LAB_DIR"; echo "[down] removed $LAB_DIR"
  elif [[ -d $LAB_DIR ]]; then echo "[down] not purging $LAB_DIR (no .dualmetrics-lab marker)"; fi
fi
exit 0
