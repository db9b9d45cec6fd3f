#!/usr/bin/env bash
# Optional tooling: the venv for the benchmark BASELINE (benchmarks/baseline_ultralytics.py, and
# `python -m edge bench --baseline`): the naive Ultralytics pipeline, which needs torch.
# The edge runtime itself (.venv, `make setup`) never needs torch; nothing here touches .venv.
#
# Idempotent: re-running it only does what is missing. Creates .venv-baseline (git-ignored) with
#   - the runtime requirements (requirements.txt: numpy, opencv-python, onnxruntime, the edge's
#     own dependencies) so `edge.*` (the rules) imports there too, with the same opencv-python;
#   - torch 2.13.0, CPU build only (a local wheel, e.g. in PIP_FIND_LINKS): never a CUDA build;
#   - ultralytics 8.4.190 with --no-deps, plus what it really uses to load an ONNX model and to
#     predict/track a stream: lap (its trackers' assignment) and onnx (its ONNX backend asks for it;
#     without it an online Ultralytics would pip-install it at run time). Its other declared
#     dependencies (polars, psutil, ultralytics-thop, nvidia-ml-py, ultralytics-platform) are not
#     used on that path and are left out (`pip check` will say so);
#   - tools/torchvision_shim: a distribution named "torchvision" that only provides ops.nms /
#     ops.batched_nms in plain torch. No CPU torchvision from the registry imports against this
#     torch, and Ultralytics 8.4.190 reads torchvision's version at import and, on stream sources,
#     imports torchvision and calls torchvision.ops.nms. For benchmarking only.
# and an Ultralytics settings folder with a local font (no download at run time).
#
#   scripts/setup_baseline.sh            # then: .venv-baseline/bin/python benchmarks/baseline_ultralytics.py ...
#   FORCE=1 scripts/setup_baseline.sh    # reinstall even if nothing changed
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-baseline
TORCH_VERSION=2.13.0
ULTRALYTICS_VERSION=8.4.190
EXTRA_PINS=(lap==0.5.13 onnx==1.23.2)
SHIM=tools/torchvision_shim
CONFIG_DIR=${YOLO_CONFIG_DIR:-$HOME/.cache/ioc-edge/ultralytics}

say() { echo "setup_baseline: $*"; }
fail() { echo "setup_baseline: ERROR: $*" >&2; exit 1; }

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  || fail "Python >= 3.11 is required (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11"

if [ -x "$VENV/bin/python" ]; then
  say "$VENV exists"
else
  say "creating $VENV ($("$PY" --version 2>&1))"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# Everything that decides what gets installed; unchanged and importable -> nothing to do.
stamp=$VENV/.baseline.sha256
want=$( (cat requirements.txt "$0"; find "$SHIM" -type f \( -name '*.py' -o -name '*.toml' \) -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)

check() {
  YOLO_OFFLINE=1 YOLO_CONFIG_DIR="$CONFIG_DIR" PYTHONPATH=. "$VENV/bin/python" - <<'EOF'
import torch, torchvision, ultralytics, cv2, onnxruntime, lap, importlib.metadata as md
from torchvision.ops import nms
import edge.pipeline  # the rules, as the edge builds them
assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build"
assert "iocshim" in md.version("torchvision"), f"torchvision {md.version('torchvision')} is not our shim"
b = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.0]])
assert nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
print(f"torch {torch.__version__}, ultralytics {ultralytics.__version__}, torchvision {md.version('torchvision')},"
      f" opencv-python {md.version('opencv-python')}, onnxruntime {onnxruntime.__version__}")
EOF
}

