#!/usr/bin/env bash
# tools/bench/study.sh on a tiny task, 2 ranks: the study is killed in the
# middle of a run (after that run's first checkpoint), started again with the
# same command, and must resume that run (not start it over), finish every
# run, and write the report (table with every variant and the paired
# differences, JSON, plot). The task pretrains in two steps (the second from
# the first's weights), once. Also: --count, --describe, bad arguments.
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
in_tmp
export SLR="$slr"

{
  cat <<'YAML'
# a tiny study task (test only)
#@synth source --style synthetic --ids 16 --cams 2 --per-cam 2 --height 64 --width 32 --seed 3 --train-frac 0.75
#@synth target --style realistic --ids 16 --cams 2 --per-cam 3 --height 64 --width 32 --seed 4 --train-frac 0.75
#@pretrain solver.pretrain.lr=1e-3
#@pretrain train.pretrain.epochs=0
YAML
  adapt_config --root data --pad 2 --pretrain-solver "schedule: multistep, milestones: [2], warmup_epochs: 1" \
    --pretrain "epochs: 1, iters: 2, batch_size: 8, instances: 2" --adapt "epochs: 3, iters: 2, batch_size: 8, instances: 2" \
    --refine "mode: hierarchical, alpha: 0.5, threshold: 0.5" --checkpoint "every_steps: 1, keep: 2"
} > tiny.yaml
study=(bash "$src/tools/bench/study.sh" --config tiny.yaml --root st --seeds "1 2"
       --modes "none argmax" --variant "a3 refine.alpha=0.3")

[ "$("${study[@]}" --count)" = 6 ] && ok "--count" || bad "--count"
d=$("${study[@]}" --describe 2)
if echo "$d" | head -1 | grep -q 'st/runs/a3-seed1$' && echo "$d" | grep -qx 'refine.alpha=0.3' &&
   echo "$d" | grep -qx 'run.seed=1' && echo "$d" | grep -qx 'refine.mode=hierarchical'; then
  ok "--describe"
else bad "--describe"; echo "$d"; fi
bash "$src/tools/bench/study.sh" --config tiny.yaml --variant "bad name" > err.txt 2>&1 && bad "bad variant rejected" ||
  { grep -q "not key=value" err.txt && ok "bad variant rejected" || { bad "bad variant message"; cat err.txt; }; }
bash "$src/tools/bench/study.sh" --config missing.yaml > err.txt 2>&1 && bad "missing config" ||
  { grep -q "missing.yaml" err.txt && ok "missing config rejected" || bad "missing config message"; }

# 1. start, kill the whole study once the second run has a checkpoint and no summary
setsid "${study[@]}" > study1.log 2>&1 &
pid=$!
victim=st/runs/argmax-seed1
for _ in $(seq 1 600); do
  ls "$victim"/checkpoints/ckpt-*.h5 > /dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
if [ -f "$victim/summary.json" ] || ! kill -0 $pid 2>/dev/null; then
  bad "study still running at the kill"; cat study1.log
else
  kill -KILL -- -$pid; wait $pid 2>/dev/null
  # Open MPI puts the ranks in process groups of their own: kill them too,
  # as a node's failure would, and wait until they are gone
  pkill -KILL -f -- "--out $victim( |$)"
  for _ in $(seq 1 100); do pgrep -f -- "--out $victim( |$)" > /dev/null || break; sleep 0.1; done
  ok "study killed during $victim"
fi
[ -f st/runs/none-seed1/summary.json ] && ok "first run done before the kill" || bad "first run done before the kill"
[ ! -f "$victim/summary.json" ] && ok "killed run unfinished" || bad "killed run unfinished"

# 2. the same command again
if "${study[@]}" > study2.log 2>&1; then ok "study resumed and finished"; else bad "study resumed (exit $?)"; tail -30 study2.log; fi
grep -q "resuming from" "$victim.log" && ok "killed run resumed from its checkpoint" || bad "killed run resumed"
grep -q "argmax seed 1: .* (resumed)" study2.log && ok "resume reported" || bad "resume reported"
grep -q "^none seed 1" study2.log && bad "finished run not run again" || ok "finished run not run again"
done=$(ls st/runs/*/summary.json 2>/dev/null | wc -l)
[ "$done" = 6 ] && ok "all 6 runs done" || bad "all 6 runs done ($done)"
[ -f st/pretrain-1/pretrain.h5 ] && [ -f st/pretrain/pretrain.h5 ] && ok "two pretraining steps" || bad "two pretraining steps"
grep -q "model.pretrained=st/pretrain-1/pretrain.h5" st/pretrain.log 2>/dev/null || grep -q "pretrain-1/pretrain.h5" st/pretrain/config.yaml &&
  ok "second step starts from the first" || bad "second step starts from the first"
[ "$(grep -c 'pretrain step' study1.log study2.log | awk -F: '{s+=$2} END {print s}')" = 2 ] && ok "pretrained once" || bad "pretrained once"
for v in none argmax a3; do
  grep -q "^| $v | 2 |" st/report/study.md && ok "table row $v" || bad "table row $v"
done
grep -q "^| a3 | argmax | [+-][0-9.]* \[[+-][0-9.]*, [+-][0-9.]*\] ([0-2]/2) |" st/report/study.md && ok "paired difference row" ||
  { bad "paired difference row"; cat st/report/study.md; }
if /usr/bin/python3 -c "import matplotlib" 2> /dev/null; then
  [ -s st/report/study.png ] && ok "plot written" || bad "plot written"
else
  echo "skip plot (no python3-matplotlib)"
fi
/usr/bin/python3 - st/report/study.json <<'PY' && ok "JSON: paired differences equal the per-seed values" || bad "JSON check"
import json, sys
j = json.load(open(sys.argv[1]))
rows = {r["variant"]: r for r in j["variants"]}
d = [p for p in j["paired"] if p["variant"] == "a3" and p["against"] == "none"][0]["mAP"]
h, b = rows["a3"]["mAP"]["values"], rows["none"]["mAP"]["values"]
want = [h[s] - b[s] for s in ("1", "2")]
assert d["n"] == 2 and all(abs(x - y) < 1e-12 for x, y in zip(d["diffs"], want)), (d, want)
assert abs(d["mean"] - sum(want) / 2) < 1e-12
assert d["positive"] == sum(x > 0 for x in want)
PY

checked
