#!/usr/bin/env bash
# labels: slow
# The training job on a tiny synthetic task, 2 ranks: an uninterrupted run;
# a run killed with SIGKILL at random moments and started again until it
# finishes; a run stopped with SIGUSR1 (exit 75) and resumed. The final
# weights and the metrics (timings aside) must equal the uninterrupted run's.
set -u
slr="$1"; src="$2"
. "$src/tests/e2e/lib.sh"
in_tmp

adapt_task 24 3 2 || { echo "synth failed"; exit 1; }
adapt_config --pad 2 --pretrain-solver "schedule: multistep, milestones: [2], warmup_epochs: 1" \
  --pretrain "epochs: 2, iters: 3, batch_size: 8, instances: 2" --adapt "epochs: 3, iters: 3, batch_size: 8, instances: 2" \
  --k1 8 --refine "mode: hierarchical, alpha: 0.5, threshold: 0.5, soft_weight: 0.5" --checkpoint "every_steps: 2, keep: 2" > tiny.yaml
train() { setsid "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out "$1" > "$1.log" 2>&1; }

# 1. uninterrupted
train A; rc=$?
if [ $rc -eq 0 ] && [ -f A/final.h5 ] && grep -q '"event": "labels"' A/metrics.jsonl; then ok "uninterrupted run"; else bad "uninterrupted run (exit $rc)"; tail -20 A.log; fi
[ "$(grep -c '"event": "eval"' A/metrics.jsonl)" = 4 ] && ok "evaluations logged" || bad "evaluations logged"

# 2. SIGKILL at random moments, then the same command again, until done
RANDOM=7
kills=0
newest() { ls B/checkpoints 2>/dev/null | sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1; }
# killed at moments chosen by progress, not by the clock (the machine may be
# fast or loaded): first during start-up, then a little after checkpoints
# further and further on (mid-step, mid-clustering, mid-checkpoint ...)
for attempt in 1 2 3 4 5; do
  setsid "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out B >> B.log 2>&1 &
  pid=$!
  if [ $attempt = 1 ]; then
    sleep "$(printf '0.%03d' $(( RANDOM % 150 + 50 )))"
  else
    target=$(( 3 * attempt - 3 + RANDOM % 3 ))
    for _ in $(seq 3000); do
      p=$(newest); [ -n "$p" ] && [ "$p" -ge "$target" ] && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.01
    done
    sleep "$(printf '0.%03d' $(( RANDOM % 40 )))"
  fi
  if kill -0 $pid 2>/dev/null; then
    # the ranks first (mpiexec starts them in process groups of their own),
    # then mpiexec: nothing of the killed run may go on writing
    pkill -9 -P $pid 2>/dev/null; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    kills=$((kills+1))
  else
    wait $pid
    break
  fi
done
[ -f B/final.h5 ] || "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out B >> B.log 2>&1
echo "     ($kills kills)"
[ -f B/final.h5 ] && ok "killed run finished" || bad "killed run finished"
[ $kills -ge 1 ] && ok "killed at least once" || bad "killed at least once"
same_run A B && ok "killed run equals the uninterrupted run" || bad "killed run equals the uninterrupted run"

# 3. SIGUSR1: checkpoint at the next safe point, exit 75, resume
setsid "$mpiexec" -n 2 "$slr" train --config tiny.yaml --out C > C.log 2>&1 &
pid=$!
for _ in $(seq 200); do ls C/checkpoints/ckpt-*.h5 > /dev/null 2>&1 && break; sleep 0.1; done
kill -USR1 $pid
wait $pid; rc=$?
[ $rc -eq 75 ] && ok "SIGUSR1 exits 75" || { bad "SIGUSR1 exits 75 (got $rc)"; tail -5 C.log; }
grep -q "stopped on SIGUSR1" C.log && ok "SIGUSR1 message" || bad "SIGUSR1 message"
train C; rc=$?
[ $rc -eq 0 ] && ok "resumed after SIGUSR1" || bad "resumed after SIGUSR1 (exit $rc)"
same_run A C && ok "stopped run equals the uninterrupted run" || bad "stopped run equals the uninterrupted run"
"$slr" inspect "$(ls C/checkpoints/ckpt-*.h5 | tail -1)" > inspect.txt 2>&1 && grep -q "position  adapt" inspect.txt && ok "inspect" || { bad "inspect"; cat inspect.txt; }

checked
