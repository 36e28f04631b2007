#!/usr/bin/env bash
# bench-needs: postgres kafka
#
# Runtime pass-through (issue 3's benchmark, issue 10 part 1, issue 19): msg/s
# of ONE stage-runtime instance (build/<mode>/tests/zl-passthrough: decode,
# batched row read, batched compare-and-set + in_tx insert in one transaction
# with fsync on, produce, delivery wait, offset store; up to
# ZL_BATCHES_INFLIGHT_MAX batches overlapping) beside, in the same run and on
# the same broker:
#   runtime, ZL_BATCHES_INFLIGHT_MAX=1: the same runtime one batch at a time
#                (each batch waits for its delivery reports before the next
#                is polled: the runtime before issue 19);
#   kafka-only   tests/c/zl-kafka-passthrough: the same consumer/producer
#                settings and batching, minus the database and the decoding;
#   kafka-perf   Kafka's own ProducerPerformance / ConsumerPerformance with
#                records of the same size.
# Trials are interleaved (kafka-only, runtime, ... per round) so both see the
# same noise on a shared machine; the summary takes medians and the per-round
# ratio.
#
# Each trial has its own topic prefix, consumer group and rows; the input is
# produced (and the rows COPYed in state `detected`) before the timer starts.
# Two rates per trial:
#   steady  (messages - 1) / (last - first output CreateTime): the processing
#           rate once running;
#   wall    messages / (process start -> output topic holds all of them),
#           which includes connecting and joining the group.
#
# Run through bench/run (it starts the services and collects the results).
# Knobs: BENCH_RUNTIME_N (50000), BENCH_ROUNDS (3), BENCH_RUNTIME_BATCHES
# ("500 100 2000": the first is the headline), BENCH_RUNTIME_INFLIGHT ("2 1":
# ZL_BATCHES_INFLIGHT_MAX of the headline, then of the references run at the
# headline batch size), BENCH_PARTITIONS (6),
# BENCH_RUNTIME_PERF (1: run Kafka's perf tools each round),
# BENCH_TRIAL_TIMEOUT_S (300).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_need_run

N=${BENCH_RUNTIME_N:-50000}
ROUNDS=${BENCH_ROUNDS:-3}
read -r -a BATCHES <<< "${BENCH_RUNTIME_BATCHES:-500 100 2000}"
read -r -a INFLIGHT <<< "${BENCH_RUNTIME_INFLIGHT:-2 1}"
PARTS=${BENCH_PARTITIONS:-6}
PERF=${BENCH_RUNTIME_PERF:-1}
TRIAL_TIMEOUT_S=${BENCH_TRIAL_TIMEOUT_S:-300}
POLL_INTERVAL_S=0.2   # completion poll: kcat -Q of the output's end offsets
KO_BATCH=${BATCHES[0]}

build=${ZL_BUILD_DIR:-$BENCH_REPO/build/release}
bench_require "$build/tests/zl-passthrough" "$build/tests/zl-kafka-passthrough" "$build/bin/zl-migrate" \
  "$build/bin/zl-topics"

work=$BENCH_WORK/runtime
mkdir -p "$work"
trials=$work/trials.jsonl
: > "$trials"
trap 'bench_stop_spawned' EXIT

bench_say "runtime: N=$N rounds=$ROUNDS batches=${BATCHES[*]} partitions=$PARTS"
ZL_SCHEMA_DIR="$BENCH_REPO/schemas/sql" "$build/bin/zl-migrate" >"$work/migrate.log" 2>&1 \
  || { cat "$work/migrate.log" >&2; bench_die "zl-migrate failed"; }
bench_psql "CREATE TABLE IF NOT EXISTS pt_effects (deposit_id text PRIMARY KEY, n integer NOT NULL)" >/dev/null

run_tag=$(printf '%08x' "$(date +%s)")
trial_no=0

