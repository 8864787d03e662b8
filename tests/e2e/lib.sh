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
