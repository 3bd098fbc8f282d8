#!/usr/bin/env bash
# The exact `paper` profile on a lent GPU, window by window (docs/gpu-windows.md).
#
# Here:              gpu/paper.sh plan            what the next windows train, in order, with ETAs and what they stage
# Here, once:        gpu/paper.sh prepare         CIFAR-10 and the weights the next window needs (restored from the
#                                                 git history, runs/weights.json), gzipped, as parts sized to fit
# There, call k:     gpu/paper.sh stage NN        append part NN (carried alone) to $STAGE/c.tar
# There, last call:  gpu/paper.sh train SECONDS   unpack, train what is missing in order, pack into $OUT
# Here, after:       gpu/paper.sh unpack DIR      refuse a partial archive; import the runs that came back, write
#                                                 their rows, store their weights and commit (COMMIT=0: no commit)
#
# `train` resumes: what a previous call left in $WORK (while the machine is held) or what the tracked tree and
# the staged archive bring (runs/paper/) goes on from its last finished epoch. It stops SECONDS after it started
# (an interrupted run loses only its current epoch) and leaves ~60 s to pack. It runs the steps of ORDER in turn
# (default: the order the report needs, `plan`'s):
#   rotnets     every RotNet of Tables 1 and 2       table1_35   Table 1's 3- and 5-block rows
#   table2      Table 2                              table3      Table 3 (supervised NIN, fine-tuned, exact heads)
#   semi        Fig. 5(b)                            fig5a       Fig. 5(a)'s exact heads
#   all         everything else                      variant     a gap variant's RotNet and Table 3 heads
#                                                    (with RUN_ARGS="--set ..."; older names: rotnet3, heads3,
#                                                    supervised)
# Environment: PROFILE (paper), DEVICE (cuda), DATA (${ROTNET_DATA:-data}), STAGE (/tmp/c), WORK (/tmp/w),
# PY (python3), ORDER, RUN_ARGS (added to every `run`, e.g. "--set precision=fp32" for a gap variant),
# CHUNK_BYTES (default: 64 MiB minus the tracked tree, minus 2 MiB), COMMIT (1).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-paper}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-${ROTNET_DATA:-data}}
STAGE=${STAGE:-/tmp/c}
WORK=${WORK:-/tmp/w}
PY=${PY:-python3}
ORDER=${ORDER:-rotnets table1_35 table2 table3 semi fig5a all}
PARTS=${PARTS:-.device-data}
LIMIT=$((64 * 1024 * 1024))

die() { echo "gpu/paper.sh: $*" >&2; exit 2; }

travelling_bytes() {  # the tracked tree, which travels with every call
  git ls-files -z | { xargs -0 -r du -cb 2>/dev/null || true; } | tail -1 | cut -f1
}

staged_files() {  # what the next window needs beside the data: weights listed by `plan`, with their folders'
  # spec.json and record, and any local unfinished run's checkpoint
  local list; list=$(mktemp)
  "$PY" -m rotnet_repro plan --profile "$PROFILE" --stage-list "$list" >/dev/null
  if [ -s "$list" ]; then
    # shellcheck disable=SC2046
    "$PY" -m rotnet_repro weights restore $(cat "$list") >&2
  fi
  { sed 's|^|runs/|' "$list"
    find runs/"$PROFILE" -name ckpt.pt 2>/dev/null || true; } | sort -u | while read -r f; do
    [ -f "$f" ] || continue
    d=$(dirname "$f"); echo "$f"; echo "$d/spec.json"; [ -f "$d/result.json" ] && echo "$d/result.json"; true
  done | sort -u
  rm -f "$list"
}

cmd_plan() { "$PY" -m rotnet_repro plan --profile "$PROFILE"; }

