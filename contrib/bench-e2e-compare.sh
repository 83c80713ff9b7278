#!/usr/bin/env bash
# Issue #12's measure, side by side: `inboxd enqueue FILE` then `inboxd run
# --drain` (contrib/bench-e2e.sh) for several builds, alternated run by run
# so that the machine's drift hits them all alike; prints each build's wall
# times sorted, their median, and the drain's median peak memory.
# usage: contrib/bench-e2e-compare.sh EVENTS.jsonl RUNS CHECKOUT...
#   CHECKOUT: a checkout built with `cargo build --release`; its config and
#   rules are taken from defaults/ (or config/ and rules/ in older ones).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
events=$(realpath "$1"); runs=$2; shift 2
here=$(dirname "$(realpath "$0")")
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

# shellcheck source=contrib/bench-common.sh
. "$(dirname "$(realpath "$0")")/bench-common.sh"

for run in $(seq "$runs"); do
    n=0
    for checkout in "$@"; do
        n=$((n + 1))
        base=$(config_of "$checkout")
        line=$("$here/bench-e2e.sh" "$checkout/target/release/inboxd" \
            "$base/config" "$base/rules" "$events" "$out/peak")
        echo "${line%% *}" >> "$out/wall.$n"
        cat "$out/peak" >> "$out/peak.$n"
    done
done

n=0
for checkout in "$@"; do
    n=$((n + 1))
    printf '%s\n  wall, ms: %s\n  median: %s ms; drain peak: %s MB\n' "$checkout" \
        "$(sort -n "$out/wall.$n" | tr '\n' ' ')" \
        "$(median < "$out/wall.$n")" \
        "$(median < "$out/peak.$n" | awk '{printf "%.1f", $1 / 1024}')"
done
