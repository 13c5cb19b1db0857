#!/usr/bin/env bash
# Does the notebook's install resolve beside everything else Colab has? pip (Colab's own version) resolves, without
# installing anything, Colab's whole freeze plus `-c constraints.txt -e .[test]` and the notebook's torch pin, on
# Colab's Python, then lists what it would change. torch, torchvision, torchaudio and torchcodec (CUDA builds, several
# GB) are marked installed at Colab's versions by stub metadata instead of being fetched; the CUDA packages
# (nvidia-*, *-cu12, cuda-*, triton) are left out, and so is each sdist pip cannot even read the requirements of here
# (system libraries: cyipopt, GDAL, pycairo, PyGObject, rpy2; RAPIDS' libcu* are not on PyPI), found by trying.
# Needs a Python 3.13 (PYTHON313=...; pyenv's, where there is one) and PyPI; ~10 min, most of it pip reading metadata.
# A package some freeze package needs among those left out (an nvidia-* one) shows as changed: it was not in the list.
# Not run by CI: a check to repeat when the freeze copy or repotune's requirements change.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON313=${PYTHON313:-$(ls "$HOME"/.pyenv/versions/3.13*/bin/python3 2>/dev/null | tail -n 1)}
PYTHON313=${PYTHON313:-python3.13}
FREEZE=$(ls notebooks/colab/pip-freeze.gpu.*.txt | sort | tail -n 1)
WORK=${WORK:-$(mktemp -d)}
echo "check_freeze: $FREEZE on $("$PYTHON313" --version) in $WORK" >&2

"$PYTHON313" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "$(grep -E '^pip==' "$FREEZE")"
site=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for pin in $(grep -E '^(torch|torchvision|torchaudio|torchcodec)==' "$FREEZE"); do
  name=${pin%%==*} version=${pin##*==}
  mkdir -p "$site/$name-$version.dist-info"
  printf 'Metadata-Version: 2.1\nName: %s\nVersion: %s\n' "$name" "$version" > "$site/$name-$version.dist-info/METADATA"
  echo pip > "$site/$name-$version.dist-info/INSTALLER"
  : > "$site/$name-$version.dist-info/RECORD"
done
grep -E '^torch==' "$FREEZE" > "$WORK/keep-torch.txt"  # what the notebook writes
# the freeze less torch's and CUDA's packages, less what the constraints pin otherwise (the exceptions)
exceptions=$("$WORK/venv/bin/python" - "$FREEZE" notebooks/colab/constraints.txt <<'PY'
import re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pins = lambda path: {norm(n): (n, v) for n, v in (l.split("==", 1) for l in open(path).read().split() if "==" in l)}
colab, ours = pins(sys.argv[1]), pins(sys.argv[2])
print("|".join(re.escape(colab[n][0]) for n in colab.keys() & ours.keys() if colab[n][1] != ours[n][1]))
PY
)
grep '==' "$FREEZE" | grep -viE '^(torch|torchvision|torchaudio|torchcodec|triton)==|^nvidia-|-cu1[23]==|^cuda-|cuda12|^dask-cuda==|^numba-cuda==' \
  | grep -viE "^(cyipopt|GDAL|pycairo|PyGObject|rpy2|libcugraph-cu12|libcuvs-cu12${exceptions:+|$exceptions})==" > "$WORK/freeze.txt"

"$WORK/venv/bin/pip" install --dry-run --quiet --report "$WORK/report.json" -c "$WORK/keep-torch.txt" \
  -c notebooks/colab/constraints.txt -r "$WORK/freeze.txt" -e ".[test]"
"$WORK/venv/bin/python" - "$WORK/report.json" "$FREEZE" <<'EOF'
import json, re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
colab = {norm(n): v for n, v in (line.split("==", 1) for line in open(sys.argv[2]).read().split() if "==" in line)}
changed, added = [], []
for item in json.load(open(sys.argv[1]))["install"]:
    name, version = norm(item["metadata"]["name"]), item["metadata"]["version"]
    if name in colab and colab[name] != version:
        changed.append(f"{name} {colab[name]} -> {version}")
    elif name not in colab:
        added.append(f"{name}=={version}")
print("resolves. Colab's packages it would change:", ", ".join(changed) or "none")
print("it would add:", ", ".join(added))
EOF
