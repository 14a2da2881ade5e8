#!/usr/bin/env bash
# usage: walwatch.sh label [serve-arg]
label=$1; shift
out=/work/main/docs/benchmarks/bulk-20261206T1812Z/wal-$label.txt
before=$(ls -d /tmp/tessera-bench-* 2>/dev/null | sort)
dotnet bench/Tessera.LoadGen/bin/Release/net10.0/Tessera.LoadGen.dll --label "wal-$label" --spawn tessera --connections 64 --duration ${DUR:-30} --warmup 10 "$@" > /tmp/wal-$label-load.txt 2>&1 &
lg=$!
sleep 3
dir=""
for i in $(seq 1 20); do dir=$(comm -13 <(echo "$before") <(ls -d /tmp/tessera-bench-* 2>/dev/null | sort) | head -1); [ -n "$dir" ] && break; sleep 0.5; done
{ echo "# $label: WAL and file size (MB) every 2 s, flat out; data dir $dir"; 
while kill -0 $lg 2>/dev/null; do
  w=$(stat -c %s "$dir/tessera.duckdb.wal" 2>/dev/null || echo 0); f=$(stat -c %s "$dir/tessera.duckdb" 2>/dev/null || echo 0)
  echo "$(date -u +%T) wal $((w/1048576)) file $((f/1048576))"; sleep 2; done; } > "$out"
grep -E "accepted|server:" /tmp/wal-$label-load.txt >> "$out"
cat "$out" | awk '/wal/{if($3>m)m=$3; s+=$3; n++} END{print "wal max",m,"MB, mean",s/n}'
tail -2 "$out"
