#!/usr/bin/env bash
# Run THERE (the lent GPU machine) as `bash benchmarks/gpu_check.sh` with carry ["gpu_data"] (made by
# benchmarks/gpu_prepare.sh) and OUT set to an empty folder whose files come back. See benchmarks/GPU.md.
#
#   1. offline editable install + environment facts, then the CUDA tests (tests/test_train_cuda.py and
#      the CUDA backends of tests/test_backend_conformance.py)
#   2. ccv train gpu_data/monet2photo for TRAIN_TIME (capped so that the whole script ends by TOTAL_S)
#   3. pack G_B (photo -> Monet) as 2 fp16 parts + card, loss log, sample grid, contact sheet
#   4. conversion speed: benchmarks/convert_speed.py on gpu_data
#   5. with any time left: the generator alone, benchmarks/gpu_generator.py (paths, batch sizes, share of
#      the card's FP16 matrix rate)
#
# A failing step does not stop the later ones; every step's output goes to $OUT/gpu_check.log (and
# stdout), and a summary table comes last. What lands in $OUT (7 files, each under 16 MiB):
#   gpu_check.log  G_B_fp16.part1.pth  G_B_fp16.part2.pth  train_meta.json  loss_log.csv
#   sample_grid.png  contact_sheet.png
#
# Overrides for a CPU dry run (see GPU.md): DEVICE=cpu TRAIN_TIME=40s
#   EXTRA_TRAIN_ARGS="--ngf 8 --blocks 1 --load-size 36 --crop-size 32"
#   CONVERT_ARGS="--device cpu --small 3 --large 0" SKIP_INSTALL=1 PY=...
set -u

START=$(date +%s)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

OUT="${OUT:?set OUT to the folder whose files come back}"
PY="${PY:-python3}"
DEVICE="${DEVICE:-cuda}"
TRAIN_TIME="${TRAIN_TIME:-390s}"
BATCH="${BATCH:-1}"
WORKERS="${WORKERS:-12}"
SAVE_EVERY="${SAVE_EVERY:-1000}"
EXTRA_TRAIN_ARGS="${EXTRA_TRAIN_ARGS:-}"
CONVERT_ARGS="${CONVERT_ARGS:---device cuda --small 200 --large 2}"
TOTAL_S="${TOTAL_S:-565}"      # the whole script ends by then (the device call's timeout is 590 s)
HARD_S="${HARD_S:-582}"        # no step's limit reaches past this, even when one hangs
RESERVE_S="${RESERVE_S:-150}"  # kept after the training loop: its start-up and last save, pack, convert speed
WORK="${WORK:-/tmp/ccv-work}"
DATA_ROOT="${DATA_ROOT:-gpu_data}"
SKIP_INSTALL="${SKIP_INSTALL:-0}"

mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
rm -rf "$WORK"
mkdir -p "$WORK/home" "$WORK/checkpoints"
export CCV_HOME="$WORK/home"
export PYTHONUNBUFFERED=1
export COLUMNS="${COLUMNS:-200}"  # rich wraps ccv's lines at 80 columns without a terminal

declare -a STEP_NAMES=() STEP_RCS=() STEP_SECS=()

elapsed() { echo $(( $(date +%s) - START )); }

log() { echo "$*" | tee -a "$LOG"; }

# run_step NAME TIMEOUT_S [timeout options --] CMD...: output to the log and stdout; rc and seconds recorded
run_step() {
    local name="$1" limit="$2"; shift 2
    local -a topts=()
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do topts+=("$1"); shift; done
    shift  # the --
    local t0 rc left
    t0=$(date +%s)
    left=$(( HARD_S - $(elapsed) ))
    (( limit > left )) && limit=$left
    log ""
    log "===== $name (limit ${limit}s, at +$(elapsed)s): $*"
    if [ "$limit" -le 0 ]; then
        log "skipped: no time left"
        rc=125
    else
        timeout "${topts[@]}" "$limit" "$@" 2>&1 | tee -a "$LOG"
        rc=${PIPESTATUS[0]}
    fi
    local dt=$(( $(date +%s) - t0 ))
    log "===== $name: exit $rc after ${dt}s"
    STEP_NAMES+=("$name"); STEP_RCS+=("$rc"); STEP_SECS+=("$dt")
    return 0
}

