# Shared pieces of the e2e tests (sourced, not a test): counted checks; a
# tiny target domain and a one-stage pretraining config on it; a tiny
# source/target pair and a two-stage (pretraining + adaptation) config on it;
# a comparison of two runs. Needs $slr (the slr binary); sets $mpiexec
# ($MPIEXEC, or mpiexec) and $py (the Python with the reference libraries).

mpiexec="${MPIEXEC:-mpiexec}"
py=/usr/bin/python3

# needs_py MODULE: the test ends as skipped (77) unless $py imports MODULE
needs_py() { $py -c "import $1" 2> /dev/null || { echo "SKIP: $1 missing in $py"; exit 77; }; }

# in_tmp: the test goes on in a new temporary folder, $tmp, removed when it exits
in_tmp() {
  tmp=$(mktemp -d) || exit 1
  trap 'rm -rf "$tmp"' EXIT
  cd "$tmp" || exit 1
}

# counted checks: `ok NAME` and `bad NAME` count a passed and a failed check;
# `check NAME STATUS TEXT -- COMMAND...` passes if COMMAND (stopped after
# 120 s) exits with STATUS and prints TEXT (its output is left in out.txt);
# `checked`, last in a test, prints the tally and fails if any check failed
fails=0; n=0
ok() { n=$((n+1)); echo "ok   $1"; }
bad() { n=$((n+1)); fails=$((fails+1)); echo "FAIL $1"; }
check() {
  local name="$1" want="$2" text="$3"; shift 4
  timeout -k 5 120 "$@" > out.txt 2>&1
  local got=$?
  n=$((n+1))
  if [ "$got" = "$want" ] && grep -qF -- "$text" out.txt; then echo "ok   $name"; return; fi
  fails=$((fails+1)); echo "FAIL $name (exit $got, wanted $want, text: $text)"; tail -5 out.txt | sed 's/^/     | /'
}
checked() { echo "$((n - fails))/$n passed"; [ $fails -eq 0 ]; }

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

# adapt_task IDS CAMS PER_CAM: in the current folder, src/ (synthetic, seed 3)
# and tgt/ (realistic, seed 4), each IDS identities x CAMS cameras x PER_CAM
# images per camera at 64x32
adapt_task() {
  "$slr" synth src --style synthetic --ids "$1" --cams "$2" --per-cam "$3" --height 64 --width 32 \
    --seed 3 > /dev/null &&
    "$slr" synth tgt --style realistic --ids "$1" --cams "$2" --per-cam "$3" --height 64 --width 32 \
      --seed 4 > /dev/null
}

# adapt_config OPTION VALUE ...: prints a two-stage config (pretraining on
# src/, adaptation to tgt/, a ResNet-18 of width 0.125 with GeM pooling, an
# evaluation every epoch). Options (the bodies are YAML flow maps' bodies):
#   --pretrain BODY, --adapt BODY   train.pretrain and train.adapt (required)
#   --checkpoint BODY               the checkpoint section (required)
#   --root DIR                      the data under DIR/src and DIR/tgt
#   --pad N                         data.pad
#   --pretrain-solver BODY          solver.pretrain
#   --k1 N                          cluster.k1 (default 6)
#   --refine BODY                   the refine section (default: none)
adapt_config() {
  local root="" pad="" solver="" k1=6 refine="" pretrain="" adapt="" checkpoint=""
  while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || { echo "adapt_config: $1 needs a value" >&2; return 1; }
    case "$1" in
      --root) root="$2/" ;;
      --pad) pad="$2" ;;
      --pretrain-solver) solver="$2" ;;
      --k1) k1="$2" ;;
      --refine) refine="$2" ;;
      --pretrain) pretrain="$2" ;;
      --adapt) adapt="$2" ;;
      --checkpoint) checkpoint="$2" ;;
      *) echo "adapt_config: unknown option $1" >&2; return 1 ;;
    esac
    shift 2
  done
  [ -n "$pretrain" ] && [ -n "$adapt" ] && [ -n "$checkpoint" ] ||
    { echo "adapt_config: --pretrain, --adapt and --checkpoint are required" >&2; return 1; }
  printf 'data:\n  source: {format: market1501, root: %ssrc}\n' "$root"
  printf '  target: {format: market1501, root: %stgt}\n' "$root"
  printf '  height: 64\n  width: 32\n'
  [ -z "$pad" ] || printf '  pad: %s\n' "$pad"
  printf '  workers: 1\n'
  printf 'model: {arch: resnet18, width: 0.125, last_stride: 1, pool: gem}\n'
  [ -z "$solver" ] || printf 'solver:\n  pretrain: {%s}\n' "$solver"
  printf 'train:\n  pretrain: {%s}\n  adapt: {%s}\n' "$pretrain" "$adapt"
  printf 'cluster: {k1: %s, k2: 3, eps: 0.7, min_samples: 2}\n' "$k1"
  [ -z "$refine" ] || printf 'refine: {%s}\n' "$refine"
  printf 'eval: {every: 1, batch_size: 16}\n'
  printf 'checkpoint: {%s}\n' "$checkpoint"
  printf 'run: {threads: 1, progress_interval: 1000}\n'
}

# untimed FILE: a metrics.jsonl without its timings (which differ between runs)
untimed() { sed -E 's/, "(seconds|images_per_s|t_cluster|t_refine|time)": [^,}]*//g' "$1"; }

# same_run A B: true if the runs in the folders A and B ended with the same
# weights (final.h5) and logged the same metrics but for timings; if not,
# prints the first lines where the metrics differ
same_run() {
  h5diff -q "$1/final.h5" "$2/final.h5" &&
    diff <(untimed "$1/metrics.jsonl") <(untimed "$2/metrics.jsonl") > /dev/null && return 0
  diff <(untimed "$1/metrics.jsonl") <(untimed "$2/metrics.jsonl") | head -5
  return 1
}

# tiny_adapt_run: in the current folder, src/ and tgt/ (12 identities x 2
# cameras x 2 images each), tiny.yaml (pretraining and adaptation, one epoch
# of 2 steps each, a checkpoint after every step) and its run on 2 ranks in
# run/ (log: train.log). Needs $slr and $MPIEXEC. Fails (non-zero, with a
# message) unless the run ends with its 4 checkpoints, left in the array ck.
tiny_adapt_run() {
  adapt_task 12 2 2 || { echo "FAIL: synth"; return 1; }
  adapt_config --pretrain "epochs: 1, iters: 2, batch_size: 8, instances: 2" \
    --adapt "epochs: 1, iters: 2, batch_size: 8, instances: 2" \
    --checkpoint "every_steps: 1, keep: 10" > tiny.yaml
  $MPIEXEC -n 2 "$slr" train --config tiny.yaml --out run > train.log 2>&1 ||
    { cat train.log; echo "FAIL: train"; return 1; }
  ck=(run/checkpoints/ckpt-*.h5)
  [ ${#ck[@]} -eq 4 ] || { echo "FAIL: expected 4 checkpoints, got ${#ck[@]}"; return 1; }
}