# new_trial KIND: topics and input for one trial; sets tag, prefix, in_topic,
# out_topic. KIND runtime also loads the state rows.
new_trial() {
  trial_no=$((trial_no + 1))
  tag=$(printf '%s%03x' "$run_tag" "$trial_no")
  prefix="bench.$tag."
  in_topic="${prefix}deposits.detected"
  out_topic="${prefix}deposits.verified"
  ZL_TOPIC_PREFIX=$prefix ZL_TOPICS_STAGES=passthrough ZL_TOPIC_PARTITIONS=$PARTS \
    "$build/bin/zl-topics" >"$work/$tag.topics.log" 2>&1 \
    || { cat "$work/$tag.topics.log" >&2; bench_die "zl-topics failed for $prefix"; }
  bench_deposits "$N" "$tag" "$work/$tag.in.tsv" "$work/$tag.rows.csv"
  if [ "$1" = runtime ]; then bench_load_deposits "$work/$tag.rows.csv"; fi
  kcat -b "$ZL_KAFKA_BROKERS" -P -t "$in_topic" -K $'\t' -X acks=all -X linger.ms=20 -l "$work/$tag.in.tsv" \
    || bench_die "producing the input of $tag failed"
  local have; have=$(bench_end_offsets "$in_topic" "$PARTS")
  [ "$have" -eq "$N" ] || bench_die "input topic $in_topic holds $have messages, expected $N"
  rm -f "$work/$tag.in.tsv" "$work/$tag.rows.csv"
}

# wait_output PID: polls the output's end offsets until N, the process
# exits (kafka-only does at N), or the trial timeout. Sets done_ms, got,
# hwm_kib (peak seen), cpu_s.
wait_output() {
  local pid=$1 deadline=$((SECONDS + TRIAL_TIMEOUT_S)) h
  hwm_kib=0; cpu_s=0; got=0
  while :; do
    got=$(bench_end_offsets "$out_topic" "$PARTS")
    if kill -0 "$pid" 2>/dev/null; then
      read -r h _ <<< "$(bench_rss "$pid")"
      [ "$h" -gt "$hwm_kib" ] && hwm_kib=$h
      cpu_s=$(bench_cpu_s "$pid")
    fi
    [ "$got" -ge "$N" ] && break
    if ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
      got=$(bench_end_offsets "$out_topic" "$PARTS"); break
    fi
    [ $SECONDS -lt $deadline ] || { bench_say "$tag: $got of $N after ${TRIAL_TIMEOUT_S}s"; break; }
    sleep "$POLL_INTERVAL_S"
  done
  done_ms=$(bench_now_ms)
}

# output_stats: count, distinct keys and CreateTime span of the output topic.
output_stats() {
  kcat -b "$ZL_KAFKA_BROKERS" -C -t "$out_topic" -o beginning -e -q -f '%T %k\n' | python3 -c '
import sys
ts, keys, n = [], set(), 0
for line in sys.stdin:
    t, _, k = line.strip().partition(" ")
    if not t:
        continue
    n += 1; ts.append(int(t)); keys.add(k)
span = (max(ts) - min(ts)) if ts else 0
steady = (n - 1) / (span / 1000.0) if span > 0 else 0
print(n, len(keys), span, round(steady))'
}

load1() { cut -d" " -f1 /proc/loadavg; }

trial_kafka_only() {
  new_trial kafka-only
  local load_before; load_before=$(load1)
  local t0; t0=$(bench_now_ms)
  bench_spawn "$work/$tag.out" "$build/tests/zl-kafka-passthrough" "$ZL_KAFKA_BROKERS" "bench-$tag" \
    "$in_topic" "$out_topic" "$N" "$KO_BATCH" "$TRIAL_TIMEOUT_S"
  local pid=$BENCH_PID
  wait_output "$pid"
  bench_stop "$pid"
  local rc=$BENCH_RC self_json self_rate self_hwm
  self_json=$(tail -n 1 "$work/$tag.out")
  self_rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("msgs_per_s", 0))' "$self_json" 2>/dev/null || echo 0)
  self_hwm=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("vm_hwm_kib", 0))' "$self_json" 2>/dev/null || echo 0)
  [ "$self_hwm" -gt "$hwm_kib" ] && hwm_kib=$self_hwm
  # Its own count covers the whole life; the poll above missed the end.
  cpu_s=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("cpu_s", 0))' "$self_json" 2>/dev/null || echo "$cpu_s")
  read -r count keys span steady <<< "$(output_stats)"
  local wall_s; wall_s=$(awk -v a="$t0" -v b="$done_ms" 'BEGIN{printf "%.3f", (b - a) / 1000}')
  local ok=true; { [ "$rc" -eq 0 ] && [ "$count" -eq "$N" ] && [ "$keys" -eq "$N" ]; } || ok=false
  bench_record "$trials" kind=kafka-only round="$round" tag="$tag" batch_size_max="$KO_BATCH" messages="$N" \
    out_count="$count" out_distinct="$keys" span_ms="$span" steady_msgs_per_s="$steady" wall_s="$wall_s" \
    wall_msgs_per_s="$(awk -v n="$N" -v s="$wall_s" 'BEGIN{printf "%d", n / s}')" self_msgs_per_s="$self_rate" \
    vm_hwm_kib="$hwm_kib" cpu_s="$cpu_s" exit_code="$rc" load1_before="$load_before" load1_after="$(load1)" ok="$ok"
  bench_say "round $round kafka-only: steady $steady msg/s, wall ${wall_s}s, out $count, rc $rc"
}

