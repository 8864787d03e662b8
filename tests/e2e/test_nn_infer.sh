#!/bin/bash
# slr infer: features of a narrow resnet50 (last stride 1, GeM, neck) from a
# weight file converted by tools/torch2h5.py, against PyTorch's outputs
# (tests/fixtures/nn/r50_eval.h5), on 1 and 2 ranks; weight-file errors name
# the key and both shapes and leave no output.
set -u
SLR=$1
SRC=$2
MPIEXEC=${MPIEXEC:-mpiexec}
FX=$SRC/tests/fixtures/nn
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# dump a dataset as one number per line
dump() { h5dump -m '%.9g' -d "$2" -y -w 1 "$1" | sed -n '/DATA {/,/}/p' | tr -d ' ,' | grep -E '^-?[0-9]'; }
# max |a - b| <= tol * max |b| (the second tensor's scale)
close() {
  paste <(dump "$1" "$2") <(dump "$3" "$4") |
    awk -v tol="$5" '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d;
        s = $2 < 0 ? -$2 : $2; if (s > sc) sc = s; n++}
      END {printf "max diff %g, scale %g, %d values\n", m, sc, n; exit !(n > 0 && m <= tol * sc)}'
}

ARGS="--weights $FX/r50_weights.h5 --arch resnet50 --width 4 --last-stride 1 --pool gem --input $FX/r50_eval.h5"
$MPIEXEC -n 1 "$SLR" infer $ARGS --out "$T/f1.h5" --batch 2 || fail "infer on 1 rank"
close "$T/f1.h5" /features "$FX/r50_eval.h5" /normalized 1e-4 || fail "normalized features differ from PyTorch"
$MPIEXEC -n 2 "$SLR" infer $ARGS --out "$T/f2.h5" --batch 1 || fail "infer on 2 ranks"
close "$T/f2.h5" /features "$T/f1.h5" /features 1e-6 || fail "2 ranks differ from 1 rank"
$MPIEXEC -n 2 "$SLR" infer $ARGS --out "$T/p.h5" --output pooled || fail "infer pooled"
close "$T/p.h5" /features "$FX/r50_eval.h5" /pooled 1e-4 || fail "pooled features differ from PyTorch"
$MPIEXEC -n 1 "$SLR" infer $ARGS --out "$T/n.h5" --output neck || fail "infer neck"
close "$T/n.h5" /features "$FX/r50_eval.h5" /neck 1e-4 || fail "neck features differ from PyTorch"

# a wrong shape: the message names the key and both shapes; no output left
out=$($MPIEXEC -n 2 "$SLR" infer $ARGS --width 8 --out "$T/bad.h5" 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "wrong shape: exit $rc"
echo "$out" | grep -q "conv1.weight" || fail "wrong shape: no key in: $out"
echo "$out" | grep -q "(4, 3, 7, 7)" || fail "wrong shape: no file shape in: $out"
echo "$out" | grep -q "(8, 3, 7, 7)" || fail "wrong shape: no model shape in: $out"
[ ! -e "$T/bad.h5" ] && [ ! -e "$T/bad.h5.tmp" ] || fail "partial output left"
# a missing key
out=$($MPIEXEC -n 1 "$SLR" infer $ARGS --arch resnet50_ibn_a --out "$T/bad.h5" 2>&1)
[ $? -eq 1 ] || fail "missing key: exit code"
echo "$out" | grep -q "layer1.0.bn1.IN.weight.*missing" || fail "missing key: $out"
# usage errors exit 2
$MPIEXEC -n 1 "$SLR" infer $ARGS --out "$T/bad.h5" --output nope >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad --output: exit code"
echo "ok"
