#!/usr/bin/env bash
# The invsolve demo on embedded data: simulate, reconstruct and evaluate every
# operator with its classical baselines, then print a PSNR/SSIM table.
#   bash data/demo.sh [OUTPUT_FOLDER]      (default: demo-out)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-demo-out}
mkdir -p "$out"
phantom="$here/phantom.png"
camera="$here/camera.png"

case_() {  # case_ NAME OPERATOR IMAGE METHOD...
  local name=$1 op=$2 img=$3; shift 3
  invsolve simulate --operator "$op" --input "$img" --output "$out/$name.h5" --seed 0 --overwrite -q \
    --preview "$out/$name.png"
  for m in "$@"; do
    invsolve reconstruct "$out/$name.h5" --method "$m" --output "$out/${name}_$m.h5" --overwrite -q \
      --preview "$out/${name}_$m.png"
  done
}

echo "invsolve demo: writing to $out/" >&2
case_ ct-limited ct-limited "$phantom" fbp tv
case_ ct-lowdose ct-lowdose "$phantom" fbp tv
case_ superres superres "$camera" bicubic tv
case_ inpaint inpaint "$camera" tikhonov tv
case_ blur blur "$camera" tikhonov tv
invsolve evaluate "$out"/*_*.h5
