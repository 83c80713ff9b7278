#!/usr/bin/env bash
# Webhook deliveries to a loopback receiver (Python's http.server, 200 to
# everything), with the shipped rules and `changes = true`:
#  1. messages/s: EVENTS enqueued at once, time until the webhook's lag is 0;
#  2. lag under a sustained 1,000 events/s (100 events per POST every
#     100 ms, for 10 s): the webhook's lag each second.
# usage: contrib/bench-webhooks.sh BINARY CONFIG_DIR RULES_DIR EVENTS.jsonl
set -euo pipefail
bin=$(realpath "$1"); events=$(realpath "$4")
dir=$(mktemp -d)
trap 'kill $daemon $receiver 2>/dev/null || true; rm -rf "$dir"' EXIT
cp -r "$2" "$dir/config"; cp -r "$3" "$dir/rules"; cd "$dir"
sed -i 's/^listen = .*/listen = "127.0.0.1:18043"/' config/inboxd.toml
printf '\n[[webhook]]\nname = "bench"\nurl = "http://127.0.0.1:18044/"\nsecret_env = "BENCH_SECRET"\nchanges = true\n' >> config/inboxd.toml
export BENCH_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw INBOXD_TOKEN=bench-token
python3 - <<'PY' & receiver=$!
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", 18044), H).serve_forever()
PY
lag() { "$bin" webhooks --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["lag"])'; }

"$bin" enqueue "$events" 2>/dev/null
start=$(date +%s%N)
RUST_LOG=warn "$bin" run 2>daemon.log & daemon=$!
sleep 1
until [ "$(lag)" = 0 ] && [ "$("$bin" status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["queued"])')" = 0 ]; do sleep 0.2; done
end=$(date +%s%N)
messages=$("$bin" changes | python3 -c 'import json,sys; print(sum(1 for l in sys.stdin if (e := json.loads(l))["outcome"] == "applied" and e["changes"]))')
ms=$(( (end - start) / 1000000 ))
echo "$(wc -l < "$events") events enqueued at once: $messages messages delivered in $ms ms from the daemon's start: $(( messages * 1000 / ms )) messages/s"

python3 - <<'PY' &
import json, time, urllib.request
n = 0
start = time.time()
for tick in range(100):
    body = "\n".join(json.dumps({"id": f"s{n + i}", "type": "conversation.created", "conversation": f"s{n + i}"}) for i in range(100))
    n += 100
    req = urllib.request.Request("http://127.0.0.1:18043/v1/events", data=body.encode(), method="POST",
                                 headers={"Authorization": "Bearer bench-token"})
    urllib.request.urlopen(req).read()
    time.sleep(max(0, start + (tick + 1) * 0.1 - time.time()))
PY
producer=$!
echo -n "lag each second at 1,000 events/s:"
for s in $(seq 1 10); do sleep 1; echo -n " $(lag)"; done; echo
wait $producer
