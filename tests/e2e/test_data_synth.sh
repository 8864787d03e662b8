#!/bin/bash
# slr synth and slr data end to end: the same seed gives the same bytes on
# 1, 2 and 3 ranks, another seed or style other bytes; the Market reader
# reads back exactly the requested counts; the preview is a PNG of the
# expected size; bad inputs (corrupt and truncated images, a folder without
# the layout, a bad file name, bad options) stop with the message and exit
# code, also when only one rank meets the bad file.
set -uo pipefail
SLR=$1
MPIEXEC=${MPIEXEC:-mpiexec}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# expect CODE NEEDLE -- command...: exit code and a message fragment
expect() {
  local code=$1 needle=$2
  shift 3
  local out rc
  out=$(timeout 120 "$@" 2>&1)
  rc=$?
  [ "$rc" = "$code" ] || fail "exit $rc (want $code) from $*: $out"
  grep -qF -- "$needle" <<<"$out" || fail "no \"$needle\" in the output of $*: $out"
}

common="--ids 12 --cams 3 --per-cam 2 --seed 7"
"$SLR" synth "$T/a" $common >/dev/null || fail "synth on 1 rank"
"$MPIEXEC" -n 2 "$SLR" synth "$T/b" $common >/dev/null || fail "synth on 2 ranks"
"$MPIEXEC" -n 3 "$SLR" synth "$T/c" $common >/dev/null || fail "synth on 3 ranks"
diff -r "$T/a" "$T/b" >/dev/null || fail "2 ranks wrote other bytes than 1 rank"
diff -r "$T/a" "$T/c" >/dev/null || fail "3 ranks wrote other bytes than 1 rank"
"$SLR" synth "$T/a2" $common >/dev/null && diff -r "$T/a" "$T/a2" >/dev/null || fail "same seed, other bytes"
"$SLR" synth "$T/d" --ids 12 --cams 3 --per-cam 2 --seed 8 >/dev/null
diff -rq "$T/a" "$T/d" >/dev/null && fail "another seed gave the same bytes"
"$SLR" synth "$T/r" $common --style realistic >/dev/null
diff -rq "$T/a" "$T/r" >/dev/null && fail "the realistic style gave the same bytes"
"$SLR" synth "$T/g1" $common --gain 1 --cast 0 >/dev/null
diff -r "$T/a" "$T/g1" >/dev/null || fail "--gain 1 --cast 0 changed the default bytes"
"$SLR" synth "$T/g2" $common --gain 0.7 >/dev/null
diff -rq "$T/a" "$T/g2" >/dev/null && fail "--gain 0.7 gave the same bytes"
"$SLR" synth "$T/g3" $common --cast 0.1 >/dev/null
diff -rq "$T/a" "$T/g3" >/dev/null && fail "--cast 0.1 gave the same bytes"
expect 2 "--gain must be in" -- "$SLR" synth "$T/g4" $common --gain 3
expect 2 "--cast must be in" -- "$SLR" synth "$T/g5" $common --cast -1
[ -e "$T/a.partial" ] && fail "a partial folder was left behind"

# counts: 6 train ids x 3 cams x 2; test ids: 2 query images each, the rest gallery
[ "$(ls "$T/a/bounding_box_train" | wc -l)" = 36 ] || fail "train count"
[ "$(ls "$T/a/query" | wc -l)" = 12 ] || fail "query count"
[ "$(ls "$T/a/bounding_box_test" | wc -l)" = 24 ] || fail "gallery count"
ls "$T/a/bounding_box_train" | grep -qE '^0001_c1s1_[0-9]{6}_00\.jpg$' || fail "Market naming"
src="--set data.source.format=market1501 --side source --set data.source.root"
out=$("$SLR" data $src="$T/a" --check 2>&1) || fail "slr data: $out"
grep -qF "train    |     6 |       36 |         3" <<<"$out" || fail "train table: $out"
grep -qF "query    |     6 |       12 |         3" <<<"$out" || fail "query table: $out"
grep -qF "gallery  |     6 |       24 |         3" <<<"$out" || fail "gallery table: $out"

# the loader benchmark runs and reports a rate
out=$("$MPIEXEC" -n 2 "$SLR" data $src="$T/a" --set train.pretrain.batch_size=8 \
  --set train.pretrain.instances=4 --set data.height=64 --set data.width=32 --bench 3 2>&1) ||
  fail "bench: $out"
grep -qE "^images_per_second [0-9]" <<<"$out" || fail "bench output: $out"

# preview: a PNG, one row of 64 px (+2 px gaps) per identity
"$SLR" synth --preview "$T/p.png" $common --preview-rows 5 >/dev/null || fail "preview"
[ "$(head -c 8 "$T/p.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "preview is not a PNG"
h=$(od -An -tu1 -j 20 -N 4 "$T/p.png" | awk '{print $1*16777216+$2*65536+$3*256+$4}')
[ "$h" = $((5 * 66 + 2)) ] || fail "preview height $h"

# bad images
cp -r "$T/a" "$T/e"
bad=$(ls "$T/e/bounding_box_test" | tail -1)
sz=$(stat -c %s "$T/a/bounding_box_test/$bad")
head -c $((sz * 2 / 3)) "$T/a/bounding_box_test/$bad" >"$T/e/bounding_box_test/$bad"
expect 1 "$bad" -- "$SLR" data $src="$T/e" --check
expect 1 "truncated" -- "$SLR" data $src="$T/e" --check
# only the last rank's shard holds the bad file: every rank stops, none hangs
expect 1 "$bad" -- "$MPIEXEC" -n 2 "$SLR" data $src="$T/e" --check
expect 0 "1 corrupt image file skipped" -- "$SLR" data $src="$T/e" --check --set data.skip_corrupt=true
expect 0 "1 corrupt image file skipped" -- "$MPIEXEC" -n 2 "$SLR" data $src="$T/e" --check --set data.skip_corrupt=true
printf 'not an image' >"$T/e/query/$(ls "$T/e/query" | head -1)"
expect 1 "neither a JPEG nor a PNG" -- "$SLR" data $src="$T/e" --check

# bad layouts and names
mkdir -p "$T/n/images" "$T/n/query"
expect 1 "expected the Market-1501 layout (folders bounding_box_train/, query/, bounding_box_test/)" -- \
  "$SLR" data $src="$T/n"
expect 1 "found: images/, query/" -- "$SLR" data $src="$T/n"
touch "$T/a2/query/person_7.jpg"
expect 1 "query/person_7.jpg: file name does not follow the Market-1501 naming scheme" -- \
  "$SLR" data $src="$T/a2"
expect 1 "person_7.jpg" -- "$MPIEXEC" -n 2 "$SLR" data $src="$T/a2"

# bad options
expect 2 "already exists" -- "$SLR" synth "$T/a" $common
expect 2 "--cams must be in 2..6" -- "$SLR" synth "$T/x" --cams 9
expect 2 "--style must be synthetic or realistic" -- "$SLR" synth "$T/x" --style cartoon
[ -e "$T/x" ] && fail "a failed synth left $T/x"
echo "ok"
