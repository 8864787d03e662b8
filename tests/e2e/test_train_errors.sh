#!/usr/bin/env bash
# slr train and slr extract as a user meets them: a tiny run on 2 ranks
# (its files, extract + evaluate on its weights), then bad configurations
# and missing data, each named in the error with a non-zero exit and no run
# left behind.
set -u
slr="$1"; src="$2"
mpiexec="${MPIEXEC:-mpiexec}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fails=0; n=0
check() { # name expected_status text -- command...
  local name="$1" want="$2" text="$3"; shift 4
  "$@" > out.txt 2>&1
  local got=$?
  n=$((n+1))
  if { [ "$want" = nonzero ] && [ $got -ne 0 ]; } || [ "$got" = "$want" ]; then
    if grep -qF -- "$text" out.txt; then echo "ok   $name"; return; fi
  fi
  fails=$((fails+1)); echo "FAIL $name (exit $got, wanted $want, text: $text)"; tail -5 out.txt | sed 's/^/     | /'
}

"$slr" synth src --style synthetic --ids 16 --cams 2 --per-cam 3 --height 64 --width 32 --seed 5 > /dev/null
"$slr" synth tgt --style realistic --ids 16 --cams 2 --per-cam 3 --height 64 --width 32 --seed 6 > /dev/null
cat > tiny.yaml <<'YAML'
data:
  source: {format: market1501, root: src}
  target: {format: market1501, root: tgt}
  height: 64
  width: 32
  workers: 1
model: {arch: resnet18, width: 0.125}
train:
  pretrain: {epochs: 1, iters: 2, batch_size: 8, instances: 2}
  adapt: {epochs: 2, iters: 2, batch_size: 8, instances: 2}
cluster: {k1: 6, k2: 3, eps: 0.7, min_samples: 2}
refine: {mode: argmax}
eval: {every: 1, batch_size: 16}
run: {threads: 1}
YAML
check "re-ranking k1 above the target's size, before training" 1 "eval.rerank_k1 = 100" -- "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out rr --set eval.rerank=true --set eval.rerank_k1=100
[ ! -e rr ] && { n=$((n+1)); echo "ok   no run folder for it"; } || { n=$((n+1)); fails=$((fails+1)); echo "FAIL no run folder for it"; }
check "no stages" 1 "train.stages is empty" -- "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out st --set "train.stages=[]"
check "tiny run" 0 "done: run" -- "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out run
# written to a file through mpiexec: plain progress lines, no redrawing
n=$((n+1)); if grep -q "extract target: 100.0%" out.txt && ! grep -q $'\r' out.txt; then echo "ok   plain progress lines"; else fails=$((fails+1)); echo "FAIL plain progress lines"; fi
for f in config.yaml metrics.jsonl pretrain.h5 final.h5 summary.json; do
  n=$((n+1)); if [ -s "run/$f" ]; then echo "ok   run/$f"; else fails=$((fails+1)); echo "FAIL run/$f missing"; fi
done
n=$((n+1)); if grep -q '"refine": "argmax"' run/metrics.jsonl && grep -q '"mAP"' run/summary.json; then echo "ok   metrics"; else fails=$((fails+1)); echo "FAIL metrics"; fi
check "extract test split" 0 "features: f.h5" -- "$mpiexec" -n 2 "$slr" extract --config tiny.yaml --weights run/final.h5 --split test --out f.h5
check "evaluate extracted" 0 "mAP" -- "$slr" evaluate --features f.h5
check "extract train split" 0 "features: t.h5" -- "$slr" extract --config tiny.yaml --weights run/final.h5 --split train --out t.h5
check "cluster extracted" 0 "clusters" -- "$slr" cluster --features t.h5 --out l.h5 --k1 6 --k2 3 --eps 0.7 --min-samples 2

check "missing --out" 2 "--config and --out are required" -- "$slr" train --config tiny.yaml
check "bad key" 1 'unknown key "train.adapt.epoch"' -- "$slr" train --config tiny.yaml --out bad1 --set train.adapt.epoch=3
check "bad value" 1 'train.adapt.epochs: "many"' -- "$slr" train --config tiny.yaml --out bad1 --set train.adapt.epochs=many
check "missing data" 1 "nowhere" -- "$slr" train --config tiny.yaml --out bad2 --set data.target.root=nowhere
check "no source format" 1 "data.source.format is none" -- "$slr" train --config tiny.yaml --out bad3 --set data.source.format=none
check "missing weights" 1 "missing.h5" -- "$slr" extract --config tiny.yaml --weights missing.h5 --split query --out q.h5
check "bad split" 2 '--split "val"' -- "$slr" extract --config tiny.yaml --weights run/final.h5 --split val --out q.h5
check "wrong model for weights" 1 "model.width 0.25 (16 channels), the file 8" -- "$slr" extract --config tiny.yaml --set model.width=0.25 --weights run/final.h5 --split query --out q.h5
n=$((n+1)); if [ ! -e q.h5 ] && [ ! -e q.h5.tmp ] && [ ! -e bad1 ] && [ ! -e bad2 ] && [ ! -e bad3 ]; then echo "ok   no partial output"; else fails=$((fails+1)); echo "FAIL partial output left"; ls; fi
check "inspect a checkpoint" 0 "position  adapt" -- "$slr" inspect "$(ls run/checkpoints/*.h5 | tail -1)"
echo "$((n-fails)) passed, $fails failed"
[ $fails -eq 0 ]
