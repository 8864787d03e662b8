#!/usr/bin/env bash
# labels: slow slurm
# jobs/train.sbatch on a one-node Slurm (tools/slurm-local.sh): a job with a
# short time limit is signalled (USR1) before it, checkpoints, is requeued,
# resumes and finishes with the same weights and metrics as an unbroken run.
# Needs root (it starts munged, slurmctld and slurmd); skipped otherwise.
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
if [ "$(id -u)" -ne 0 ]; then echo "skipped: needs root to start a local Slurm"; exit 0; fi
export SLR_SLURM_DIR="$(mktemp -d /tmp/slr-slurm-test-XXXXXX)"
tmp=$(mktemp -d /tmp/slr-requeue-XXXXXX)
cleanup() { bash "$src/tools/slurm-local.sh" stop > /dev/null 2>&1; rm -rf "$tmp" "$SLR_SLURM_DIR"; }
trap cleanup EXIT
eval "$(bash "$src/tools/slurm-local.sh" start | grep '^export ')" || { echo "FAIL: local Slurm did not start"; exit 1; }
cd "$tmp"

adapt_task 24 3 2 || { echo "FAIL: synth"; exit 1; }
adapt_config --root "$tmp" --pad 2 --pretrain "epochs: 6, iters: 4, batch_size: 8, instances: 2" \
  --adapt "epochs: 10, iters: 4, batch_size: 8, instances: 2" --k1 8 --checkpoint "every_steps: 1, keep: 2" > tiny.yaml

OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out A > A.log 2>&1 \
  && ok "unbroken run" || { bad "unbroken run"; tail A.log; }

# 1 minute limit; USR1 50 s before it (Slurm may send it up to a minute early)
jid=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 SLR="$slr" \
  sbatch --parsable -n 2 --cpus-per-task=1 --mem=2G --time=1 --signal=B:USR1@50 --output="$tmp/job.out" \
  "$src/jobs/train.sbatch" tiny.yaml B)
echo "     job $jid"
state=""
nudged=0
for t in $(seq 3000); do
  # Slurm sends the signal up to a minute early, on its own timer; when it
  # has not come once the job has checkpointed, send it the same way
  # (USR1 to the batch shell), so that the test does not depend on that timer
  if [ $nudged = 0 ] && ls B/checkpoints/ckpt-*.h5 > /dev/null 2>&1 &&
     ! grep -q "USR1" "$tmp/job.out" 2>/dev/null; then
    scancel --signal=USR1 --batch "$jid" 2>/dev/null && nudged=1 && echo "     (USR1 sent by the test)"
  fi
  info=$(scontrol show job "$jid" 2>/dev/null)
  state=$(echo "$info" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  reason=$(echo "$info" | sed -n 's/.*Reason=\([A-Za-z_]*\).*/\1/p')
  case "$state" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) break ;; esac
  # a job that can never start (the node is too small for it) ends the test
  case "$reason" in PartitionConfig|PartitionNodeLimit|BadConstraints) state="PENDING ($reason)"; scancel "$jid"; break ;; esac
  sleep 0.2
done
restarts=$(scontrol show job "$jid" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
echo "     state $state, restarts $restarts"
[ "$state" = COMPLETED ] && ok "job completed" || { bad "job completed ($state)"; tail -30 job.out; }
grep -q "USR1 (time limit near)" job.out && ok "job signalled" || bad "job signalled"
grep -q "requeueing job" job.out && ok "job requeued" || bad "job requeued"
grep -q "resuming from" job.out && ok "job resumed" || bad "job resumed"
[ "${restarts:-0}" -ge 1 ] && ok "restart count ${restarts:-0}" || bad "restart count ${restarts:-0}"
if same_run A B; then
  ok "requeued run equals the unbroken run"
else
  bad "requeued run equals the unbroken run"
fi
checked
