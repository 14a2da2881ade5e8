# Sourced by the scripts in bench/: machine_txt DIR [NOTE] writes DIR/machine.txt (when, which commit, the machine,
# the load at the start) and shows it, so every result directory says what it was measured on.
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