trial_runtime() {
  local batch=$1 inflight=${2:-${INFLIGHT[0]}}
  new_trial runtime
  local load_before; load_before=$(load1)
  local t0; t0=$(bench_now_ms)
  bench_spawn "$work/$tag.log" env ZL_TOPIC_PREFIX="$prefix" ZL_GROUP_ID="bench-$tag" ZL_BATCH_SIZE_MAX="$batch" \
    ZL_BATCHES_INFLIGHT_MAX="$inflight" ZL_HTTP_PORT=0 "$build/tests/zl-passthrough"
  local pid=$BENCH_PID
  wait_output "$pid"
  local h; read -r h _ <<< "$(bench_rss "$pid")"
  [ "$h" -gt "$hwm_kib" ] && hwm_kib=$h
  cpu_s=$(bench_cpu_s "$pid")
  bench_stop "$pid"
  local rc=$BENCH_RC
  read -r count keys span steady <<< "$(output_stats)"
  local verified effects
  verified=$(bench_psql "SELECT count(*) FROM deposits WHERE tx_hash LIKE '%$tag' AND state = 'verified'")
  effects=$(bench_psql "SELECT count(*) FROM pt_effects WHERE deposit_id LIKE '%$tag:0' AND n = 1")
  local wall_s; wall_s=$(awk -v a="$t0" -v b="$done_ms" 'BEGIN{printf "%.3f", (b - a) / 1000}')
  local ok=true
  { [ "$rc" -eq 0 ] && [ "$count" -eq "$N" ] && [ "$keys" -eq "$N" ] && [ "$verified" -eq "$N" ] \
    && [ "$effects" -eq "$N" ]; } || ok=false
  bench_record "$trials" kind=runtime round="$round" tag="$tag" batch_size_max="$batch" \
    batches_inflight_max="$inflight" messages="$N" \
    out_count="$count" out_distinct="$keys" span_ms="$span" steady_msgs_per_s="$steady" wall_s="$wall_s" \
    wall_msgs_per_s="$(awk -v n="$N" -v s="$wall_s" 'BEGIN{printf "%d", n / s}')" rows_verified="$verified" \
    effects_once="$effects" vm_hwm_kib="$hwm_kib" cpu_s="$cpu_s" exit_code="$rc" load1_before="$load_before" \
    load1_after="$(load1)" ok="$ok"
  bench_say "round $round runtime batch $batch inflight $inflight: steady $steady msg/s, wall ${wall_s}s, out $count, verified $verified, rss ${hwm_kib} KiB, rc $rc"
}

