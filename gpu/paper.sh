#!/usr/bin/env bash
# The exact `paper` profile in remote GPU sessions, window by window (docs/gpu-windows.md). `plan` is the one source of what
# a window trains, in which order, and what it stages; this script keeps no order of its own.
#
# Here:              gpu/paper.sh plan            the remaining protocol as windows of calls, with what each stages
# Here, once:        gpu/paper.sh prepare         the first window's plan (window.json), CIFAR-10 (xz, kept in
#                                                 $PARTS/cache while the data is unchanged) and the weights the plan
#                                                 stages (restored from the git history), as call-sized parts, and
#                                                 index.json (their SHA-256): carry index.json with every call
# There, call k:     gpu/paper.sh stage NN        check part NN and every earlier part on this machine, keep it
# There, last part:  gpu/paper.sh stage NN && gpu/paper.sh train SECONDS
#                                                 unpack, train exactly the plan's list (one process, every run from
#                                                 its last finished epoch), stop by SECONDS - pack_s, pack into $OUT
# There, warm:       gpu/paper.sh train SECONDS   the second call: the same list goes on (after a retry, size it
#                                                 from the device time left: here, gpu/paper.sh last LEFT_S)
# Here, after each:  gpu/paper.sh unpack DIR      refuse a partial archive; import the runs that came back, write
#                                                 their rows, store their weights and commit (COMMIT=0: no commit)
# Here, any time:    gpu/paper.sh last LEFT_S     the last training call sized from the device time left (LEFT_S:
#                                                 the device status's budget_left_s once the call before has ended)
#
# Environment: PROFILE (paper), DEVICE (cuda), DATA (${ROTNET_DATA:-data}), STAGE (/tmp/c), WORK (/tmp/w),
# PY (python3), PARTS (.device-data), COMMIT (1); CHUNK_BYTES (the part size, for the plan too; default: 64 MiB
# minus the tracked tree minus 2 MiB); for a rehearsal on an emulated device: STEPS (plan only these steps),
# PRICE_EPOCH_S (every epoch at this price), BUDGET (train: the call's seconds of the plan's prices instead of wall
# time).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-paper}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-${ROTNET_DATA:-data}}
STAGE=${STAGE:-/tmp/c}
WORK=${WORK:-/tmp/w}
PY=${PY:-python3}
PARTS=${PARTS:-.device-data}

die() { echo "gpu/paper.sh: $*" >&2; exit 2; }

