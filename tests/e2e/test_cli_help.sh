#!/bin/bash
# Help texts and usage errors of every command: each option listed in
# `slr CMD --help` appears in its usage line; usage errors exit 2 with the
# `slr CMD:` prefix and the usage hint; global options take no extra
# arguments.
set -u
SLR=$1
fail() { echo "FAIL: $*"; exit 1; }

cmds=$("$SLR" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
[ -n "$cmds" ] || fail "no commands in slr --help"
for c in $cmds; do
  help=$("$SLR" "$c" --help) || fail "slr $c --help: exit $?"
  # the usage text runs from "usage:" to the first empty line
  usage=$(echo "$help" | sed -n '1,/^$/p')
  opts=$(echo "$help" | sed -n '/^options:/,$p' | grep -oE '^  --[a-z0-9-]+' | tr -d ' ')
  for o in $opts; do
    echo "$usage" | grep -q -- "$o\b" || fail "slr $c: $o is in the options but not in the usage line: $usage"
  done
  out=$("$SLR" "$c" --no-such-option 2>&1)
  [ $? -eq 2 ] || fail "slr $c --no-such-option: exit code"
  echo "$out" | grep -q "^slr $c: unknown option --no-such-option" || fail "slr $c: no prefix: $out"
  echo "$out" | grep -q "(see slr $c --help)" || fail "slr $c: no usage hint: $out"
  "$SLR" "$c" -h >/dev/null || fail "slr $c -h: exit $?"
done

expect2() {
  out=$("$@" 2>&1)
  rc=$?
  [ $rc -eq 2 ] || fail "$*: exit $rc (expected 2): $out"
}
expect2 "$SLR" --version --bogus
expect2 "$SLR" config --keys extra
expect2 "$SLR" config --keys --set solver.lr=1
expect2 "$SLR" bogus
out=$("$SLR" evaluate --features x.h5 --metric foo 2>&1)
[ $? -eq 2 ] || fail "--metric foo: exit code"
echo "$out" | grep -q "^slr evaluate: --metric.*foo" || fail "--metric foo: $out"
echo "$out" | grep -q "see slr evaluate --help" || fail "--metric foo: no usage hint: $out"
out=$("$SLR" infer --weights w.h5 --input x.h5 --out f.h5 --arch resnet99 2>&1)
[ $? -eq 2 ] || fail "--arch resnet99: exit code"
echo "$out" | grep -q "^slr infer: --arch resnet99" || fail "--arch resnet99: $out"
# an option's value may be given with = or as the next argument; a flag takes none
out=$("$SLR" config --keys=1 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "takes no value" || fail "--keys=1: $out"
"$SLR" config --set=solver.adapt.lr=1e-4 | grep -q "lr: 0.0001" || fail "--set=KEY=VALUE"
# the example in slr config --help names a real key
ex=$("$SLR" config --help | grep -oE 'e\.g\. [a-z_.]+=' | sed 's/e\.g\. //; s/=$//')
[ -n "$ex" ] || fail "no example key in slr config --help"
"$SLR" config --keys | grep -q "^$ex " || fail "slr config --help example $ex is not a key"
"$SLR" --version | grep -q "^slr " || fail "slr --version"
# a unique prefix of a long option is taken (getopt_long); two matches are named
out=$("$SLR" infer --ou f.h5 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "ambiguous option --ou (--out, --output)" || fail "ambiguous prefix: $out"
echo ok
