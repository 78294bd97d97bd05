#!/usr/bin/env bash
# What traces cost the engine in instructions, which a noisy machine does not move:
# benches/telemetry-instructions.sh [troupe binary] [out, default bench-results/telemetry-instructions.json]
#
# `troupe bench engine` runs under callgrind without traces and with them (sample
# ratio 1.0, to a live OTLP/HTTP receiver), each at 100 and at 300 tasks per workflow;
# the difference between the two sizes is the work of 800 tasks, with the node's start
# cancelled out. It also sums the instructions spent inside the tracing and OpenTelemetry
# code of the traced run (the exporter's thread included): that figure repeats within
# 1% from run to run, where the wall clock on a shared 2-core VM moves by ±15% and even
# the totals move by ±4% (the engine batches its log appends by timing, and timers fire
# by the wall clock, which callgrind stretches).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
troupe="${1:-${CARGO_TARGET_DIR:-$root/target}/debug/troupe}"
out="${2:-$root/bench-results/telemetry-instructions.json}"
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 2; }
[ -x "$troupe" ] || { echo "no troupe binary at $troupe: build it with cargo build --locked" >&2; exit 2; }
scratch="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$scratch"' EXIT

# The receiver: takes every OTLP/HTTP export and answers an empty success.
python3 - "$scratch/port" <<'PY' &
import http.server, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
open(sys.argv[1], "w").write(str(server.server_address[1]))
server.serve_forever()
PY
for _ in $(seq 50); do [ -s "$scratch/port" ] && break; sleep 0.1; done
endpoint="http://127.0.0.1:$(cat "$scratch/port")/v1/traces"

measure() { # side tasks
    local side="$1" tasks="$2" env=(env -u TROUPE_TELEMETRY__OTLP__ENDPOINT)
    if [ "$side" = on ]; then
        env=(env TROUPE_TELEMETRY__OTLP__ENDPOINT="$endpoint" TROUPE_TELEMETRY__OTLP__SAMPLE_RATIO=1.0)
    fi
    "${env[@]}" valgrind --tool=callgrind --callgrind-out-file="$scratch/$side-$tasks.out" \
        "$troupe" bench engine --tasks "$tasks" --out "$scratch/$side-$tasks.json" \
        >"$scratch/$side-$tasks.log" 2>&1
}
# Two at a time: callgrind runs one thread at a time, and this machine has two cores.
for tasks in 100 300; do
    measure off "$tasks" & off=$!
    measure on "$tasks" & on=$!
    wait "$off" "$on"
done
for side in off on; do
    callgrind_annotate --inclusive=yes --threshold=100 "$scratch/$side-300.out" >"$scratch/$side-300.txt" 2>/dev/null
done

python3 - "$scratch" "$out" <<'PY'
import json, re, sys
scratch, out = sys.argv[1], sys.argv[2]
def total(name):
    log = open(f"{scratch}/{name}.log").read()
    return int(re.search(r"Collected : (\d+)", log).group(1))
per_task = {side: (total(f"{side}-300") - total(f"{side}-100")) / 800 for side in ("off", "on")}
# The roots of the tracing work, whose inclusive counts do not contain one another:
# the dispatcher's ways in (a span made, or the current span looked up, goes through
# get_default; entering, leaving, closing and recording a span through the span's own
# dispatch) and the exporter's thread.
ROOTS = [
    "tracing_core::dispatcher::get_default",
    "tracing_core::dispatcher::Dispatch::enter",
    "tracing_core::dispatcher::Dispatch::exit",
    "tracing_core::dispatcher::Dispatch::try_close",
    "tracing::span::Span::record",
    "opentelemetry_sdk::trace::span_processor::BatchSpanProcessor::get_spans_and_export",
]
def inside_tracing(side):
    inside = dict.fromkeys(ROOTS, 0)
    for line in open(f"{scratch}/{side}-300.txt"):
        # `  9,220,386 ( 0.10%)  ???:tracing_core::dispatcher::get_default [/path/troupe]`
        found = re.match(r"\s*([\d,]+) \(.*?\)\s+\S*?:(.*) \[", line)
        if found and found.group(2) in inside:
            inside[found.group(2)] = max(inside[found.group(2)], int(found.group(1).replace(",", "")))
    return inside
inside = {side: inside_tracing(side) for side in ("off", "on")}
traced = sum(inside["on"].values()) - sum(inside["off"].values())
report = {
    "benchmark": "engine-telemetry-instructions",
    "tasks_measured": 800,
    "instructions_per_task": per_task,
    # Moved by timing as much as by the traces: see the note at the top.
    "difference_of_totals": per_task["on"] / per_task["off"] - 1,
    # What the traced run spent in the tracing code beyond what the untraced one did, per
    # task (1,200 in the run: 300 in each of its four workflows), and as a share of
    # the traced run's own per-task work.
    "inside_tracing_per_task": traced / 1200,
    "inside_tracing_share": traced / 1200 / per_task["on"],
    "inside_tracing_by_root": inside,
    "totals": {name: total(name) for name in ("off-100", "off-300", "on-100", "on-300")},
}
import os
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
json.dump(report, open(out, "w"), indent=2)
print(f"instructions per task: off {per_task['off']:,.0f}, on {per_task['on']:,.0f}: "
      f"{report['difference_of_totals']:+.1%} (totals move by ±4% between runs of one side)")
print(f"inside tracing and export: {report['inside_tracing_per_task']:,.0f} per task, "
      f"{report['inside_tracing_share']:.2%} of a traced task's")
print(f"written to {out}")
PY
