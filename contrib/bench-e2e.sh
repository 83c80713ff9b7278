#!/usr/bin/env bash
# End to end as a user runs it: `inboxd enqueue FILE` then `inboxd run
# --drain`, whole processes, default log level, in a fresh directory.
# usage: contrib/bench-e2e.sh BINARY CONFIG_DIR RULES_DIR EVENTS.jsonl [PEAK_FILE]
# With PEAK_FILE, the drain's peak memory (KB) is written there
# (GNU time, /usr/bin/time).
set -euo pipefail
bin=$(realpath "$1"); events=$(realpath "$4"); peak=${5:+$(realpath "$5")}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cp -r "$2" "$dir/config"; cp -r "$3" "$dir/rules"; cd "$dir"
drain=("$bin" run --drain)
[ -n "$peak" ] && drain=(/usr/bin/time -f %M -o "$peak" "${drain[@]}")
start=$(date +%s%N)
"$bin" enqueue "$events" 2>/dev/null
"${drain[@]}" 2>log.txt
end=$(date +%s%N)
echo "$(( (end - start) / 1000000 )) ms, $(wc -l < log.txt) log lines"
