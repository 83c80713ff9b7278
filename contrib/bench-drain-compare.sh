#!/usr/bin/env bash
# The two processes of issue #12's measure apart, for several builds,
# alternated run by run: `inboxd enqueue FILE` then `inboxd run --drain`,
# each timed on the wall clock and in CPU time (`perf stat -e task-clock`,
# finer than /usr/bin/time's 10 ms); prints each build's medians.
# usage: contrib/bench-drain-compare.sh EVENTS.jsonl RUNS CHECKOUT...
#   CHECKOUT: a checkout built with `cargo build --release`; its config and
#   rules are taken from defaults/ (or config/ and rules/ in older ones).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
command -v perf >/dev/null || { echo "perf is needed (linux-perf)" >&2; exit 2; }
events=$(realpath "$1"); runs=$2; shift 2
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

# shellcheck source=contrib/bench-common.sh
. "$(dirname "$(realpath "$0")")/bench-common.sh"

# A fresh directory per build, with that build's config and rules.
n=0
for checkout in "$@"; do
    n=$((n + 1))
    base=$(config_of "$checkout")
    mkdir "$out/$n"
    cp -r "$base/config" "$out/$n/config"
    cp -r "$base/rules" "$out/$n/rules"
done

# Appends "wall_ms cpu_ms" of one command to FILE.
timed() {
    local file=$1; shift
    local start end
    start=$(date +%s%N)
    if ! perf stat -x, -e task-clock -o "$out/stat.txt" "$@" >/dev/null 2>"$out/err.txt"; then
        echo "failed: $*" >&2; cat "$out/err.txt" >&2; exit 1
    fi
    end=$(date +%s%N)
    echo "$(( (end - start) / 1000000 )) $(grep task-clock "$out/stat.txt" | cut -d, -f1 | cut -d. -f1)" >> "$file"
}

for _ in $(seq "$runs"); do
    n=0
    for checkout in "$@"; do
        n=$((n + 1))
        bin=$(realpath "$checkout/target/release/inboxd")
        rm -rf "$out/$n/var"
        (cd "$out/$n" && timed "$out/enqueue.$n" "$bin" enqueue "$events" \
            && timed "$out/drain.$n" "$bin" run --drain)
    done
done

n=0
for checkout in "$@"; do
    n=$((n + 1))
    printf '%s\n  enqueue: wall %s ms, CPU %s ms\n  drain:   wall %s ms, CPU %s ms\n' "$checkout" \
        "$(cut -d' ' -f1 "$out/enqueue.$n" | median)" "$(cut -d' ' -f2 "$out/enqueue.$n" | median)" \
        "$(cut -d' ' -f1 "$out/drain.$n" | median)" "$(cut -d' ' -f2 "$out/drain.$n" | median)"
done
