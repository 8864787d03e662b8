#!/bin/bash
# slr cluster reads float64 /features (NumPy's default dtype), converted to
# float32: the labels equal those of the same features stored as float32, on
# 1 and 2 ranks; integer /features are still refused, naming the type.
set -u
SLR=$1
SRC=$2
MPIEXEC=${MPIEXEC:-mpiexec}
FIX=$SRC/tests/fixtures/cluster
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# the float32 fixture's values as text, imported again as float64 and as int32
h5dump -d /features -y -w 0 -m '%.9g' "$FIX/e2e_raw.h5" | awk '/DATA \{/{on=1;next} /\}/{on=0} on' |
  tr ',' '\n' | tr -d ' ' | grep -v '^$' > "$T/feat.txt"
n=$(wc -l < "$T/feat.txt")
[ "$n" -eq 25600 ] || fail "fixture: $n values"
import_as() { # CLASS SIZE OUT
  printf 'PATH features\nINPUT-CLASS TEXTFP\nRANK 2\nDIMENSION-SIZES 800 32\nOUTPUT-CLASS %s\nOUTPUT-SIZE %s\n' "$1" "$2" > "$T/cfg.txt"
  h5import "$T/feat.txt" -c "$T/cfg.txt" -o "$3" || fail "h5import $1 $2"
}
import_as FP 64 "$T/f64.h5"
h5dump -H "$T/f64.h5" | grep -q H5T_IEEE_F64LE || fail "the float64 file is not float64"
labels() { h5dump -A 0 -d /labels -y -w 0 -m '%d' "$1" | awk '/DATA \{/{on=1;next} /\}/{on=0} on' | tr ',' '\n' | tr -d ' ' | grep -v '^$'; }
ARGS="--k1 30 --k2 6 --eps 0.6 --min-samples 4"
"$SLR" cluster --features "$FIX/e2e_raw.h5" --out "$T/l32.h5" $ARGS > /dev/null || fail "float32 features"
for np in 1 2; do
  $MPIEXEC -n $np "$SLR" cluster --features "$T/f64.h5" --out "$T/l64_$np.h5" $ARGS > "$T/log" 2>&1 ||
    { cat "$T/log"; fail "float64 features on $np ranks"; }
  diff <(labels "$T/l32.h5") <(labels "$T/l64_$np.h5") > /dev/null || fail "float64 labels differ on $np ranks"
done
[ "$(labels "$T/l32.h5" | wc -l)" -eq 800 ] || fail "label count"

# integers: refused, naming the type; no output left
import_as IN 32 "$T/i32.h5"
out=$("$SLR" cluster --features "$T/i32.h5" --out "$T/bad.h5" $ARGS 2>&1)
[ $? -eq 1 ] || fail "int32 features: exit code: $out"
echo "$out" | grep -q "has type int32, expected float32 or float64" || fail "int32 features: $out"
[ ! -e "$T/bad.h5" ] && [ ! -e "$T/bad.h5.tmp" ] || fail "partial output"
echo ok
