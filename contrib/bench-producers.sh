#!/usr/bin/env bash
# enqueue latency (whole CLI process) while the daemon is inside a 2 s event.
# usage: producers.sh BINARY CONFIG_DIR RULES_DIR
set -euo pipefail
bin=$1; dir=$(mktemp -d)
cp -r "$2" "$dir/config"; cp -r "$3" "$dir/rules"
cd "$dir"
printf 'if event.conversation == "slow" {\n  let s = "x"; for i in 0..15 { s += s; }\n  loop { s.replace("x", "y"); }\n}\n' > rules/slow.rhai
printf '[[rule]]\nname = "slow"\non = ["conversation.created"]\nscript = "slow.rhai"\n' > rules/zz_slow.toml
echo '{"id":"warm","type":"conversation.created","conversation":"w"}' | "$bin" enqueue 2>/dev/null
RUST_LOG=error "$bin" run 2>/dev/null & pid=$!
sleep 1
echo '{"id":"slow","type":"conversation.created","conversation":"slow"}' | "$bin" enqueue 2>/dev/null
sleep 0.1
for i in $(seq 1 20); do
  s=$(date +%s%N)
  echo "{\"id\":\"p$i\",\"type\":\"conversation.created\",\"conversation\":\"pc$i\"}" | "$bin" enqueue 2>/dev/null
  e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
done | sort -n | awk '{a[NR]=$1} END {print "enqueue ms: min " a[1] ", median " a[int((NR+1)/2)] ", max " a[NR] " (" NR " runs)"}'
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$dir"