# Kafka's own tools: records as large as our events, the producer settings
# our producer uses (idempotent, acks=all, linger 5 ms).
trial_kafka_perf() {
  trial_no=$((trial_no + 1))
  tag=$(printf '%s%03x' "$run_tag" "$trial_no")
  local topic="bench.$tag.perf"
  ZL_TOPIC_PARTITIONS=$PARTS ZL_TOPICS_STAGES=passthrough ZL_TOPIC_PREFIX="bench.$tag." \
    "$build/bin/zl-topics" "$topic" >"$work/$tag.topics.log" 2>&1 || bench_die "zl-topics $topic failed"
  local jvm=(java -Xms64m -Xmx512m "-Dlog4j.configuration=file:$ZL_LOCAL_DIR/kafka/log4j.properties"
             -cp "$ZL_KAFKA_HOME/lib/*")
  "${jvm[@]}" org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$N" \
    --record-size "$record_size" --throughput -1 --producer-props "bootstrap.servers=$ZL_KAFKA_BROKERS" acks=all \
    enable.idempotence=true linger.ms=5 >"$work/$tag.producer-perf.log" 2>&1 || bench_die "ProducerPerformance failed"
  local prod; prod=$(grep 'records sent' "$work/$tag.producer-perf.log" | tail -n 1 \
    | sed -E 's/^[0-9]+ records sent, ([0-9.]+) records\/sec.*/\1/')
  "${jvm[@]}" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$ZL_KAFKA_BROKERS" --topic "$topic" \
    --messages "$N" --group "bench-$tag-perf" --timeout 60000 >"$work/$tag.consumer-perf.log" 2>&1 \
    || bench_die "ConsumerPerformance failed"
  # CSV: start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s
  local cons; cons=$(grep -E '^[0-9]{4}-' "$work/$tag.consumer-perf.log" | tail -n 1)
  local cons_rate cons_fetch_rate
  cons_rate=$(echo "$cons" | awk -F', *' '{printf "%d", $6}')
  cons_fetch_rate=$(echo "$cons" | awk -F', *' '{printf "%d", $10}')
  bench_record "$trials" kind=kafka-perf round="$round" tag="$tag" messages="$N" record_size="$record_size" \
    producer_msgs_per_s="${prod%.*}" consumer_msgs_per_s="$cons_rate" consumer_fetch_msgs_per_s="$cons_fetch_rate" \
    load1_after="$(load1)" ok=true
  bench_say "round $round kafka perf tools: producer ${prod%.*} msg/s, consumer $cons_rate msg/s (fetch $cons_fetch_rate)"
}

# Record size for the perf tools: the mean size of our input events.
bench_deposits 200 0 "$work/sample.tsv" "$work/sample.csv"
record_size=$(awk -F'\t' '{s += length($2)} END {printf "%d", s / NR}' "$work/sample.tsv")
rm -f "$work/sample.tsv" "$work/sample.csv"

for ((round = 1; round <= ROUNDS; round++)); do
  trial_kafka_only
  trial_runtime "${BATCHES[0]}"
  for f in "${INFLIGHT[@]:1}"; do trial_runtime "${BATCHES[0]}" "$f"; done
  for b in "${BATCHES[@]:1}"; do trial_runtime "$b"; done
  if [ "$PERF" = 1 ]; then trial_kafka_perf; fi
done

# Summary: medians per kind, the paired per-round ratio, the targets.
python3 - "$trials" "$work/../runtime.json" "$work/../runtime.md" "$N" "$ROUNDS" "${BATCHES[0]}" "$record_size" \
  "$PARTS" "${INFLIGHT[0]}" <<'EOF'
import json, statistics, sys
trials_path, json_out, md_out = sys.argv[1:4]
n, rounds, head_batch, record_size, parts, head_inflight = (int(x) for x in sys.argv[4:10])
trials = [json.loads(l) for l in open(trials_path) if l.strip()]

def med(xs):
    xs = [x for x in xs if x]
    return round(statistics.median(xs)) if xs else 0

def group(kind, batch=None, inflight=None):
    # inflight None: the headline's (a trial from before the setting counts as it)
    want = head_inflight if inflight is None else inflight
    return [t for t in trials if t["kind"] == kind and (batch is None or t.get("batch_size_max") == batch)
            and (kind != "runtime" or t.get("batches_inflight_max", head_inflight) == want)]

ko = group("kafka-only")
rt_batches = sorted({t["batch_size_max"] for t in group("runtime")})
rt_refs = sorted({t["batches_inflight_max"] for t in trials if t["kind"] == "runtime"
                  and t.get("batches_inflight_max", head_inflight) != head_inflight})
rows = []
def summary(name, ts, key):
    vals = [t[key] for t in ts]
    return {"name": name, "trials": len(ts), "median": med(vals), "min": min(vals) if vals else 0,
            "max": max(vals) if vals else 0, "all_ok": all(t["ok"] for t in ts)}

out = {"params": {"messages": n, "rounds": rounds, "headline_batch_size_max": head_batch,
                  "record_size_bytes": record_size, "partitions": parts},
       "summary": {}, "trials": trials}
