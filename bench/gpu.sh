#!/usr/bin/env bash
# The GPU figures in one call of at most 10 minutes, compilations included, on a JAX GPU machine with no
# TensorFlow and no network.  Here, once: `python bench/gpu.py pack` (the wheels and data it needs, into the
# ignored .gpu-pack/, about 50 MiB); there, from the repository root:
#     bash bench/gpu.sh OUT [--minutes 8.5]
# OUT gets gpu.json (written after every part) and quality-run.tar; back here:
#     python bench/gpu.py merge OUT --quality-run /some/where
# (bench/results-gpu.json, the GPU table of bench/README.md, and the command that scores the vocoder).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash bench/gpu.sh OUT [gpu.py run options]}
shift
pack=${SEQGEN_GPU_PACK:-.gpu-pack}
if [ -d "$pack/wheels" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/seqgen-site "$pack"/wheels/*.whl
    export PYTHONPATH=/tmp/seqgen-site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
exec python3 bench/gpu.py run --out "$out" --pack "$pack" "$@"