# seconds of a duration as ccv train takes it: 390, 390s, 6.5m, 1h
to_seconds() {
    awk -v d="$1" 'BEGIN { n = d + 0; u = substr(d, length(d)); m = 1;
        if (u == "m") m = 60; else if (u == "h") m = 3600; else if (u == "d") m = 86400;
        printf "%d\n", n * m }'
}

: > "$LOG"
log "gpu_check.sh at $(date -u +%Y-%m-%dT%H:%M:%SZ) in $ROOT; OUT=$OUT; git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
log "settings: DEVICE=$DEVICE TRAIN_TIME=$TRAIN_TIME BATCH=$BATCH WORKERS=$WORKERS SAVE_EVERY=$SAVE_EVERY EXTRA_TRAIN_ARGS='$EXTRA_TRAIN_ARGS' CONVERT_ARGS='$CONVERT_ARGS' TOTAL_S=$TOTAL_S"
log "data: $(find "$DATA_ROOT/monet2photo/trainA" -type f 2>/dev/null | wc -l) Monet, $(find "$DATA_ROOT/monet2photo/trainB" -type f 2>/dev/null | wc -l) photos, $(find "$DATA_ROOT/large" -type f 2>/dev/null | wc -l) large in $DATA_ROOT (carry [\"gpu_data\"] made by benchmarks/gpu_prepare.sh)"