s = out["summary"]
s["kafka_only_steady"] = summary("kafka-only", ko, "steady_msgs_per_s")
s["kafka_only_wall"] = summary("kafka-only", ko, "wall_msgs_per_s")
for b in rt_batches:
    s[f"runtime_{b}_steady"] = summary(f"runtime batch {b}", group("runtime", b), "steady_msgs_per_s")
    s[f"runtime_{b}_wall"] = summary(f"runtime batch {b}", group("runtime", b), "wall_msgs_per_s")
    s[f"runtime_{b}_vm_hwm_kib_max"] = max((t["vm_hwm_kib"] for t in group("runtime", b)), default=0)
    s[f"runtime_{b}_cpu_us_per_msg"] = med([t["cpu_s"] * 1e6 / n for t in group("runtime", b)])
for f in rt_refs:
    ts = group("runtime", head_batch, f)
    s[f"runtime_{head_batch}_inflight_{f}_steady"] = summary(f"runtime batch {head_batch}, {f} in flight", ts,
                                                            "steady_msgs_per_s")
    s[f"runtime_{head_batch}_inflight_{f}_wall"] = summary(f"runtime batch {head_batch}, {f} in flight", ts,
                                                          "wall_msgs_per_s")
    s[f"runtime_{head_batch}_inflight_{f}_vm_hwm_kib_max"] = max((t["vm_hwm_kib"] for t in ts), default=0)
    s[f"runtime_{head_batch}_inflight_{f}_cpu_us_per_msg"] = med([t["cpu_s"] * 1e6 / n for t in ts])
perf = group("kafka-perf")
s["kafka_perf_producer"] = summary("ProducerPerformance", perf, "producer_msgs_per_s")
s["kafka_perf_consumer"] = summary("ConsumerPerformance", perf, "consumer_msgs_per_s")
s["kafka_perf_consumer_fetch"] = summary("ConsumerPerformance (fetch only)", perf, "consumer_fetch_msgs_per_s")
s["kafka_only_vm_hwm_kib_max"] = max((t["vm_hwm_kib"] for t in ko), default=0)
s["kafka_only_cpu_us_per_msg"] = med([t["cpu_s"] * 1e6 / n for t in ko])

# Paired ratio: each round's headline runtime trial against that round's
# kafka-only trial, which ran just before it under the same load.
head = {t["round"]: t for t in group("runtime", head_batch)}
ratios = [head[t["round"]]["steady_msgs_per_s"] / t["steady_msgs_per_s"]
          for t in ko if t["round"] in head and t["steady_msgs_per_s"]]
ratio = statistics.median(ratios) if ratios else 0
# Issue 19: each round's headline runtime trial against that round's
# ProducerPerformance (same broker, same record size).
perf_by_round = {t["round"]: t for t in perf}
perf_ratios = [head[r]["steady_msgs_per_s"] / perf_by_round[r]["producer_msgs_per_s"]
               for r in sorted(head) if r in perf_by_round and perf_by_round[r]["producer_msgs_per_s"]]
perf_ratio = statistics.median(perf_ratios) if perf_ratios else 0
rt_med = s.get(f"runtime_{head_batch}_steady", {}).get("median", 0)
out["targets"] = {
    "runtime_msgs_per_s": {"target": 10000, "measured": rt_med, "met": rt_med >= 10000},
    "runtime_vs_kafka_only": {"target": 0.5, "measured": round(ratio, 3), "per_round": [round(r, 3) for r in ratios],
                              "met": ratio >= 0.5},
    "runtime_vs_producer_performance": {"target": 0.5, "measured": round(perf_ratio, 3),
                                        "per_round": [round(r, 3) for r in perf_ratios], "met": perf_ratio >= 0.5},
}
json.dump(out, open(json_out, "w"), indent=2, sort_keys=True)

def fmt(x):
    return f"{x:,}"
md = []
md.append("## Runtime pass-through\n")
md.append(f"{n:,} messages of {record_size} bytes (zl.deposits.detected/v1 JSON) per trial, {parts} partitions, "
          f"{rounds} interleaved rounds. *steady* = (messages − 1) / (last − first output CreateTime); *wall* = "
          "messages / (process start → all messages on the output topic), which includes connecting and joining "
          "the group. Medians, with min–max over the rounds.\n")
md.append("| what | steady msg/s | wall msg/s | peak RSS (VmHWM) | CPU µs/msg | all checks ok |")
md.append("|---|---:|---:|---:|---:|:-:|")
def line(label, st, wa, hwm, cpu, ok):
    md.append(f"| {label} | {fmt(st['median'])} ({fmt(st['min'])}–{fmt(st['max'])}) | "
              f"{fmt(wa['median'])} ({fmt(wa['min'])}–{fmt(wa['max'])}) | {hwm / 1024:.1f} MiB | {cpu} | "
              f"{'yes' if ok else 'NO'} |")
