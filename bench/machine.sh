# Sourced by the scripts in bench/: machine_txt DIR [NOTE] writes DIR/machine.txt (when, which commit, the machine,
# the load at the start) and shows it, so every result directory says what it was measured on.
# "rate N events/s" when RATE is set, else "flat out": how the run descriptions name the load.
rate_label() {
  if [ -n "${RATE:-}" ]; then echo "rate $RATE events/s"; else echo "flat out"; fi
}

machine_txt() {
  local dir=$1 note=${2:-}
  {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)${note:+, $note}"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), nproc $(nproc)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GB"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
    echo ".NET: $(dotnet --version) SDK, runtime $(dotnet --list-runtimes | awk '/NETCore.App/ {v=$2} END {print v}')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee "$dir/machine.txt"
}

# spawned_server_pid DLL LOG: the pid of the server the load generator spawned from DLL, waiting up to 10 s for it;
# without one, says where to look (LOG, the load generator's output) and fails.
spawned_server_pid() {
  local dll=$1 log=$2 pid=""
  for _ in $(seq 1 100); do pid=$(pgrep -f "$dll serve" | head -1 || true); [ -n "$pid" ] && break; sleep 0.1; done
  [ -n "$pid" ] || { echo "no server started; see $log" >&2; return 1; }
  echo "$pid"
}

# sample_rss PID FILE: appends "unix-seconds resident-kB" to FILE every second while PID lives (from
# /proc/PID/smaps_rollup), then returns.
sample_rss() {
  local pid=$1 file=$2
  while kill -0 "$pid" 2> /dev/null; do
    awk -v t="$(date +%s)" '/^Rss:/ {print t, $2}' "/proc/$pid/smaps_rollup" >> "$file" 2> /dev/null || true
    sleep 1
  done
}
