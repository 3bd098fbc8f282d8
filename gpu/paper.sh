#!/usr/bin/env bash
# The exact `paper` profile on a lent GPU, call by call (README, "On a GPU").
#
# Here, once:        gpu/paper.sh prepare         CIFAR-10 and the unfinished runs' checkpoints, gzipped, as parts
#                                                 sized to fit the calls
# There, call k:     gpu/paper.sh stage NN        append part NN (carried alone) to $STAGE/c.tar
# There, last call:  gpu/paper.sh train SECONDS   unpack, train what is missing in order, pack into $OUT
# Here, after:       gpu/paper.sh unpack DIR      import the run folders that came back, write their rows
#
# `train` resumes: what a previous call left in $WORK (while the machine is held) or what the tracked
# tree and the staged archive bring (runs/paper/) goes on from its last finished epoch. It stops SECONDS after
# it started (an interrupted run loses only its current epoch) and leaves ~60 s to pack. It runs the steps of
# ORDER in turn (default: finish the 3-block RotNet, then the 5-block, the 8 / 0-180 / 90-270 rotation
# RotNets, the supervised NIN, the semi-supervised runs, then every exact head):
#   rotnet3     the 3-block RotNet alone            rotnets     every RotNet of Tables 1 and 2
#   heads3      Table 3's two exact frozen heads     supervised  the supervised NIN (all labels)
#   semi        Fig. 5(b)                            all         everything else
# Environment: PROFILE (paper), DEVICE (cuda), DATA (../shared/data), STAGE (/tmp/c), WORK (/tmp/w),
# PY (python3), ORDER, RUN_ARGS (added to every `run`, e.g. "--compile default" once gpu/measure.sh has shown
# it pays), CHUNK_BYTES (default: 64 MiB minus the tracked tree, minus 2 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-paper}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-../shared/data}
STAGE=${STAGE:-/tmp/c}
WORK=${WORK:-/tmp/w}
PY=${PY:-python3}
ORDER=${ORDER:-rotnets supervised semi all}
PARTS=${PARTS:-.device-data}
LIMIT=$((64 * 1024 * 1024))

die() { echo "gpu/paper.sh: $*" >&2; exit 2; }

travelling_bytes() {  # the tracked tree, which travels with every call
  git ls-files -z | { xargs -0 -r du -cb 2>/dev/null || true; } | tail -1 | cut -f1
}

unfinished_runs() {  # run folders with a checkpoint: they travel in the archive, beside the data
  { find runs/"$PROFILE" -name ckpt.pt 2>/dev/null || true; } | while read -r c; do
    d=$(dirname "$c"); [ -f "$d/result.json" ] || echo "$d/ckpt.pt $d/spec.json"; done
}

cmd_prepare() {
  [ -d "$DATA/cifar-10-batches-py" ] || die "no $DATA/cifar-10-batches-py: set DATA to the folder that holds it"
  [ "$PARTS" != .device-data ] || grep -qx "/.device-data/" .git/info/exclude 2>/dev/null || echo "/.device-data/" >> .git/info/exclude
  local tree chunk
  tree=$(travelling_bytes)
  chunk=${CHUNK_BYTES:-$((LIMIT - tree - 2 * 1024 * 1024))}
  [ "$chunk" -gt 0 ] || die "what travels ($tree bytes) leaves no room for data in a 64 MiB call"
  rm -rf "$PARTS" && mkdir -p "$PARTS"
  local runs; runs=$(unfinished_runs)
  # gzip -1 takes ~9% off CIFAR-10 in 5 s: one call fewer at today's tree
  # shellcheck disable=SC2086
  tar cf - -C "$DATA" cifar-10-batches-py ${runs:+-C "$PWD" $runs} | gzip -1 | split -b "$chunk" -d - "$PARTS/part."
  echo "tree $tree bytes; in the archive: CIFAR-10${runs:+ and }$runs; parts of $chunk bytes:"
  ls "$PARTS"
  local n; n=$(ls "$PARTS" | wc -l)
  echo "calls: stage 00 .. stage $(printf %02d $((n - 2))) (carry [\"$PARTS/part.NN\"]), then the last part with"
  echo "  gpu/paper.sh stage $(printf %02d $((n - 1))) && gpu/paper.sh train 540   (carry [\"$PARTS/part.$(printf %02d $((n - 1)))\"])"
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
  # shellcheck disable=SC2086
  timeout --signal=INT "$left" "$PY" -m rotnet_repro run "$@" --profile "$PROFILE" --device "$DEVICE" \
    --data-dir "$STAGE" --out "$WORK" ${RUN_ARGS:-} || echo "(stopped: rc $?; the next call resumes)"
}

cmd_train() {
  local budget=${1:?train SECONDS} step
  for step in $ORDER; do
    case "$step" in rotnet3|rotnets|heads3|supervised|semi|all) ;;
      *) die "ORDER: unknown step $step (rotnet3 rotnets heads3 supervised semi all)" ;; esac
  done
  END=$(($(date +%s) + budget - 60))
  if [ "$PROFILE" != smoke ] && [ ! -d "$STAGE/cifar-10-batches-py" ]; then
    [ -f "$STAGE/c.tar" ] || die "nothing staged in $STAGE: run the stage calls first"
    tar xzf "$STAGE/c.tar" -C "$STAGE" || die "the staged archive does not unpack: were all parts staged, in order?"
  fi
  mkdir -p "$WORK/runs" && touch "$WORK/.call-start"
  local src
  for src in "$STAGE/runs/$PROFILE" "runs/$PROFILE"; do
    [ -d "$src" ] && "$PY" -m rotnet_repro import "$src" --out "$WORK"
  done
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L; fi
  for step in $ORDER; do
    case "$step" in
      rotnet3) run_step table1_block_depth --rows '^RotNet 3 conv blocks$' --columns '^rotation$' ;;
      rotnets) run_step table1_block_depth table2_rotations --columns '^rotation$' ;;
      heads3) run_step table3_comparison --rows '^RotNet \+ (non-linear|conv)$' ;;
      supervised) run_step table3_comparison --rows '^Supervised NIN$' ;;
      semi) run_step fig5b_semi_supervised ;;
      all) run_step all ;;
    esac
  done
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
  local n; n=$(ls "$out"/back.* | wc -l)
  [ "$n" -le 8 ] || { echo "packed $n parts: more than 8 come back; dropping the snapshots" >&2
    rm -f "$out"/back.*
    grep -v '/snapshot_[0-9]*\.pt$' "$list" > "$list.small" && mv "$list.small" "$list"
    tar cf - -C "$WORK" -T "$list" | split -b 15m -d - "$out/back."; }
  rm -f "$list"
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
