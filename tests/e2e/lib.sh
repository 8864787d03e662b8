# Shared pieces of the e2e tests (sourced, not a test): a tiny target domain
# and a one-stage pretraining config on it. Needs $slr (the slr binary).

# tgt/: 8 identities x 2 cameras x 3 images at 64x32, seed 6
tiny_target() {
  "$slr" synth tgt --style realistic --ids 8 --cams 2 --per-cam 3 --height 64 --width 32 \
    --seed 6 > /dev/null
}

# tiny_config FILE PRETRAIN [EXTRA]: a pretraining-only config on tgt/ with
# train.pretrain = {PRETRAIN} (a YAML flow map's body) and EXTRA (YAML lines)
# before the run section
tiny_config() {
  {
    printf 'data:\n  source: {format: market1501, root: tgt}\n'
    printf '  target: {format: market1501, root: tgt}\n'
    printf '  height: 64\n  width: 32\n  workers: 1\n'
    printf 'model: {arch: resnet18, width: 0.125}\n'
    printf 'train:\n  stages: [pretrain]\n  pretrain: {%s}\n' "$2"
    printf 'eval: {every: 0, batch_size: 16}\n'
    [ -z "${3:-}" ] || printf '%s\n' "$3"
    printf 'run: {threads: 1}\n'
  } > "$1"
}

# tiny_adapt_run: in the current folder, src/ and tgt/ (12 identities x 2
# cameras x 2 images each), tiny.yaml (pretraining and adaptation, one epoch
# of 2 steps each, a checkpoint after every step) and its run on 2 ranks in
# run/ (log: train.log). Needs $slr and $MPIEXEC. Fails (non-zero, with a
# message) unless the run ends with its 4 checkpoints, left in the array ck.
tiny_adapt_run() {
  "$slr" synth src --style synthetic --ids 12 --cams 2 --per-cam 2 --seed 3 > /dev/null &&
    "$slr" synth tgt --style realistic --ids 12 --cams 2 --per-cam 2 --seed 4 > /dev/null ||
    { echo "FAIL: synth"; return 1; }
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
  $MPIEXEC -n 2 "$slr" train --config tiny.yaml --out run > train.log 2>&1 ||
    { cat train.log; echo "FAIL: train"; return 1; }
  ck=(run/checkpoints/ckpt-*.h5)
  [ ${#ck[@]} -eq 4 ] || { echo "FAIL: expected 4 checkpoints, got ${#ck[@]}"; return 1; }
}
