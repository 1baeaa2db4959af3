#!/usr/bin/env bash
# Builds .venv with the reference implementations (torch, transformers, peft) from the machine's local
# wheel index. Idempotent: an existing venv that imports them is kept. Pins are exact (ENVIRONMENT.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch, transformers, peft, safetensors, numpy, PIL, jinja2' 2>/dev/null; then
  echo "reference venv ready: .venv"
  exit 0
fi
"$PY" -m venv .venv
# --retries 0 --timeout 2: the public index is unreachable here; without them pip retries it for minutes.
.venv/bin/pip install -q --retries 0 --timeout 2 torch==2.13.0 transformers==5.17.0 peft==0.21.0 safetensors numpy pillow jinja2 2>&1 \
  | { grep -v 'is ignored: it is neither a file nor a directory' || true; }  # the index lists paths this machine lacks; harmless
.venv/bin/python -c 'import torch, transformers, peft; print("reference venv:", torch.__version__, transformers.__version__, peft.__version__)'
