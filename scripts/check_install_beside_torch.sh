#!/usr/bin/env bash
# `pip install .` next to a user's own torch keeps it: a fresh venv holding torch TORCH (default
# 2.13.0, one minor below constraints.txt's) and its torchvision TORCHVISION, then this project
# without constraints, then a few training steps. Minutes (a second torch); not part of .ci/run.
# Usage: make check-install   (or TORCH=2.13.0 TORCHVISION=0.28.0 bash scripts/check_install_beside_torch.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="${TORCH:-2.13.0}"
TORCHVISION="${TORCHVISION:-0.28.0}"
work=$(mktemp -d "${TMPDIR:-/tmp}/gansearch-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
pip="$work/venv/bin/pip"
"$pip" install -q "torch==$TORCH" "torchvision==$TORCHVISION"
before=$("$pip" freeze | grep -E '^(torch|torchvision)==')
"$pip" install -q .
after=$("$pip" freeze | grep -E '^(torch|torchvision)==')
"$pip" check
echo "before: $(echo $before)"
echo "after:  $(echo $after)"
[ "$before" = "$after" ] || { echo "check-install: pip replaced the user's torch" >&2; exit 1; }
(cd "$work" && venv/bin/gansearch train --preset mnist-mlp --steps 4 --set model.width=0.0625 \
    --set train.batch_size=16 --no-eval --quiet --out run)
echo "check-install: torch $TORCH and torchvision $TORCHVISION kept; training runs"
