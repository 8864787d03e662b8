#!/bin/bash
# slr export: a tiny training run (2 ranks, a checkpoint after every step);
# its pretraining checkpoint exported equals pretrain.h5 (classifier kept),
# its last one final.h5, with the model description attributes; errors for a
# checkpoint without its run's configuration, a configuration of another
# model, a file that is not a checkpoint; no partial output.
set -u
SLR=$(readlink -f "$1")
MPIEXEC=${MPIEXEC:-mpiexec}
fail() { echo "FAIL: $*"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

# ---- a tiny run: pretrain and adapt, a checkpoint after every step ----------
"$SLR" synth src --style synthetic --ids 12 --cams 2 --per-cam 2 --seed 3 > /dev/null || fail "synth"
"$SLR" synth tgt --style realistic --ids 12 --cams 2 --per-cam 2 --seed 4 > /dev/null || fail "synth"
cat > tiny.yaml <<'YAML'
data:
  source: {format: market1501, root: src}
  target: {format: market1501, root: tgt}
  height: 64
  width: 32
  workers: 1
model: {arch: resnet18, width: 0.125, last_stride: 1, pool: gem}
train:
  pretrain: {epochs: 1, iters: 2, batch_size: 8, instances: 2}
  adapt: {epochs: 1, iters: 2, batch_size: 8, instances: 2}
cluster: {k1: 6, k2: 3, eps: 0.7, min_samples: 2}
eval: {every: 1, batch_size: 16}
checkpoint: {every_steps: 1, keep: 10}
run: {threads: 1, progress_interval: 1000}
YAML
$MPIEXEC -n 2 "$SLR" train --config tiny.yaml --out run > train.log 2>&1 || { cat train.log; fail "train"; }
ck=(run/checkpoints/ckpt-*.h5)
[ ${#ck[@]} -eq 4 ] || fail "expected 4 checkpoints, got ${#ck[@]}"

# ---- slr export ---------------------------------------------------------------
$MPIEXEC -n 2 "$SLR" export "${ck[1]}" --out pre.h5 > export.log 2>&1 || { cat export.log; fail "export pretrain checkpoint"; }
grep -q "with its classifier" export.log || fail "export of a pretrain checkpoint keeps the classifier: $(cat export.log)"
h5diff -q pre.h5 run/pretrain.h5 /model /model || fail "exported pretrain checkpoint differs from pretrain.h5"
"$SLR" export "${ck[3]}" --out fin.h5 > /dev/null || fail "export last checkpoint"
h5diff -q fin.h5 run/final.h5 /model /model || fail "exported last checkpoint differs from final.h5"
for a in arch width last_stride pool gem_p neck feat_dim num_classes; do
  h5dump -a "/$a" fin.h5 > /dev/null 2>&1 || fail "exported weights lack the attribute $a"
done
# the configuration beside the checkpoints is needed when the checkpoint does not describe its model
mkdir -p lone/checkpoints && cp "${ck[3]}" lone/checkpoints/
out=$("$SLR" export lone/checkpoints/$(basename "${ck[3]}") --out bad.h5 2>&1)
[ $? -eq 1 ] || fail "export without config: exit code: $out"
if ! h5dump -a /model/arch "${ck[3]}" > /dev/null 2>&1; then
  echo "$out" | grep -q "config.yaml.*does not exist.*--config" || fail "export without config: $out"
fi
out=$("$SLR" export lone/checkpoints/$(basename "${ck[3]}") --out bad.h5 --config tiny.yaml --set model.arch=resnet34 2>&1)
[ $? -eq 1 ] || fail "export with another model: exit code"
echo "$out" | grep -q "parameters.*resnet34.*is that the configuration of this run" || fail "export mismatch: $out"
out=$("$SLR" export run/final.h5 --out bad.h5 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q 'slr_format "weights", expected "checkpoint"' || fail "export of a weights file: $out"
[ ! -e bad.h5 ] && [ ! -e bad.h5.tmp ] || fail "export left a partial output"
out=$("$SLR" export 2>&1); [ $? -eq 2 ] || fail "export without arguments: exit code"

echo ok
