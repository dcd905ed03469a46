#!/usr/bin/env bash
# The GPU rows of docs/performance.md on a machine with one GPU: the train comparison (zoo,
# transformers.Trainer random and group_by_length) and the embedding cache at base size in bf16
# (python -m benchmarks.gpu), ~6 min on an H100. Writes gpu.json, gpu.md, gpu.log to OUT_DIR.
#
#   bash benchmarks/gpu.sh [OUT_DIR]        # default: $OUT, else ./gpu-results
#   ZOO_GPU_DRY=1 bash benchmarks/gpu.sh    # the same steps on the CPU, tiny sizes (~5 min)
#   bash benchmarks/gpu.sh --fetch-wheels   # here, with PyPI: the wheels a machine without network needs
#
# Python: .venv (make install) when it exists; else `make install` when PyPI is reachable; else the
# machine's python3 (a GPU image with torch, lightning, transformers), with the zoo's missing
# packages installed from the wheels in .whl (--fetch-wheels, carried along with the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

# pins of the packages a CUDA image with torch and lightning may lack; transformers < 5 as the zoo
# requires (pyproject.toml), so the Trainer runs the same version as the CPU numbers
WHEELS="transformers==4.57.6 tokenizers==0.22.2 huggingface-hub==0.36.2 jsonargparse==4.53.0
docstring-parser==0.18.0 typeshed-client==2.15.0 importlib-resources==6.5.2 soundfile==0.14.0
cffi==2.0.0 pycparser==2.23 soxr==1.1.0"

if [ "${1:-}" = "--fetch-wheels" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> "$(git rev-parse --git-common-dir)/info/exclude"
  py=$(command -v python3)
  # shellcheck disable=SC2086
  "$py" -m pip download --no-deps --only-binary=:all: --python-version "${ZOO_GPU_PY:-3.12}" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl $WHEELS
  du -sh .whl
  exit 0
fi

out=${1:-${OUT:-gpu-results}}
mkdir -p "$out"
exec > >(tee "$out/gpu.log") 2>&1

needs="import zoo.cli, zoo.data, soxr, soundfile, jsonargparse, transformers, lightning, torch, sys
sys.exit(int(transformers.__version__.split('.')[0]) >= 5)"  # the zoo needs transformers < 5
if [ -n "${ZOO_PY:-}" ]; then
  PY=$ZOO_PY
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif PYTHONPATH=$PWD python3 -c "$needs" 2>/dev/null; then
  PY=python3
elif [ -d .whl ]; then  # a GPU image without network: its torch and lightning, the rest from wheels
  PY=python3
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/zoo-site .whl/*.whl
  export PYTHONPATH=/tmp/zoo-site
  PYTHONPATH=$PWD:/tmp/zoo-site $PY -c "$needs" || { echo "gpu.sh: the zoo does not import with .whl"; exit 2; }
elif timeout 20 python3 -m pip download --no-deps -q -d /tmp/zoo-probe six >/dev/null 2>&1; then
  make install && PY=.venv/bin/python
else
  echo "gpu.sh: no .venv, no network and no .whl: run 'bash benchmarks/gpu.sh --fetch-wheels' where PyPI" \
       "is reachable, and carry .whl with the repository"
  exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=disabled PYTHONUNBUFFERED=1

echo "== machine"; date -u; uname -a; nproc || true; free -g 2>/dev/null | head -2 || true
nvidia-smi || echo "nvidia-smi: not available"
$PY -c "import torch, transformers, lightning; print('torch', torch.__version__, 'CUDA', torch.version.cuda,
'| transformers', transformers.__version__, '| lightning', lightning.__version__)"

if [ "${ZOO_GPU_DRY:-0}" = "1" ]; then
  $PY -m benchmarks.gpu "$out" --device cpu --precision bf16 --quick
else
  timeout 570 $PY -m benchmarks.gpu "$out"
fi
