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

# the fixture comes from tools/torch2h5.py without --last-stride: its keys
# give arch, width, pooling and neck; the last stride must be given
ARGS="--weights $FX/r50_weights.h5 --last-stride 1 --input $FX/r50_eval.h5"
$MPIEXEC -n 1 "$SLR" infer $ARGS --out "$T/f1.h5" --batch 2 || fail "infer on 1 rank"
close "$T/f1.h5" /features "$FX/r50_eval.h5" /normalized 1e-4 || fail "normalized features differ from PyTorch"
$MPIEXEC -n 2 "$SLR" infer $ARGS --out "$T/f2.h5" --batch 1 || fail "infer on 2 ranks"
close "$T/f2.h5" /features "$T/f1.h5" /features 1e-6 || fail "2 ranks differ from 1 rank"
$MPIEXEC -n 2 "$SLR" infer $ARGS --out "$T/p.h5" --output pooled || fail "infer pooled"
close "$T/p.h5" /features "$FX/r50_eval.h5" /pooled 1e-4 || fail "pooled features differ from PyTorch"
$MPIEXEC -n 1 "$SLR" infer $ARGS --out "$T/n.h5" --output neck --arch resnet50 --pool gem --width 4 ||
  fail "infer neck with confirming flags"
close "$T/n.h5" /features "$FX/r50_eval.h5" /neck 1e-4 || fail "neck features differ from PyTorch"

# no last stride in the file and none given: a clear error
out=$($MPIEXEC -n 1 "$SLR" infer --weights "$FX/r50_weights.h5" --input "$FX/r50_eval.h5" --out "$T/bad.h5" 2>&1)
[ $? -eq 1 ] || fail "unknown last stride: exit code"
echo "$out" | grep -q "does not record last_stride.*--last-stride" || fail "unknown last stride: $out"

# the file's attributes describe the model: infer needs no model flags
# (fixtures from tools/ref/nn_described.py)
cp "$FX/r50_described.h5" "$T/w.h5"
$MPIEXEC -n 1 "$SLR" infer --weights "$T/w.h5" --input "$FX/r50_eval.h5" --out "$T/a.h5" || fail "infer without model flags"
close "$T/a.h5" /features "$FX/r50_eval.h5" /normalized 1e-4 || fail "described file: features differ"

# a flag that does not confirm the file: an error naming both values, no output
expect_mismatch() { # expected-text flags...
  local want=$1; shift
  out=$($MPIEXEC -n 2 "$SLR" infer --weights "$T/w.h5" --input "$FX/r50_eval.h5" --out "$T/bad.h5" "$@" 2>&1)
  rc=$?
  [ $rc -eq 1 ] || fail "$*: exit $rc: $out"
  echo "$out" | grep -q -- "$want" || fail "$*: expected '$want' in: $out"
  [ ! -e "$T/bad.h5" ] && [ ! -e "$T/bad.h5.tmp" ] || fail "$*: partial output left"
}
expect_mismatch "--last-stride 2, but .*last stride 1" --last-stride 2
expect_mismatch "--pool avg, but .*gem pooling" --pool avg
expect_mismatch "--arch resnet18, but .*holds a resnet50" --arch resnet18
expect_mismatch "--width 8, but .*width 4" --width 8
# a foreign file's inferred structure is checked the same way
out=$($MPIEXEC -n 1 "$SLR" infer $ARGS --arch resnet50_ibn_a --out "$T/bad.h5" 2>&1)
[ $? -eq 1 ] || fail "ibn on a plain resnet50 file: exit code"
echo "$out" | grep -q "resnet50_ibn_a, but .*resnet50" || fail "ibn mismatch: $out"

# attributes that lie about the model: the key and both shapes are named
out=$($MPIEXEC -n 2 "$SLR" infer --weights "$FX/r50_lying.h5" --input "$FX/r50_eval.h5" --out "$T/bad.h5" 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "wrong shape: exit $rc"
echo "$out" | grep -q "conv1.weight" || fail "wrong shape: no key in: $out"
echo "$out" | grep -q "(4, 3, 7, 7)" || fail "wrong shape: no file shape in: $out"
echo "$out" | grep -q "(8, 3, 7, 7)" || fail "wrong shape: no model shape in: $out"
[ ! -e "$T/bad.h5" ] && [ ! -e "$T/bad.h5.tmp" ] || fail "partial output left"

# usage errors exit 2 with the command's prefix and usage
expect_usage() {
  out=$($MPIEXEC -n 1 "$SLR" infer $ARGS --out "$T/bad.h5" "$@" 2>&1)
  [ $? -eq 2 ] || fail "$*: exit code: $out"
  echo "$out" | grep -q "^slr infer: " || fail "$*: no prefix: $out"
  echo "$out" | grep -q "see slr infer --help" || fail "$*: no usage hint: $out"
}
expect_usage --output nope
expect_usage --arch resnet99
expect_usage --pool max
expect_usage --last-stride 3
echo "ok"
