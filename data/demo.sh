#!/usr/bin/env bash
# The invsolve demo on embedded data (about 3 minutes on 2 cores):
#   1. a learned prior: train a small patchNR on one image (data/learn.png), then reconstruct a
#      limited-angle CT measurement of another (data/test.png) with it, beside FBP and TV;
#   2. your own data: a sinogram written with ASTRA directly (not by invsolve), reconstructed
#      through --operator with its real angle convention;
#   3. every other operator with its classical baselines;
# then a PSNR/SSIM table of everything.
#   bash data/demo.sh [OUTPUT_FOLDER]      (default: demo-out)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-demo-out}
mkdir -p "$out"
phantom="$here/phantom.png"
camera="$here/camera.png"
q=(--overwrite -q)

echo "invsolve demo: writing to $out/" >&2

# 1. a patchNR prior from one 128x128 image (3000 steps), used on another image's limited-angle scan
echo "[1/3] training a patchNR prior on data/learn.png (3000 steps) ..." >&2
invsolve train-prior --prior patchnr --images "$here/learn.png" --steps 3000 --output "$out/prior.pt" --seed 0 "${q[@]}"
# ct-limited: LoDoPaB's angles 18..162 degrees; the 96x96 test image on LoDoPaB's 0.26 m domain is
# photon-starved at its 4096 photons per ray, so the demo gives 1e5
invsolve simulate --operator ct-limited -N n0=100000 --input "$here/test.png" --output "$out/limited.h5" --seed 0 \
  "${q[@]}" --preview "$out/limited.png"
invsolve reconstruct "$out/limited.h5" --method fbp --output "$out/limited_fbp.h5" "${q[@]}"
invsolve reconstruct "$out/limited.h5" --method tv --output "$out/limited_tv.h5" "${q[@]}"
echo "[1/3] MAP with the prior, from TV (100 iterations) ..." >&2
invsolve reconstruct "$out/limited.h5" --prior patchnr --prior-file "$out/prior.pt" -M init=tv -M iterations=100 \
  --output "$out/limited_patchnr.h5" "${q[@]}" --preview "$out/limited_patchnr.png"

# 2. a sinogram invsolve did not write: ASTRA's own projector, angles linspace(0, pi, 180, endpoint=False)
echo "[2/3] reconstructing a sinogram written with ASTRA directly ..." >&2
python - "$phantom" "$out/astra_sinogram.npy" <<'EOF'
import sys

import astra
import numpy as np
from skimage import io

x = io.imread(sys.argv[1]).astype(np.float32) / 255.0
angles = np.linspace(0, np.pi, 180, endpoint=False)
geom = astra.create_proj_geom("parallel", 1.0, 183, angles)
pid = astra.create_projector("linear", geom, astra.create_vol_geom(*x.shape))
_, sino = astra.create_sino(x, pid)
rng = np.random.default_rng(0)
np.save(sys.argv[2], (sino + rng.normal(0, 0.5, sino.shape)).astype(np.float32))
EOF
for m in fbp tv; do
  invsolve reconstruct "$out/astra_sinogram.npy" --operator ct -P endpoint=false --image-size 128 -N sigma=0.5 \
    --method "$m" --output "$out/own_sinogram_$m.h5" "${q[@]}"
done

# 3. the other operators with their classical baselines
echo "[3/3] the other operators ..." >&2
case_() {  # case_ NAME OPERATOR IMAGE METHOD...
  local name=$1 op=$2 img=$3; shift 3
  invsolve simulate --operator "$op" --input "$img" --output "$out/$name.h5" --seed 0 "${q[@]}" \
    --preview "$out/$name.png"
  for m in "$@"; do
    invsolve reconstruct "$out/$name.h5" --method "$m" --output "$out/${name}_$m.h5" "${q[@]}"
  done
}
case_ ct-lowdose ct-lowdose "$phantom" fbp tv
case_ superres superres "$camera" bicubic tv
case_ inpaint inpaint "$camera" tikhonov tv
case_ blur blur "$camera" tikhonov tv

invsolve evaluate "$out"/limited_*.h5 "$out"/ct-lowdose_*.h5 "$out"/superres_*.h5 "$out"/inpaint_*.h5 \
  "$out"/blur_*.h5
invsolve evaluate "$out"/own_sinogram_*.h5 --reference "$phantom"