# ---- 1. install and environment ---------------------------------------------------------------------
install() {
    if [ "$SKIP_INSTALL" = "1" ]; then
        echo "SKIP_INSTALL=1: using the installed package"
    elif ! "$PY" -m pip install -q --no-deps --no-index --no-build-isolation -e .; then
        # Fallback: a package folder of links that maps train/ and export/ like the install does.
        echo "pip install failed: falling back to a linked package on PYTHONPATH"
        local shim="$WORK/shim/cyclegan_convert" f
        mkdir -p "$shim"
        for f in "$ROOT"/cyclegan_convert/*; do ln -s "$f" "$shim/"; done
        ln -s "$ROOT/train" "$shim/train"
        ln -s "$ROOT/export" "$shim/export"
        echo "$WORK/shim" > "$WORK/pythonpath"
    fi
    [ -f "$WORK/pythonpath" ] && export PYTHONPATH="$(cat "$WORK/pythonpath")${PYTHONPATH:+:$PYTHONPATH}"
    # -P: not the repository folder first on sys.path, where cyclegan_convert/ lacks train/ and export/
    "$PY" -P -c "import cyclegan_convert, cyclegan_convert.train.loop, cyclegan_convert.export; print('import ok:', cyclegan_convert.__file__)"
}
env_facts() {
    command -v nvidia-smi >/dev/null && { nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; }
    echo "cpus: $(nproc); python: $("$PY" -c 'import sys; print(sys.version.split()[0])')"
    df -h /dev/shm /tmp 2>/dev/null | sed 's/^/  /'
    "$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}, cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}, "
      f"cuda available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device: {torch.cuda.get_device_name(0)}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
for m in ("onnxruntime", "PIL", "numpy", "typer", "av"):
    try:
        mod = __import__(m)
        print(m, getattr(mod, "__version__", "?"))
    except Exception as e:
        print(m, "missing:", type(e).__name__)
EOF
}
export ROOT WORK PY SKIP_INSTALL
export -f install env_facts
run_step install 180 -- bash -c install
[ -f "$WORK/pythonpath" ] && export PYTHONPATH="$(cat "$WORK/pythonpath")${PYTHONPATH:+:$PYTHONPATH}"
run_step env 60 -- bash -c env_facts

# ---- 1b. the CUDA checks of the test suite (skipped on machines without a GPU) ------------------------
# AMP, channels_last and cuDNN autotuning against fp32 in training; the PyTorch CUDA backends (fp32,
# fp16) against the CPU reference. -P: the installed package, not the checkout's cyclegan_convert/.
run_step cuda_tests "${CUDA_TESTS_S:-120}" -- "$PY" -P -m pytest -q -rs -p no:cacheprovider \
    tests/test_train_cuda.py tests/test_backend_conformance.py -k "cuda"

BIN="$(dirname "$(command -v "$PY" 2>/dev/null || echo "$PY")")"
if [ -x "$BIN/ccv" ] && [ ! -f "$WORK/pythonpath" ]; then
    CCV=("$BIN/ccv")
else
    CCV=("$PY" -P -c "import sys; sys.argv[0] = 'ccv'; from cyclegan_convert.cli import main; main()")
fi

# ---- 2. training -------------------------------------------------------------------------------------
want_s=$(to_seconds "$TRAIN_TIME")
avail_s=$(( TOTAL_S - $(elapsed) - RESERVE_S ))
train_s=$(( want_s < avail_s ? want_s : avail_s ))
(( train_s < 10 )) && train_s=10
log "training for ${train_s}s (asked ${want_s}s, ${avail_s}s available before the reserve)"
GPU_MON=""
if [ "$DEVICE" != "cpu" ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw --format=csv,noheader -l 30 \
        > "$WORK/gpu_util.csv" 2>&1 &
    GPU_MON=$!
fi
# train_once STEP_NAME SECONDS WORKERS. SIGINT at the hard limit: ccv train saves and stops; KILL 45 s
# later if that hangs. The hard limit leaves 60 s for packing whatever was saved.
train_once() {
    local hard=$(( $2 + 100 )) left=$(( HARD_S - $(elapsed) - 60 - 45 ))
    (( hard > left )) && hard=$left
    # shellcheck disable=SC2086  # EXTRA_TRAIN_ARGS is a list of options
    run_step "$1" "$hard" -s INT -k 45 -- "${CCV[@]}" train "$DATA_ROOT/monet2photo" --name monet2photo \
        --device "$DEVICE" --max-time "${2}s" --batch-size "$BATCH" --workers "$3" \
        --save-every "$SAVE_EVERY" --log-format csv --checkpoints-dir "$WORK/checkpoints" $EXTRA_TRAIN_ARGS
}
train_once train "$train_s" "$WORKERS"
if [ ! -f "$WORK/checkpoints/monet2photo/latest_net_G_B.pth" ]; then
    # Nothing saved (e.g. data workers killed for lack of shared memory): once more, 2 workers, what time is left.
    retry_s=$(( TOTAL_S - $(elapsed) - RESERVE_S ))
    if (( retry_s >= 60 )); then
        log "no generator saved: training again with 2 workers for ${retry_s}s"
        rm -rf "$WORK/checkpoints/monet2photo" "$CCV_HOME/models"
        train_once train_retry "$retry_s" 2
    else
        log "no generator saved and only ${retry_s}s left: no retry"
    fi
fi
if [ -n "$GPU_MON" ]; then
    kill "$GPU_MON" 2>/dev/null; wait "$GPU_MON" 2>/dev/null
    log "GPU utilisation every 30 s during training (timestamp, util, memory, power):"
    tee -a "$LOG" < "$WORK/gpu_util.csv"
fi

# ---- 3. pack -----------------------------------------------------------------------------------------
pack_device="$DEVICE"
run_step pack 120 -- "$PY" benchmarks/gpu_model.py pack "$WORK/checkpoints/monet2photo" --home "$CCV_HOME" \
    --out "$OUT" --device "$pack_device"

# ---- 4. conversion speed -----------------------------------------------------------------------------
convert_limit=$(( TOTAL_S - $(elapsed) ))
(( convert_limit > 300 )) && convert_limit=300
# shellcheck disable=SC2086
run_step convert_speed "$convert_limit" -k 10 -- "$PY" benchmarks/convert_speed.py --data "$DATA_ROOT" $CONVERT_ARGS

# ---- 5. the generator alone (only with the time that is left) ----------------------------------------
gen_budget=$(( TOTAL_S - $(elapsed) - 20 ))
if (( gen_budget >= 30 )); then
    # shellcheck disable=SC2086
    run_step generator $(( gen_budget + 15 )) -k 5 -- "$PY" benchmarks/gpu_generator.py --device "$DEVICE" \
        --budget-s "$gen_budget" ${GENERATOR_ARGS:-}
else
    log "generator benchmark skipped: ${gen_budget}s left"
fi

# ---- summary -----------------------------------------------------------------------------------------
{
    echo ""
    echo "===== SUMMARY (total $(elapsed)s)"
    echo "| step | exit | seconds |"
    echo "|---|---|---|"
    for i in "${!STEP_NAMES[@]}"; do
        echo "| ${STEP_NAMES[$i]} | ${STEP_RCS[$i]} | ${STEP_SECS[$i]} |"
    done
    echo ""
    sed -n '/===== train (/,/===== train:/p' "$LOG" | grep -E "^(device:|data:|skipped|step [0-9]+/|[a-z ]+ at step )" | tail -4
    "$PY" - "$OUT/train_meta.json" <<'EOF'
import json, sys
try:
    m = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"train_meta.json: not readable ({type(e).__name__})"); sys.exit(0)
steps, wall = m.get("steps"), m.get("wall_time_s")
rate = f", {steps / wall:.2f} steps/s" if steps and wall else ""
print(f"trained: {steps} steps, {m.get('epochs')} epochs, batch {m.get('batch_size')}, {wall} s{rate}, "
      f"device {m.get('device')}, {m.get('arch')} ngf {m.get('ngf')}")
losses = m.get("losses_mean_last_100_steps") or {}
print("mean of the last 100 losses: " + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()))
first = (m.get("loss_log") or {}).get("mean_first_100") or {}
if first:
    print("mean of the first 100 losses: " + ", ".join(f"{k} {v:.3f}" for k, v in first.items()))
EOF
    echo ""
    echo "convert speed:"
    sed -n '/===== convert_speed (/,/===== convert_speed:/p' "$LOG" | grep -E "^(\||[0-9]+ images|stage rates|baseline|ours)" || echo "(no table)"
    echo ""
    echo "CUDA tests:"
    sed -n '/===== cuda_tests (/,/===== cuda_tests:/p' "$LOG" | { grep -E "(passed|failed|error|FAILED)" || echo "(not run)"; } | tail -5
    echo ""
    echo "generator alone:"
    sed -n '/===== generator (/,/===== generator:/p' "$LOG" | grep -E "^(\||device:|measured|\(stopped)" || echo "(not run)"
    echo ""
    echo "files in OUT:"
    n=0; bad=0; total=0
    while IFS= read -r -d '' f; do
        sz=$(stat -c %s "$f"); n=$((n + 1)); total=$((total + sz))
        rel="${f#"$OUT"/}"
        note=""
        (( sz > 16 * 1024 * 1024 )) && { note=" OVER 16 MiB"; bad=1; }
        [[ "$rel" =~ ^[A-Za-z0-9._/-]+$ ]] || { note="$note BAD NAME"; bad=1; }
        printf "  %10d  %s%s\n" "$sz" "$rel" "$note"
    done < <(find "$OUT" -type f -print0 | sort -z)
    (( n > 8 )) && bad=1
    echo "  $n files, $total bytes$([ "$bad" = 1 ] && echo ' -- LIMITS EXCEEDED (8 files, 16 MiB each)')"
} 2>&1 | tee -a "$LOG"
# the summary's file list was written before the log's last lines: the log's size is slightly more