cmd_prepare() {
  [ -d "$DATA/cifar-10-batches-py" ] || die "no $DATA/cifar-10-batches-py: set DATA to the folder that holds it"
  [ "$PARTS" != .device-data ] || grep -qx "/.device-data/" .git/info/exclude 2>/dev/null || echo "/.device-data/" >> .git/info/exclude
  local tree chunk
  tree=$(travelling_bytes)
  chunk=${CHUNK_BYTES:-$((LIMIT - tree - 2 * 1024 * 1024))}
  [ "$chunk" -gt 0 ] || die "what travels ($tree bytes) leaves no room for data in a 64 MiB call"
  rm -rf "$PARTS" && mkdir -p "$PARTS"
  local runs; runs=$(staged_files | tr '\n' ' ')
  # gzip -1 takes ~9% off CIFAR-10 in 5 s
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
    case "$step" in rotnets|table1_35|table2|table3|semi|fig5a|all|variant|rotnet3|heads3|supervised) ;;
      *) die "ORDER: unknown step $step (rotnets table1_35 table2 table3 semi fig5a all)" ;; esac
  done
  END=$(($(date +%s) + budget - 60))
  if [ -f "$STAGE/c.tar" ] && [ ! -f "$STAGE/.unpacked" ]; then
    tar xzf "$STAGE/c.tar" -C "$STAGE" || die "the staged archive does not unpack: were all parts staged, in order?"
    touch "$STAGE/.unpacked"
  fi
  [ "$PROFILE" = smoke ] || [ -d "$STAGE/cifar-10-batches-py" ] || die "nothing staged in $STAGE: run the stage calls first"
  mkdir -p "$WORK/runs"
  local src
  for src in "$STAGE/runs/$PROFILE" "runs/$PROFILE"; do
    if [ -d "$src" ]; then "$PY" -m rotnet_repro import "$src" --out "$WORK" || true; fi
  done
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L; fi
  for step in $ORDER; do
    case "$step" in
      rotnets) run_step table1_block_depth table2_rotations --columns '^rotation$' ;;
      rotnet3) run_step table1_block_depth --rows '^RotNet 3 conv blocks$' --columns '^rotation$' ;;
      table1_35) run_step table1_block_depth --rows '^RotNet [35] conv' ;;
      table2) run_step table2_rotations ;;
      table3) run_step table3_comparison ;;
      heads3) run_step table3_comparison --rows '^RotNet \+ (non-linear|conv)$' ;;
      variant) run_step table2_rotations table3_comparison --rows '^(4 rotations|RotNet \+ (non-linear|conv)$)' \
                 --columns '^(rotation|accuracy)$' ;;
      supervised) run_step table3_comparison --rows '^Supervised NIN$' ;;
      semi) run_step fig5b_semi_supervised ;;
      fig5a) run_step fig5a_epoch_curve ;;
      all) run_step all ;;
    esac
  done
  cmd_pack
}

cmd_pack() {
  local out=${OUT:?OUT is where the results go}
  "$PY" -m rotnet_repro window pack "$WORK" --out "$out" --home runs
  ls -l "$out"
}

cmd_unpack() {
  local dir=${1:?unpack DIR (the folder the files came back to)} dest=${DEST:-.}
  # refuses a partial archive (a part missing or cut) before it imports anything
  "$PY" -m rotnet_repro window unpack "$dir" --out "$dest" --profile "$PROFILE"
  # rows of every finished run, written here from their records (nothing is trained)
  "$PY" -m rotnet_repro run all --profile "$PROFILE" --out "$dest" --no-train
  [ "${COMMIT:-1}" = 1 ] && git -C "$dest" rev-parse --git-dir >/dev/null 2>&1 || { echo "not committed (COMMIT=0 or no git)"; return 0; }
  # nothing is lost: the weights into the history (runs/weights.json), records, rows and logs into the tree
  "$PY" -m rotnet_repro weights store --out "$dest"
  git -C "$dest" add -A "runs/$PROFILE"
  if [ -d "$dest/results" ]; then git -C "$dest" add -A results; fi
  if git -C "$dest" diff --cached --quiet; then echo "nothing new to commit"; return 0; fi
  git -C "$dest" commit -q -m "GPU window ($PROFILE): the runs, rows and logs that came back" && git -C "$dest" log --oneline -1
}

case "${1:-}" in
  plan) cmd_plan ;;
  prepare) cmd_prepare ;;
  stage) cmd_stage "${2:?stage NN}" ;;
  train) cmd_train "${2:-}" ;;
  pack) cmd_pack ;;
  unpack) cmd_unpack "${2:-}" ;;
  *) die "usage: gpu/paper.sh plan | prepare | stage NN | train SECONDS | pack | unpack DIR" ;;
esac
