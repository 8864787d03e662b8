#!/usr/bin/env bash
# labels: slow
# A checkpoint whose data was overwritten with random bytes (the HDF5
# structure still opens) is skipped with a warning naming it, and the run
# resumes from the older one, as from a truncated one; a NaN written into
# the newest checkpoint's /model/params is caught the same way (its digest no
# longer matches). The bytes are written with h5py (/usr/bin/python3).
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
in_tmp
needs_py h5py
tiny_target
tiny_config c.yaml "epochs: 1, iters: 3, batch_size: 8, instances: 2" 'checkpoint: {every_steps: 1, keep: 3}'
for how in random nan; do
  rm -rf run
  "$mpiexec" -n 2 "$slr" train --config c.yaml --out run > a.log 2>&1 || { bad "$how: first run"; tail -5 a.log; continue; }
  newest=run/checkpoints/ckpt-000000000003.h5
  $py - "$newest" "$how" <<'PY'
import sys, h5py, numpy as np
path, how = sys.argv[1:3]
with h5py.File(path, "r") as f:
    off = f["/model/params"].id.get_offset()
if how == "random":
    with open(path, "r+b") as fp:
        fp.seek(off + 4000); fp.write(np.random.default_rng(1).bytes(64))
else:
    with h5py.File(path, "r+") as f:
        d = f["/model/params"]; x = d[...]; x[10] = np.nan; d[...] = x
PY
  # a longer run from the same folder: resumes from the newest valid checkpoint
  "$mpiexec" -n 2 "$slr" train --config c.yaml --out run --set train.pretrain.iters=4 --force-config > b.log 2>&1
  rc=$?
  [ $rc -eq 0 ] && ok "$how: the resumed run finishes" || { bad "$how: resumed run exit $rc"; tail -5 b.log | sed 's/^/     | /'; }
  grep -q "skipping checkpoint .*ckpt-000000000003.h5" b.log && grep -q "corrupt.*/model/params" b.log \
    && ok "$how: the corrupt checkpoint is named and skipped" || { bad "$how: no warning naming it"; grep -i "checkpoint\|resum" b.log | head -5 | sed 's/^/     | /'; }
  grep -qi "resum.*ckpt-000000000002\|ckpt-000000000002.*resum\|step 2" b.log \
    && ok "$how: resumed from the older checkpoint" || { bad "$how: not resumed from the older one"; grep -i "resum" b.log | head -3 | sed 's/^/     | /'; }
  $py -c "import h5py, numpy as np, sys; f = h5py.File('run/final.h5', 'r'); sys.exit(0 if np.isfinite(f['/model/conv1.weight'][...]).all() else 1)" \
    && ok "$how: final weights are finite" || bad "$how: final weights not finite"
done
checked
