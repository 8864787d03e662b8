#!/usr/bin/env bash
# labels: slow
# SIGTERM to every process of a training job (what scancel does): mpiexec
# itself exits with 1, not 75, although the ranks checkpoint; jobs/train.sbatch
# (run here without Slurm) must still report the stop as 75, "checkpointed and
# stopped", and the checkpoint must be there. SIGUSR1 to mpiexec gives 75.
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
in_tmp
tiny_target
tiny_config t.yaml "epochs: 50, iters: 20, batch_size: 8, instances: 2"
# wait until training has started (a log line per epoch), at most 60 s
started() { for i in $(seq 1 120); do grep -q "pretrain epoch" "$1" 2> /dev/null && return 0; sleep 0.5; done; return 1; }

# 1. the job script, TERM to its whole process group
SLR="$slr" setsid bash "$src/jobs/train.sbatch" t.yaml run > job.log 2>&1 &
job=$!
started job.log || { bad "job did not start"; tail -5 job.log; }
kill -TERM -- -"$job" 2> /dev/null
wait $job
rc=$?
[ $rc -eq 75 ] && ok "train.sbatch: TERM to the job -> 75" || { bad "train.sbatch: TERM to the job gave $rc"; tail -8 job.log | sed 's/^/     | /'; }
grep -q "checkpointed and stopped" job.log && ok "train.sbatch says it stopped" || bad "train.sbatch message"
ls run/checkpoints/ckpt-*.h5 > /dev/null 2>&1 && ok "checkpoint written" || bad "no checkpoint"

# 2. mpiexec alone: USR1 -> 75 (TERM gives 1: the documented limitation)
"$mpiexec" -n 2 "$slr" train --config t.yaml --out run2 > r2.log 2>&1 &
p=$!
started r2.log
kill -USR1 $p
wait $p
rc=$?
[ $rc -eq 75 ] && ok "mpiexec: USR1 -> 75" || bad "mpiexec: USR1 gave $rc"

checked