line(f"Kafka-only pass-through (batch {head_batch})", s["kafka_only_steady"], s["kafka_only_wall"],
     s["kafka_only_vm_hwm_kib_max"], s["kafka_only_cpu_us_per_msg"], s["kafka_only_steady"]["all_ok"])
for b in rt_batches:
    line(f"runtime, ZL_BATCH_SIZE_MAX={b}, ZL_BATCHES_INFLIGHT_MAX={head_inflight}", s[f"runtime_{b}_steady"],
         s[f"runtime_{b}_wall"], s[f"runtime_{b}_vm_hwm_kib_max"], s[f"runtime_{b}_cpu_us_per_msg"],
         s[f"runtime_{b}_steady"]["all_ok"])
for f in rt_refs:
    k = f"runtime_{head_batch}_inflight_{f}"
    line(f"runtime, ZL_BATCH_SIZE_MAX={head_batch}, ZL_BATCHES_INFLIGHT_MAX={f}", s[k + "_steady"], s[k + "_wall"],
         s[k + "_vm_hwm_kib_max"], s[k + "_cpu_us_per_msg"], s[k + "_steady"]["all_ok"])
if perf:
    md.append("")
    md.append("| broker limit (Kafka's own tools, same record size) | msg/s |")
    md.append("|---|---:|")
    for k in ("kafka_perf_producer", "kafka_perf_consumer", "kafka_perf_consumer_fetch"):
        md.append(f"| {s[k]['name']} | {fmt(s[k]['median'])} ({fmt(s[k]['min'])}–{fmt(s[k]['max'])}) |")
md.append("")
t = out["targets"]
md.append("| target | measured | met |")
md.append("|---|---:|:-:|")
md.append(f"| runtime ≥ 10,000 msg/s (batch {head_batch}, steady) | {fmt(t['runtime_msgs_per_s']['measured'])} | "
          f"{'yes' if t['runtime_msgs_per_s']['met'] else 'NO'} |")
md.append(f"| runtime ≥ 50% of Kafka-only (median of per-round ratios "
          f"{', '.join(f'{r:.2f}' for r in t['runtime_vs_kafka_only']['per_round'])}) | "
          f"{t['runtime_vs_kafka_only']['measured'] * 100:.0f}% | {'yes' if t['runtime_vs_kafka_only']['met'] else 'NO'} |")
pp = t["runtime_vs_producer_performance"]
md.append(f"| runtime ≥ 50% of Kafka's ProducerPerformance (issue 19; median of per-round ratios "
          f"{', '.join(f'{r:.2f}' for r in pp['per_round'])}) | {pp['measured'] * 100:.0f}% | "
          f"{'yes' if pp['met'] else 'NO'} |")
md.append("")
md.append("Checks per trial: the output topic holds exactly N messages with N distinct keys; for the runtime also "
          "N rows `verified` and N `pt_effects` rows with n = 1 (no loss, no double effect), and exit code 0 after "
          "SIGTERM.\n")
md.append("<details><summary>every trial, in the order run</summary>\n")
md.append("| round | kind | batch | in flight | steady msg/s | wall s | VmHWM KiB | CPU s | load1 before→after | ok |")
md.append("|---:|---|---:|---:|---:|---:|---:|---:|---|:-:|")
for tr in trials:
    if tr["kind"] == "kafka-perf":
        md.append(f"| {tr['round']} | kafka-perf | | | producer {fmt(tr['producer_msgs_per_s'])}, consumer "
                  f"{fmt(tr['consumer_msgs_per_s'])} | | | | →{tr['load1_after']} | |")
    else:
        md.append(f"| {tr['round']} | {tr['kind']} | {tr['batch_size_max']} | {tr.get('batches_inflight_max', '')} | "
                  f"{fmt(tr['steady_msgs_per_s'])} | "
                  f"{tr['wall_s']} | {tr['vm_hwm_kib']} | {tr['cpu_s']} | {tr['load1_before']}→{tr['load1_after']} | "
                  f"{'yes' if tr['ok'] else 'NO'} |")
md.append("\n</details>\n")
open(md_out, "w").write("\n".join(md) + "\n")
EOF
bench_say "runtime: done ($(wc -l < "$trials") trials)"