if [ -z "${FORCE:-}" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && check >/dev/null 2>&1; then
  say "already set up: $(check 2>/dev/null | tail -1)"
  exit 0
fi

# 1. torch: the CPU build only. Ask pip what it would take before taking it.
have_torch=$("$VENV/bin/python" -c 'import torch; print(torch.__version__ if torch.version.cuda is None else "cuda")' 2>/dev/null || true)
if [[ "$have_torch" == "$TORCH_VERSION+cpu" ]]; then
  say "torch $have_torch already installed"
  torch_spec="torch==$have_torch"
else
  say "looking for the torch $TORCH_VERSION CPU wheel (pip index, PIP_FIND_LINKS)"
  report=$(mktemp)
  if ! "${PIP[@]}" install -q --dry-run --no-deps --ignore-installed --report "$report" "torch==$TORCH_VERSION" >/dev/null 2>&1; then
    rm -f "$report"
    fail "no torch==$TORCH_VERSION wheel for this Python/platform is reachable. The baseline needs the CPU wheel
  (torch-$TORCH_VERSION+cpu-cp311-...whl): put it in a folder named by PIP_FIND_LINKS (or pip's find-links),
  or use PyTorch's CPU wheel index (pip's --extra-index-url), then re-run."
  fi
  picked=$("$VENV/bin/python" -c 'import json,sys; r=json.load(open(sys.argv[1]))["install"][0]; print(r["metadata"]["version"], r["download_info"]["url"])' "$report")
  rm -f "$report"
  version=${picked%% *}
  if [[ "$version" != *+cpu ]]; then
    fail "pip would install torch $version from ${picked#* }, which is not the CPU build
  (a CUDA torch pulls several GB of nvidia-* packages). Make the torch-$TORCH_VERSION+cpu wheel reachable
  (PIP_FIND_LINKS folder or PyTorch's CPU index) and re-run."
  fi
  say "torch $version from ${picked#* }"
  torch_spec="torch==$version"
fi

# 2. The runtime requirements + torch + the few packages Ultralytics really uses here, in one resolve.
say "installing: -r requirements.txt $torch_spec ${EXTRA_PINS[*]}"
"${PIP[@]}" install -q -r requirements.txt "$torch_spec" "${EXTRA_PINS[@]}" 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/python" -c 'import torch' 2>/dev/null || fail "torch did not install (see pip's messages above)"

# 3. Ultralytics without its declared dependencies (they would pull torchvision -> a CUDA torch).
say "installing: ultralytics==$ULTRALYTICS_VERSION --no-deps"
"${PIP[@]}" install -q --no-deps "ultralytics==$ULTRALYTICS_VERSION" 2>&1 | grep -v "^WARNING: Location" || true

# 4. The torchvision shim, built from a copy (no build/ or egg-info in the work tree).
have_tv=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torchvision"))' 2>/dev/null || true)
if [ -n "$have_tv" ] && [[ "$have_tv" != *iocshim* ]]; then
  say "replacing torchvision $have_tv (cannot work with this torch) with the shim"
fi
say "installing: $SHIM (distribution 'torchvision', ops.nms/batched_nms only; benchmark use only)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$SHIM/." "$tmp/"
rm -rf "$tmp/build" "$tmp"/*.egg-info
"${PIP[@]}" install -q --no-deps --force-reinstall "$tmp" 2>&1 | grep -v "^WARNING: Location" || true

# 5. Ultralytics' settings folder and font (plotting would otherwise download Arial.ttf).
mkdir -p "$CONFIG_DIR/Ultralytics"
if [ ! -f "$CONFIG_DIR/Ultralytics/Arial.ttf" ]; then
  font=$("$VENV/bin/python" -c 'import matplotlib, pathlib; print(pathlib.Path(matplotlib.get_data_path(), "fonts/ttf/DejaVuSans.ttf"))' 2>/dev/null || true)
  if [ -n "$font" ] && [ -f "$font" ]; then
    cp "$font" "$CONFIG_DIR/Ultralytics/Arial.ttf"
    say "font: $font -> $CONFIG_DIR/Ultralytics/Arial.ttf"
  else
    say "note: no DejaVuSans.ttf found; only Ultralytics' plotting (not used by the benchmark) would want a font"
  fi
fi

# 6. Check: imports, CPU torch, the shim's NMS, and the edge's rules.
if ! versions=$(check); then
  fail "$VENV does not import torch/ultralytics/edge as expected; see the messages above"
fi
echo "$want" > "$stamp"
say "ok: $versions"
say "size: $(du -sh "$VENV" | cut -f1) in $VENV; Ultralytics settings: $CONFIG_DIR (use YOLO_OFFLINE=1 YOLO_CONFIG_DIR=$CONFIG_DIR)"
say "run: $VENV/bin/python benchmarks/baseline_ultralytics.py --urls rtsp://... --camera-config configs/cameras/<x>.yaml --duration 30 --json"