json() {  # json FILE EXPR: a field of a JSON file (EXPR in Python, over `d`)
  "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

PLAN_ARGS=(--profile "$PROFILE")
[ -z "${STEPS:-}" ] || PLAN_ARGS+=(--steps "$STEPS")
[ -z "${PRICE_EPOCH_S:-}" ] || PLAN_ARGS+=(--price-epoch-s "$PRICE_EPOCH_S")
[ -z "${CHUNK_BYTES:-}" ] || PLAN_ARGS+=(--chunk-bytes "$CHUNK_BYTES")

cmd_plan() {
  "$PY" -m rotnet_repro plan "${PLAN_ARGS[@]}" "$@"
}

cmd_prepare() {
  [ -d "$DATA/cifar-10-batches-py" ] || die "no $DATA/cifar-10-batches-py: set DATA to the folder that holds it"
  [ "$PARTS" != .device-data ] || grep -qx "/.device-data/" .git/info/exclude 2>/dev/null || echo "/.device-data/" >> .git/info/exclude
  mkdir -p "$PARTS/cache"
  local data="$PARTS/cache/cifar-10.tar.xz" key
  key=$(cd "$DATA" && find cifar-10-batches-py -type f -printf '%p %s %T@\n' | sort | md5sum | cut -c1-32)
  if [ ! -s "$data" ] || [ "$(cat "$data.key" 2>/dev/null)" != "$key" ]; then
    echo "compressing CIFAR-10 (xz, delta filter: minutes, once while the data is unchanged)"
    tar cf - -C "$DATA" cifar-10-batches-py | xz -T2 --delta=dist=32 --lzma2=preset=6 > "$data.tmp"
    mv "$data.tmp" "$data" && echo "$key" > "$data.key"
  fi
  local window="$PARTS/cache/window.json"
  "$PY" -m rotnet_repro plan "${PLAN_ARGS[@]}" --data-bytes "$(stat -c %s "$data")" --window-file "$window" | sed -n '/^window 1:/,/^$/p'
  local stage; stage=$(json "$window" '" ".join(d["stage"])')
  # shellcheck disable=SC2086
  [ -z "$stage" ] || "$PY" -m rotnet_repro weights restore $stage >&2
  # each path once, in the plan's order: a folder staging two files (Fig. 5(a)'s snapshots, a checkpoint and its
  # RotNet's weights) lists its spec.json and result.json once. tar stores a repeat, or two names of one file on
  # disk (--hard-dereference: never), as a hard link, which the machine's streaming extraction (tarfile "r|")
  # cannot follow ("seeking backwards is not allowed")
  local files=() f d p
  local -A listed=()
  for f in $stage; do
    d=runs/$(dirname "$f")
    for p in "runs/$f" "$d/spec.json" "$d/result.json"; do
      [ -z "${listed[$p]:-}" ] || continue
      [ "$p" != "$d/result.json" ] || [ -f "$p" ] || continue  # a run still training has no record
      listed[$p]=1; files+=("$p")
    done
  done
  tar cf - --hard-dereference -C "$PARTS/cache" window.json ${files[@]:+-C "$PWD" "${files[@]}"} | xz -0 > "$PARTS/cache/runs.tar.xz"
  local chunk=${CHUNK_BYTES:-$(json "$window" 'd["chunk_bytes"]')}
  rm -f "$PARTS"/part.* "$PARTS/index.json"
  cat "$data" "$PARTS/cache/runs.tar.xz" | split -b "$chunk" -d - "$PARTS/part."
  "$PY" - "$PARTS" "$(stat -c %s "$data")" <<'PY'
import hashlib, json, sys
from pathlib import Path
parts = Path(sys.argv[1])
names = sorted(p.name for p in parts.glob("part.*"))
index = dict(parts=[dict(name=n, bytes=(parts / n).stat().st_size,
                         sha256=hashlib.sha256((parts / n).read_bytes()).hexdigest()) for n in names],
             data_bytes=int(sys.argv[2]), window=json.loads((parts / "cache" / "window.json").read_text()))
(parts / "index.json").write_text(json.dumps(index, indent=1) + "\n")
PY
  local n planned; n=$(ls "$PARTS"/part.* | wc -l); planned=$(json "$window" 'd["staging_calls"]')
  [ "$n" -le "$planned" ] || echo "note: $n parts, the plan counted $planned staging calls: run \`gpu/paper.sh plan\` again for the window's times" >&2
  echo "in the archive: CIFAR-10 ($(stat -c %s "$data") bytes)${stage:+ and $stage}; $n part(s) of at most $chunk bytes"
  echo "calls (carry \"$PARTS/part.NN\" and \"$PARTS/index.json\" each time; back to back, the machine goes 30 s after a call):"
  "$PY" - "$window" "$n" <<'PY'
import json, sys
d, n = json.load(open(sys.argv[1])), int(sys.argv[2])
for i in range(n - 1):
    print(f"  gpu/paper.sh stage {i:02d}   (timeout_s 60)")
for i, c in enumerate(c for c in d["calls"] if c["what"] == "train"):
    first = f"gpu/paper.sh stage {n - 1:02d} && " if i == 0 else ""
    last = "; then give_back. After a retry: `gpu/paper.sh last LEFT_S` sizes it from the device time left" if i else ""
    print(f"  {first}gpu/paper.sh train {c['seconds']}   (timeout_s {min(c['seconds'] + 15, 600)}{last})")
PY
}

cmd_last() {  # the last training call sized from the device time left (planner.last_call)
  local left=${1:?last LEFT_S (budget_left_s in the device status, once the call before has ended)}
  [[ "$left" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "last $left: give the device time left in seconds (budget_left_s)"
  "$PY" - "$left" <<'PY'
import sys
from rotnet_repro.planner import TIMEOUT_SLACK_S, last_call
left = float(sys.argv[1])
c = last_call(left)
if c is None:
    print(f"{left:.0f} s of device time left: no run can start in a last call; give_back")
else:
    print(f"gpu/paper.sh train {c.seconds}   (timeout_s {c.seconds + TIMEOUT_SLACK_S}; then give_back)")
PY
}

part_ok() {  # part_ok FILE NN: the part is whole (its SHA-256 is the index's)
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$(json "$STAGE/index.json" "d['parts'][$((10#$2))]['sha256']")" ]
}

cmd_stage() {
  local n=$1 index="$PARTS/index.json" part="$PARTS/part.$1"
  [ -f "$index" ] || die "$index did not travel: carry it with every stage call"
  [ -f "$part" ] || die "$part did not travel: name it in carry"
  mkdir -p "$STAGE"
  if ! cmp -s "$index" "$STAGE/index.json"; then  # another prepare's parts (or none): start this machine afresh
    [ -f "$STAGE/index.json" ] && echo "the parts here came from another prepare: dropped"
    rm -rf "${STAGE:?}"/* "${STAGE:?}"/.[!.]* && cp "$index" "$STAGE/index.json"
  fi
  local total; total=$(json "$STAGE/index.json" 'len(d["parts"])')
  [ $((10#$n)) -lt "$total" ] || die "part $n: prepare made $total part(s) (00..$(printf %02d $((total - 1))))"
  part_ok "$part" "$n" || die "$part is not the one prepare made (its SHA-256 differs): carry the right part"
  cp "$part" "$STAGE/part.$n.tmp" && mv "$STAGE/part.$n.tmp" "$STAGE/part.$n"
  local i missing=""
  for ((i = 0; i < 10#$n; i++)); do
    part_ok "$STAGE/part.$(printf %02d "$i")" "$i" || missing+=" $(printf %02d "$i")"
  done
  [ -z "$missing" ] || die "part $n staged, but part(s)$missing are not on this machine (a fresh one?): stage them, then go on"
  echo "staged part $n of $total"
}

cmd_train() {
  local seconds=${1:?train SECONDS} start; start=$(date +%s)
  [ -f "$STAGE/index.json" ] || die "nothing staged on this machine (a fresh one?): run the stage calls first"
  if [ ! -f "$STAGE/.unpacked" ]; then
    local total i missing=""; total=$(json "$STAGE/index.json" 'len(d["parts"])')
    for ((i = 0; i < total; i++)); do part_ok "$STAGE/part.$(printf %02d "$i")" "$i" || missing+=" $(printf %02d "$i")"; done
    [ -z "$missing" ] || die "part(s)$missing are not on this machine: stage them, then train"
    # in Python (lzma, tarfile): the device's image need not have xz; CIFAR-10 and the weights are two xz streams
    # of one tar each, one after the other
    cat "$STAGE"/part.[0-9][0-9] > "$STAGE/c.tar.xz" && rm -f "$STAGE"/part.[0-9][0-9]
    "$PY" - "$STAGE" <<'PY' || die "the staged archive does not unpack: stage its parts again"
import lzma, sys, tarfile
from pathlib import Path
stage = Path(sys.argv[1])
with lzma.open(stage / "c.tar.xz") as f, tarfile.open(fileobj=f, mode="r|", ignore_zeros=True) as tar:
    try:
        tar.extractall(stage, filter="data")
    except TypeError:  # a Python without extraction filters
        tar.extractall(stage)
PY
    rm -f "$STAGE/c.tar.xz" && touch "$STAGE/.unpacked"
  fi
  local pack_s k measure_s
  pack_s=$(json "$STAGE/window.json" 'd["pack_s"]')
  k=$(( $(cat "$STAGE/.train-calls" 2>/dev/null || echo 0) + 1 )) && echo "$k" > "$STAGE/.train-calls"
  # the plan keeps the end of the window's last call for the card's measurement while none is committed
  measure_s=$(json "$STAGE/window.json" "int(([c['measure_s'] for c in d['calls'] if c['what'] == 'train'] + [0] * 9)[$k - 1])")
  [ "$DEVICE" != cpu ] || measure_s=0
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L || true; fi
  local until=$((start + seconds - pack_s - measure_s)) name=""
  [ "$measure_s" -eq 0 ] || name=$(card)
  echo "== window train (call $k): $(json "$STAGE/window.json" 'len(d["runs"])') planned run(s), $((until - $(date +%s))) s to train"
  # one process: imports the runs that travelled (tracked and staged), trains the plan's list, in its order
  "$PY" -m rotnet_repro window train "$STAGE/window.json" --profile "$PROFILE" --out "$WORK" --data-dir "$STAGE" \
    --device "$DEVICE" --until "$until" ${BUDGET:+--budget "$BUDGET"} --bench results/bench \
    --import "runs/$PROFILE" --import "$STAGE/runs/$PROFILE" || echo "(stopped: rc $?; the next call resumes)"
  local left=$((start + seconds - pack_s - $(date +%s)))
  if [ "$measure_s" -gt 0 ] && [ "$left" -gt 30 ]; then  # gpu/measure.sh's throughput part, saved part by part
    echo "== the card's measurement ($left s)"
    timeout -k 5 "$((left - 5))" "$PY" -m rotnet_repro bench --throughput --compile --profile "$PROFILE" \
      --device "$DEVICE" --processes 4 --seconds 5 --save "$WORK/results/bench/throughput-$PROFILE-width-$name.json" || true
  fi
  cmd_pack
}

card() {  # the card's name as measurement files have it (the package's Device.card)
  "$PY" -c "from rotnet_repro.engine import Device; print(Device.pick('$DEVICE').card or 'cpu')"
}

cmd_pack() {
  local out=${OUT:?OUT is where the results go}
  "$PY" -m rotnet_repro window pack "$WORK" --out "$out" --home runs --profile "$PROFILE"
  ls -l "$out"
}

cmd_unpack() {
  local dir=${1:?unpack DIR (the folder the files came back to)} dest=${DEST:-.}
  # refuses a partial archive (a part missing or cut) before it imports anything; then the rows of every finished
  # run of the protocol, from the records (nothing is trained)
  if [ "${COMMIT:-1}" != 1 ] || ! git -C "$dest" rev-parse --git-dir >/dev/null 2>&1; then
    "$PY" -m rotnet_repro window unpack "$dir" --out "$dest" --profile "$PROFILE"
    echo "not committed (COMMIT=0 or no git)"; return 0
  fi
  # nothing is lost: the weights into the history (runs/weights.json, --store), records, rows and logs into the tree
  "$PY" -m rotnet_repro window unpack "$dir" --out "$dest" --profile "$PROFILE" --store
  if git -C "$dest" check-ignore -q --no-index "runs/$PROFILE"; then  # (--no-index: once its records are tracked too)
    # an ignored profile (runs/smoke): its records, specs and logs exist nowhere else once the machine is gone, so
    # they are added all the same; its weights are in the history already and its rows (results/) are rebuilt from
    # the records by every unpack
    echo "runs/$PROFILE is git-ignored: its records, specs and logs are committed all the same (git add --force); its weights are in the history, its rows stay uncommitted"
    git -C "$dest" add -u -- "runs/$PROFILE"
    git -C "$dest" ls-files -z -o -i --exclude-standard -- "runs/$PROFILE" \
      | { grep -zvE '(\.pt|\.lock|\.tmp|\.damaged)$|/rejected/' || true; } | xargs -0 -r git -C "$dest" add -f --
  else
    git -C "$dest" add -A "runs/$PROFILE"
  fi
  if [ -d "$dest/results" ]; then git -C "$dest" add -A results; fi
  if git -C "$dest" diff --cached --quiet; then echo "nothing new to commit"; return 0; fi
  git -C "$dest" commit -q -m "GPU window ($PROFILE): the runs, rows and logs that came back" && git -C "$dest" log --oneline -1
}

case "${1:-}" in
  plan) shift; cmd_plan "$@" ;;
  prepare) cmd_prepare ;;
  stage) cmd_stage "${2:?stage NN}" ;;
  train) cmd_train "${2:-}" ;;
  pack) cmd_pack ;;
  unpack) cmd_unpack "${2:-}" ;;
  last) cmd_last "${2:-}" ;;
  *) die "usage: gpu/paper.sh plan | prepare | stage NN | train SECONDS | pack | unpack DIR | last LEFT_S" ;;
esac
