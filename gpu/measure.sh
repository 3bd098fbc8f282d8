#!/usr/bin/env bash
# The speed figures of the GPU-speed work in one call of a remote GPU session, under 5 minutes, on synthetic data
# (nothing to stage): `bench` at paper width eager, compiled and graphed (images/s, TFLOP/s against a matmul
# peak measured on the card, the whole-protocol ETA), then a compiled smoke run (a RotNet and a head).
#
# There:  gpu/measure.sh            (no carry; timeout_s 580: the throughput part is bounded at 240 s)
# Here:   copy the JSON that comes back into results/bench/ and run `make tables` (REPORT.md, "Speed").
# Environment: DEVICE (cuda), PROFILE (paper), STEPS (bench's, default: about a minute per bench), PY (python3),
# COMPILE (1; empty: eager only), PROCESSES (4) and SECONDS_EACH (5) for the processes side by side, OUT (where the
# JSON and logs go), TIME_LIMITS (1; empty: no part is cut at its limit, as the CPU test runs it on a loaded machine).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
PROFILE=${PROFILE:-paper}
PY=${PY:-python3}
COMPILE=${COMPILE-1}
OUT=${OUT:?OUT is where the figures go}
export PYTHONUNBUFFERED=1
limit() { if [ -n "${TIME_LIMITS-1}" ]; then timeout "$@"; else shift; "$@"; fi; }  # limit SECONDS COMMAND...
steps=()
[ -n "${STEPS:-}" ] && steps=(--steps "$STEPS")
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv; fi
name=$("$PY" -c "import torch; print(torch.cuda.get_device_name().split()[1].lower() if torch.cuda.is_available() else 'cpu')")
# first: the throughput figures (steps eager / compiled / graphed at batch 512 and 128; 1 to 4 head processes side
# by side, and a RotNet beside 0 to 3 of them: the speeds `plan` and `run --workers` read; the remaining protocol's
# ETA at each count; the top ops from the profiler); then the whole-step bench
limit 240 "$PY" -m rotnet_repro bench --throughput --profile "$PROFILE" --device "$DEVICE" ${COMPILE:+--compile} \
  "${steps[@]}" --processes "${PROCESSES:-4}" --seconds "${SECONDS_EACH:-5}" --save "$OUT/throughput-$PROFILE-width-$name.json" 2>&1 | tee "$OUT/throughput.log" || true
# no dataset on purpose: bench times synthetic CIFAR-shaped data, which needs no staging
limit 200 "$PY" -m rotnet_repro bench --profile "$PROFILE" --device "$DEVICE" --data-dir "$OUT/no-data" \
  ${COMPILE:+--compile} "${steps[@]}" --save "$OUT/$PROFILE-width-$name.json" 2>&1 | tee "$OUT/bench.log"
limit 100 "$PY" -m rotnet_repro run table3_comparison --rows '^RotNet \+ non-linear$' --profile smoke \
  --device "$DEVICE" ${COMPILE:+--compile default} --out "$OUT/smoke" 2>&1 | tail -3 | tee "$OUT/smoke.log"
rm -rf "$OUT/smoke" "$OUT/no-data"
