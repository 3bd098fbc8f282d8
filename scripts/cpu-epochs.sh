#!/bin/bash
# Resume one long run on this CPU, storing its checkpoint in the git history after every epoch: `weights store`
# skips the checkpoint of a run a process is training, so after each epoch the run is stopped (SIGINT: it loses
# the seconds of the next epoch), its checkpoint stored (a commit), and the run started again from it. Stops
# before the run's heads start (its final weights and record are on disk), or after the next store once STOP exists.
#
#   mkdir -p logs; nohup scripts/cpu-epochs.sh runs/paper/rotnet-c1d3b2dff4 table1_block_depth --profile paper \
#       --rows '^RotNet 3 conv blocks$' --columns '^ConvB2$' > logs/cpu-epochs.log 2>&1 &
#   touch logs/cpu-epochs.stop   # stop after the next stored epoch (or kill it: the last stored epoch stays)
#
# Run from the repository root; ROTNET_DATA as for `run`. The run's command is `run` with the arguments given.
set -u
DIR=$1; shift
PY=${PY:-.venv/bin/python}
STOP=${STOP:-logs/cpu-epochs.stop}
rm -f "$STOP"
final() { [ -f "$DIR/model.pt" ] && [ -f "$DIR/result.json" ]; }  # the record is written after the weights
epoch_of() { stat -c %Y "$DIR/ckpt.pt" 2>/dev/null || echo 0; }
while ! final; do
  nice -n 10 "$PY" -m rotnet_repro run "$@" --device cpu &
  pid=$!
  seen=$(epoch_of)
  while kill -0 $pid 2>/dev/null && ! final && [ "$(epoch_of)" = "$seen" ]; do sleep "${POLL:-15}"; done
  if ! kill -0 $pid 2>/dev/null; then  # it ended by itself: finished (nothing after it), or failed
    wait $pid; rc=$?
    "$PY" -m rotnet_repro weights store || exit 1
    echo "$(date +%T) the run ended by itself (exit $rc)"; exit $rc
  fi
  if final; then
    echo "$(date +%T) final weights and record written: stopping before the heads"
  else
    echo "$(date +%T) an epoch ended: stopping to store its checkpoint"
  fi
  kill -INT $pid
  wait $pid
  "$PY" -m rotnet_repro weights store || exit 1
  [ -f "$STOP" ] && { echo "$(date +%T) $STOP found: stopped"; exit 0; }
done
exit 0
