#!/usr/bin/env bash
# Builds the reference environment used to produce inference/tests/fixtures/*
# and the llama.cpp reference benchmark. Not needed to build or test troupe.
#
#   bash benches/reference/setup.sh
#   "${REFERENCE_VENV:-$HOME/.cache/troupe-reference-venv}"/bin/python benches/reference/fixtures.py
#
# Idempotent: a package already installed at the pinned version is skipped.
#
# Notes
# - llama-cpp-python has no binary wheels on PyPI; pip builds its sdist, which
#   compiles the vendored llama.cpp with CMake (cmake itself comes from PyPI as a
#   build dependency when it is not on PATH). We build CPU only with
#   GGML_NATIVE=ON (-march=native: AVX2/FMA/AVX-512 where the CPU has them) and
#   never reuse pip's wheel cache for it, since a native build is machine specific.
# - torch comes from PyPI only (download.pytorch.org is not reachable here). PyPI has
#   no CPU-only Linux wheel: torch 2.15.0 for x86_64 is the CUDA 13 build and pulls
#   triton and the nvidia-*-cu13 runtime wheels (~2.8 GB download, ~6 GB venv). They
#   are downloaded once; torch then runs on CPU (no GPU needed), and the checks at the
#   end verify that `import torch` works and a CPU matmul runs.
# - First run takes about 8 minutes on 2 cores (llama.cpp compile ~5 min, downloads
#   the rest); a re-run with everything in place takes a few seconds.
set -euo pipefail

VENV="${REFERENCE_VENV:-$HOME/.cache/troupe-reference-venv}"
PYTHON_BIN="${REFERENCE_PYTHON:-python3}"
JOBS="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"

# Pinned versions (what the committed fixtures were produced with).
LLAMA_CPP_PYTHON_VERSION=0.3.36
NUMPY_VERSION=2.4.6
TORCH_VERSION=2.15.0
TRANSFORMERS_VERSION=5.24.0
SENTENCE_TRANSFORMERS_VERSION=6.2.0

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating venv at $VENV"
  "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install --disable-pip-version-check --progress-bar off "$@"; }

# installed NAME VERSION -> exit 0 if that exact version is installed in the venv
installed() {
  "$PY" - "$1" "$2" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
except PackageNotFoundError:
    sys.exit(1)
PYEOF
}

if ! installed numpy "$NUMPY_VERSION"; then
  pip_install "numpy==$NUMPY_VERSION"
fi

if ! installed torch "$TORCH_VERSION"; then
  pip_install "torch==$TORCH_VERSION" "numpy==$NUMPY_VERSION"
fi

if ! installed sentence-transformers "$SENTENCE_TRANSFORMERS_VERSION" \
   || ! installed transformers "$TRANSFORMERS_VERSION"; then
  pip_install "sentence-transformers==$SENTENCE_TRANSFORMERS_VERSION" \
              "transformers==$TRANSFORMERS_VERSION" \
              "torch==$TORCH_VERSION" "numpy==$NUMPY_VERSION"
fi

if ! installed llama_cpp_python "$LLAMA_CPP_PYTHON_VERSION"; then
  echo "building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION from source ($JOBS jobs)"
  CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
  CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF" \
    pip_install --no-cache-dir --no-binary llama-cpp-python \
      "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" "numpy==$NUMPY_VERSION"
fi

# Sanity checks.
HF_HUB_OFFLINE=1 "$PY" - <<'PYEOF'
import importlib.metadata as md, re, subprocess
import torch, llama_cpp, sentence_transformers
x = torch.randn(64, 64)
assert torch.isfinite(x @ x).all()
info = llama_cpp.llama_print_system_info().decode()
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())
print("sentence-transformers", sentence_transformers.__version__)
print("llama-cpp-python", llama_cpp.__version__)
print("llama.cpp system info:", info.strip())
cpu_flags = open("/proc/cpuinfo").read()
for feat, flag in (("AVX2", "avx2"), ("FMA", "fma")):
    if re.search(r"\b%s\b" % flag, cpu_flags) and not re.search(r"\b%s = 1\b" % feat, info):
        raise SystemExit(f"llama.cpp was built without {feat} although the CPU has it")
PYEOF
echo "reference venv ready: $VENV"
