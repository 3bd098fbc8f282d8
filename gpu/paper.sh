#!/usr/bin/env bash
# The exact `paper` profile on a lent GPU, call by call (README, "On a GPU").
#
# Here, once:        gpu/paper.sh prepare         CIFAR-10 as parts sized to fit the calls
# There, call k:     gpu/paper.sh stage NN        append part NN (carried alone) to $STAGE/c.tar
# There, last call:  gpu/paper.sh train SECONDS   unpack, train what is missing in order, pack into $OUT
# Here, after:       gpu/paper.sh unpack DIR      import the run folders that came back, write their rows
#
# `train` resumes: what a previous call left in $WORK (while the machine is held) or what the tracked
# tree and `carry` bring (runs/paper/) goes on from its last finished epoch. It stops SECONDS after it
# started (an interrupted run loses only its current epoch) and leaves ~60 s to pack. Its order: finish the
# 3-block RotNet, then the 5-block, the 8 / 0-180 / 90-270 rotation RotNets, the supervised NIN, the
# semi-supervised runs, then every exact head.
# Environment: PROFILE (paper), DEVICE (cuda), DATA (../shared/data), STAGE (/tmp/c), WORK (/tmp/w),
# PY (python3), CHUNK_BYTES (default: 64 MiB minus what travels beside the data, minus 2 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-paper}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-../shared/data}
STAGE=${STAGE:-/tmp/c}
WORK=${WORK:-/tmp/w}
PY=${PY:-python3}
PARTS=${PARTS:-.device-data}
LIMIT=$((64 * 1024 * 1024))

die() { echo "gpu/paper.sh: $*" >&2; exit 2; }

travelling_bytes() {  # the tracked tree plus the checkpoints `train` carries
  { git ls-files -z; find runs/"$PROFILE" -name ckpt.pt -print0 2>/dev/null || true; } | { xargs -0 -r du -cb 2>/dev/null || true; } | tail -1 | cut -f1
}

cmd_prepare() {
  [ -d "$DATA/cifar-10-batches-py" ] || die "no $DATA/cifar-10-batches-py: set DATA to the folder that holds it"
  [ "$PARTS" != .device-data ] || grep -qx "/.device-data/" .git/info/exclude 2>/dev/null || echo "/.device-data/" >> .git/info/exclude
  local tree chunk
  tree=$(travelling_bytes)
  chunk=${CHUNK_BYTES:-$((LIMIT - tree - 2 * 1024 * 1024))}
  [ "$chunk" -gt 0 ] || die "what travels ($tree bytes) leaves no room for data in a 64 MiB call"
  rm -rf "$PARTS" && mkdir -p "$PARTS"
  tar cf - -C "$DATA" cifar-10-batches-py | split -b "$chunk" -d - "$PARTS/part."
  echo "tree $tree bytes; parts of $chunk bytes:"
  ls "$PARTS"
  local n; n=$(ls "$PARTS" | wc -l)
  echo "calls: stage 00 .. stage $(printf %02d $((n - 2))) (carry [\"$PARTS/part.NN\"]), then the last part with"
  echo "  gpu/paper.sh stage $(printf %02d $((n - 1))) && gpu/paper.sh train 480   (carry [\"$PARTS/part.$(printf %02d $((n - 1)))\"$(
    find runs/"$PROFILE" -name ckpt.pt -printf ', "%p"' 2>/dev/null || true)])"
}

cmd_stage() {
  local part="$PARTS/part.$1"
  [ -f "$part" ] || die "$part did not travel: name it in carry"
  mkdir -p "$STAGE"
  if [ -f "$STAGE/part.$1.done" ]; then echo "part $1 staged already"; return; fi
  cat "$part" >> "$STAGE/c.tar" && touch "$STAGE/part.$1.done"
  echo "staged part $1: $(du -b "$STAGE/c.tar" | cut -f1) bytes"
}

run_step() {  # run_step ARGS...: one `run` command within what is left of the budget
  local left=$((END - $(date +%s)))
  [ "$left" -gt 30 ] || { echo "time is up: skipping run $*"; return 0; }
  echo "== run $* ($left s left)"
  timeout --signal=INT "$left" "$PY" -m rotnet_repro run "$@" --profile "$PROFILE" --device "$DEVICE" \
    --data-dir "$STAGE" --out "$WORK" || echo "(stopped: rc $?; the next call resumes)"
}

cmd_train() {
  local budget=${1:?train SECONDS}
  END=$(($(date +%s) + budget - 60))
  if [ "$PROFILE" != smoke ] && [ ! -d "$STAGE/cifar-10-batches-py" ]; then
    [ -f "$STAGE/c.tar" ] || die "nothing staged in $STAGE: run the stage calls first"
    tar xf "$STAGE/c.tar" -C "$STAGE"
  fi
  mkdir -p "$WORK/runs" && touch "$WORK/.call-start"
  [ -d runs/"$PROFILE" ] && "$PY" -m rotnet_repro import runs/"$PROFILE" --out "$WORK"
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  run_step table1_block_depth table2_rotations --columns '^rotation$'
  run_step table3_comparison --rows '^Supervised NIN$'
  run_step fig5b_semi_supervised
  run_step all
  cmd_pack
}

cmd_pack() {
  local out=${OUT:?OUT is where the results go}
  local list; list=$(mktemp)
  # rows, logs and run records; weights written in this call (snapshots last, dropped if they do not fit)
  (cd "$WORK" && find results logs runs -type f \( -name '*.csv' -o -name '*.log' -o -name '*.json' \) 2>/dev/null
   cd "$WORK" && find runs -type f \( -name model.pt -o -name ckpt.pt \) -newer .call-start 2>/dev/null
   cd "$WORK" && find runs -type f -name 'snapshot_*.pt' -newer .call-start 2>/dev/null) > "$list"
  tar cf - -C "$WORK" -T "$list" | split -b 15m -d - "$out/back."
  rm -f "$list"
  local n; n=$(ls "$out"/back.* | wc -l)
  [ "$n" -le 8 ] || { echo "packed $n parts: more than 8 come back; dropping the snapshots" >&2
    rm -f "$out"/back.*
    grep -v '/snapshot_[0-9]*\.pt$' "$list" > "$list.small" && mv "$list.small" "$list"
    tar cf - -C "$WORK" -T "$list" | split -b 15m -d - "$out/back."; }
  ls -l "$out"
}

cmd_unpack() {
  local dir=${1:?unpack DIR (the folder the files came back to)} tmp
  tmp=$(mktemp -d)
  cat "$dir"/back.* | tar xf - -C "$tmp"
  "$PY" -m rotnet_repro import "$tmp/runs/$PROFILE" --out "${DEST:-.}"
  # rows of every finished run, written here from their records (nothing is trained)
  "$PY" -m rotnet_repro run all --profile "$PROFILE" --out "${DEST:-.}" --no-train
  mkdir -p "${DEST:-.}/logs/gpu" && cp -r "$tmp/logs/." "${DEST:-.}/logs/gpu/" 2>/dev/null || true
  rm -rf "$tmp"
}

case "${1:-}" in
  prepare) cmd_prepare ;;
  stage) cmd_stage "${2:?stage NN}" ;;
  train) cmd_train "${2:-}" ;;
  pack) cmd_pack ;;
  unpack) cmd_unpack "${2:-}" ;;
  *) die "usage: gpu/paper.sh prepare | stage NN | train SECONDS | pack | unpack DIR" ;;
esac
