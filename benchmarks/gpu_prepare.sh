#!/usr/bin/env bash
# Run HERE (the CPU machine) before the device call: copies a data subset into gpu_data/ (git-ignored),
# which then travels to the GPU machine with carry=["gpu_data"]. See benchmarks/GPU.md.
#
#   gpu_data/monet2photo/trainA/  MONET_N Monet paintings, evenly spread over the name order
#   gpu_data/monet2photo/trainB/  PHOTO_N landscape photos, evenly spread, without the photos of
#                                 cyclegan_convert/samples/ and tests/fixtures/photo/ (kept unseen)
#   gpu_data/large/               the 2 smallest (by pixels) photos of photos-large
#
# Idempotent: gpu_data/ is rebuilt from scratch each time. Fails when gpu_data/ exceeds MAX_MIB or
# the travelling tree (tracked files + gpu_data) exceeds TREE_MAX_MIB.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SRC="${DATA:-$ROOT/../shared/data}"  # beside the repository, or DATA=...
[ -d "$SRC" ] || { echo "error: $SRC: no such folder (the shared data); give DATA=DIR" >&2; exit 2; }
DST="$ROOT/gpu_data"
MONET_N="${MONET_N:-800}"
PHOTO_N="${PHOTO_N:-600}"
LARGE_N="${LARGE_N:-2}"
MAX_MIB="${MAX_MIB:-52}"
TREE_MAX_MIB="${TREE_MAX_MIB:-62}"
PY="${PY:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3

for d in "$SRC/monet2photo/trainA" "$SRC/monet2photo/trainB" "$SRC/photos-large"; do
    [ -d "$d" ] || { echo "missing $d" >&2; exit 1; }
done

rm -rf "$DST"
mkdir -p "$DST/monet2photo/trainA" "$DST/monet2photo/trainB" "$DST/large"

# Names kept out of training: the bundled samples and the test fixtures.
declare -A EXCLUDE=()
for f in "$ROOT"/cyclegan_convert/samples/* "$ROOT"/tests/fixtures/photo/*; do
    [ -f "$f" ] && EXCLUDE["$(basename "$f")"]=1
done

# copy_spread SRC_DIR DST_DIR N [exclude]: N files spread evenly over the sorted names.
copy_spread() {
    local src="$1" dst="$2" n="$3" excl="${4:-}"
    local -a names=()
    local name
    while IFS= read -r -d '' name; do
        name="${name##*/}"
        if [ -n "$excl" ] && [ -n "${EXCLUDE[$name]+x}" ]; then
            continue
        fi
        names+=("$name")
    done < <(find "$src" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) -print0 \
             | LC_ALL=C sort -z)
    local total=${#names[@]}
    (( n > total )) && n=$total
    local i
    for (( i = 0; i < n; i++ )); do
        cp -- "$src/${names[i * total / n]}" "$dst/"
    done
    echo "$n of $total from $src"
}

copy_spread "$SRC/monet2photo/trainA" "$DST/monet2photo/trainA" "$MONET_N"
copy_spread "$SRC/monet2photo/trainB" "$DST/monet2photo/trainB" "$PHOTO_N" exclude

# The smallest large photos by pixel count (the order benchmarks/convert_speed.py uses).
"$PY" - "$SRC/photos-large" "$DST/large" "$LARGE_N" <<'EOF'
import shutil, sys
from pathlib import Path
from PIL import Image
src, dst, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
def pixels(p):
    with Image.open(p) as im:
        return im.size[0] * im.size[1]
files = sorted(src.rglob("*.jpg"), key=lambda p: (pixels(p), str(p)))[:n]
for p in files:
    shutil.copy(p, dst / p.name)
    print(f"large: {p} ({pixels(p) / 1e6:.2f} MP)")
EOF

# No excluded name may have slipped in.
for name in "${!EXCLUDE[@]}"; do
    if [ -e "$DST/monet2photo/trainB/$name" ]; then
        echo "excluded photo copied: $name" >&2; exit 1
    fi
done

echo "counts: trainA $(find "$DST/monet2photo/trainA" -type f | wc -l), trainB $(find "$DST/monet2photo/trainB" -type f | wc -l), large $(find "$DST/large" -type f | wc -l)"
du -sh "$DST"
data_kib=$(du -sk "$DST" | cut -f1)
tracked_kib=$(git ls-files -z | du -c --files0-from=- 2>/dev/null | tail -1 | cut -f1)
# untracked, not ignored files travel too
untracked_kib=$( (git ls-files -z --others --exclude-standard | du -c --files0-from=- 2>/dev/null || true) | tail -1 | cut -f1)
untracked_kib=${untracked_kib:-0}
tree_kib=$((data_kib + tracked_kib + untracked_kib))
echo "travelling tree: tracked ${tracked_kib} KiB + untracked ${untracked_kib} KiB + gpu_data ${data_kib} KiB = $((tree_kib / 1024)) MiB (limit 64 MiB)"
if (( data_kib > MAX_MIB * 1024 )); then
    echo "gpu_data is over ${MAX_MIB} MiB: lower MONET_N / PHOTO_N" >&2; exit 1
fi
if (( tree_kib > TREE_MAX_MIB * 1024 )); then
    echo "the travelling tree is over ${TREE_MAX_MIB} MiB: lower MONET_N / PHOTO_N" >&2; exit 1
fi
echo "ok: gpu_data ready"
