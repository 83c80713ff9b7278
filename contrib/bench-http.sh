#!/usr/bin/env bash
# The HTTP API under load, beside `inboxd enqueue` of the same events:
#  1. `inboxd enqueue` of EVENTS (a JSON Lines file), whole process;
#  2. single-event POSTs (4 connections, 1 s) while the engine is inside
#     an event whose rule runs to its 2 s limit: p99;
#  3. POST /v1/events with 1,000-event bodies (wrk, 1 connection, 10 s),
#     then `inboxd enqueue` of EVENTS under the same conditions;
#  4. single-event POSTs (wrk, 2 threads, 16 connections, 10 s), on a
#     fresh store: rate, p99.
# The daemon runs meanwhile (as in production: it processes what comes).
# usage: contrib/bench-http.sh BINARY CONFIG_DIR RULES_DIR EVENTS.jsonl
set -euo pipefail
keep=${KEEP_LOG:-}
bin=$(realpath "$1"); events=$(realpath "$4")
dir=$(mktemp -d); trap 'kill $daemon 2>/dev/null || true; rm -rf "$dir"' EXIT
cp -r "$2" "$dir/config"; cp -r "$3" "$dir/rules"; cd "$dir"
sed -i 's/^listen = .*/listen = "127.0.0.1:18041"/' config/inboxd.toml
export INBOXD_TOKEN=bench-token
lines=$(wc -l < "$events")

start=$(date +%s%N)
"$bin" enqueue "$events" 2>/dev/null
end=$(date +%s%N)
echo "enqueue of $lines events: $(( lines * 1000000000 / (end - start) )) events/s"
rm -rf var

# A rule that runs to its time limit, for conversation "bench-slow" only.
printf '%s\n' 'if event.conversation == "bench-slow" {' '  let s = "x"; for i in 0..15 { s += s; }' '  loop { s.replace("x", "y"); }' '}' > rules/bench_slow.rhai
printf '[[rule]]\nname = "bench-slow"\non = ["conversation.created"]\nscript = "bench_slow.rhai"\n' > rules/bench_slow.toml
RUST_LOG=warn "$bin" run 2>daemon.log & daemon=$!
until curl -fs http://127.0.0.1:18041/readyz >/dev/null; do sleep 0.1; done

head -n 1000 "$events" > body1000.jsonl
head -n 1 "$events" > body1.jsonl
cat > post.lua <<'LUA'
local file = io.open(os.getenv("BODY"), "rb")
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Authorization"] = "Bearer bench-token"
done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f, p50 %.2f ms, p99 %.2f ms, max %.2f ms, errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("  (errors: status %d, connect %d, read %d, write %d, timeout %d)\n", summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
LUA
curl -fs -X POST -H "Authorization: Bearer $INBOXD_TOKEN" http://127.0.0.1:18041/v1/events \
  -d '{"id":"bench-slow","type":"conversation.created","conversation":"bench-slow"}' >/dev/null
sleep 0.2
echo -n "POST /v1/events, one event per body, engine inside a 2 s event: "
BODY=body1.jsonl wrk -t1 -c4 -d1s -s post.lua http://127.0.0.1:18041/v1/events | tail -2
echo -n "POST /v1/events, 1,000 events per body: "
BODY=body1000.jsonl wrk -t1 -c${BIG_CONNECTIONS:-1} -d10s -s post.lua http://127.0.0.1:18041/v1/events | tail -2
# The same file through `inboxd enqueue` under the same conditions: the
# daemon running, its engine busy with what the POSTs queued.
for i in 1 2 3; do
  start=$(date +%s%N)
  "$bin" enqueue "$events" 2>/dev/null
  end=$(date +%s%N)
  echo "enqueue of $lines events beside the busy daemon: $(( lines * 1000000000 / (end - start) )) events/s"
done
# On a fresh store: not behind the millions of events queued just above.
kill $daemon; wait $daemon || true; rm -rf var
RUST_LOG=warn "$bin" run 2>>daemon.log & daemon=$!
until curl -fs http://127.0.0.1:18041/readyz >/dev/null; do sleep 0.1; done
echo -n "POST /v1/events, one event per body, 16 connections: "
BODY=body1.jsonl wrk -t2 -c16 -d10s -s post.lua http://127.0.0.1:18041/v1/events | tail -2

[ -n "$keep" ] && cp daemon.log "$keep"
true
