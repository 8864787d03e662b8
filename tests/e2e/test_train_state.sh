#!/usr/bin/env bash
# The training state on a tiny synthetic task:
#  1. a resume in the middle of an adaptation epoch, followed by later
#     checkpoints: every field of every later checkpoint, the labels files
#     and the final weights equal an uninterrupted run's;
#  2. the same run on 1, 2 and 3 ranks: pretrained weights within 1e-5
#     (relative L2 of the whole model), the first adaptation epoch's labels
#     equal, final weights within 1e-2 (the first Adam step of a stage moves
#     every weight by +-lr, so rounding-level differences of the sums, which
#     depend on the rank count, can flip a step's sign);
#  3. the checkpoint layout that `slr inspect --schema` prints is the one
#     docs/train.md documents, and `slr inspect` shows every field.
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
cmp="$src/tests/e2e/compare_runs.py"
in_tmp

adapt_task 24 3 2 || exit 1
# the task, without its checkpoint section
task=(--pad 2 --pretrain-solver "schedule: multistep, milestones: [2], warmup_epochs: 1"
      --pretrain "epochs: 2, iters: 3, batch_size: 8, instances: 2" --adapt "epochs: 2, iters: 3, batch_size: 8, instances: 2"
      --k1 8 --refine "mode: hierarchical, alpha: 0.5, threshold: 0.5, soft_weight: 0.5")
adapt_config "${task[@]}" --checkpoint "every_steps: 1, keep: 100" > tiny.yaml
train() { "$mpiexec" -n "$1" "$slr" train --config tiny.yaml --out "$2" > "$2.log" 2>&1; }

# 1. mid-epoch resume: run A whole; B = A cut back to the checkpoint after
#    the second step of the first adaptation epoch (position 6 + 2), so that
#    the second epoch's labels and every later checkpoint come after it
train 2 A || { bad "uninterrupted run"; tail -20 A.log; exit 1; }
cp -r A B
for f in B/checkpoints/ckpt-*.h5; do
  p=$(basename "$f" .h5); p=$((10#${p#ckpt-})); [ "$p" -gt 8 ] && rm -f "$f"
done
rm -f B/labels/epoch-002.h5 B/final.h5 B/summary.json
train 2 B
if [ $? -eq 0 ] && grep -q "resuming from B/checkpoints/ckpt-000000000008.h5 (adapt, epoch 1, step 2)" B.log; then
  ok "resumed in the middle of an epoch"
else
  bad "resumed in the middle of an epoch"; tail -5 B.log
fi
later=0
for p in 9 10 11 12; do
  f=checkpoints/ckpt-$(printf %012d $p).h5
  if $py "$cmp" checkpoint "A/$f" "B/$f" > cmp.log; then later=$((later+1)); else cat cmp.log; fi
done
[ "$later" = 4 ] && ok "every field of the later checkpoints equal" || bad "later checkpoints"
h5diff -q A/labels/epoch-002.h5 B/labels/epoch-002.h5 && ok "labels file after the resume equal" || bad "labels file after the resume"
h5diff -q A/final.h5 B/final.h5 && ok "final weights equal" || bad "final weights"
diff <(untimed A/metrics.jsonl) <(untimed B/metrics.jsonl) > /dev/null && ok "metrics equal" || bad "metrics"

# 2. 1, 2 and 3 ranks
adapt_config "${task[@]}" --checkpoint "keep: 1" > tiny.yaml
for r in 1 3; do train "$r" R$r || { bad "run on $r ranks"; tail -5 R$r.log; }; done
for r in 3; do
  $py "$cmp" weights R1/pretrain.h5 R$r/pretrain.h5 1e-5 && ok "pretrained weights, 1 vs $r ranks" || bad "pretrained weights, 1 vs $r ranks"
  $py "$cmp" labels R1/labels R$r/labels 1 && ok "labels, 1 vs $r ranks" || bad "labels, 1 vs $r ranks"
  $py "$cmp" weights R1/final.h5 R$r/final.h5 1e-2 && ok "final weights, 1 vs $r ranks" || bad "final weights, 1 vs $r ranks"
done
$py "$cmp" weights R1/pretrain.h5 A/pretrain.h5 1e-5 && ok "pretrained weights, 1 vs 2 ranks" || bad "pretrained weights, 1 vs 2 ranks"
$py "$cmp" labels R1/labels A/labels 1 && ok "labels, 1 vs 2 ranks" || bad "labels, 1 vs 2 ranks"
$py "$cmp" weights R1/final.h5 A/final.h5 1e-2 && ok "final weights, 1 vs 2 ranks" || bad "final weights, 1 vs 2 ranks"

# 3. the schema: printed, documented, shown
"$slr" inspect --schema > schema.md
if [ -s schema.md ] && grep -qF -f schema.md "$src/docs/train.md" && \
   [ "$(grep -cF -f schema.md "$src/docs/train.md")" = "$(wc -l < schema.md)" ]; then
  ok "docs/train.md documents the checkpoint layout"
else
  bad "docs/train.md documents the checkpoint layout (slr inspect --schema differs)"
fi
ck=A/checkpoints/ckpt-000000000012.h5
"$slr" inspect "$ck" > inspect.log
missing=0
for f in $(sed -n 's/^| `\([^`]*\)`.*/\1/p' schema.md); do grep -q "^  $f " inspect.log || { missing=1; echo "  not shown: $f"; }; done
[ $missing = 0 ] && ok "slr inspect shows every field" || bad "slr inspect shows every field"
$py - "$ck" <<'PY' && ok "h5py reads the checkpoint's fields" || bad "h5py reads the checkpoint's fields"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f.attrs["slr_format"] in (b"checkpoint", "checkpoint")
assert f["/model/params"].shape[0] > 0 and f["/labels/projection/indptr"].shape[0] >= 1
assert f["/memory"].shape[0] == f.attrs["clusters"]
PY
"$slr" inspect --config "$ck" | grep -q "^refine:" && ok "slr inspect --config" || bad "slr inspect --config"

# 4. a resume with a changed configuration: refused naming the key, unless
#    --force-config (logged, the old config.yaml kept); a key that does not
#    change the arithmetic may change
cp -r A Z
"$mpiexec" -n 2 "$slr" train --config tiny.yaml --out Z --set cluster.eps=0.65 > z1.log 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "cluster.eps: 0.7 -> 0.65" z1.log && grep -q -- "--force-config" z1.log; then
  ok "a changed configuration is refused, naming the key"
else
  bad "a changed configuration is refused (exit $rc)"; head -3 z1.log
fi
"$mpiexec" -n 2 "$slr" train --config tiny.yaml --out Z --set run.log_level=warn > z2.log 2>&1 && ok "a changed log level is accepted" || { bad "a changed log level is accepted"; head -3 z2.log; }
"$mpiexec" -n 2 "$slr" train --config tiny.yaml --out Z --set cluster.eps=0.65 --force-config > z3.log 2>&1
if [ $? -eq 0 ] && ls Z/config-*.yaml > /dev/null 2>&1 && grep -q '"event": "config_changed"' Z/metrics.jsonl && grep -q "eps: 0.65" Z/config.yaml; then
  ok "--force-config accepts it, logs it and keeps the old config.yaml"
else
  bad "--force-config"; tail -3 z3.log
fi
[ -s A/log.txt ] && grep -q "T.*done: A" A/log.txt && ok "RUN/log.txt with timestamps" || bad "RUN/log.txt with timestamps"

checked
