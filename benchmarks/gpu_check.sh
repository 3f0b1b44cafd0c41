#!/usr/bin/env bash
# The GPU checks, in one go, on a machine with CUDA (run from the repository root):
#   bash benchmarks/gpu_check.sh            results in gpu-results/ (or $OUT)
# 1. benchmarks/featurevis.py --device cuda  batched feature visualization against lucent's
#    render_vis per unit (goal: ratio >= 5)
# 2. benchmarks/exemplar_scan.py --device cuda  the scan (pinned memory, DataLoader workers)
# 3. crowdkit mis --device cuda on the offline demo study, with the GPU's embedding batches
#    (and the MIS table), then the same on the CPU to compare
# Each step's JSON or output goes to its own file; a failing step does not stop the others.
set -u
PY=${PY:-.venv/bin/python}
CROWDKIT=${CROWDKIT:-.venv/bin/crowdkit}
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
"$PY" -c "import torch; print(torch.cuda.get_device_name(0))" > "$OUT/device.txt" 2>&1 \
  || { echo "no CUDA device: nothing to measure" >&2; exit 1; }
"$PY" benchmarks/featurevis.py --device cuda > "$OUT/featurevis.json" 2> "$OUT/featurevis.err"
"$PY" benchmarks/exemplar_scan.py --device cuda > "$OUT/exemplar_scan.json" \
  2> "$OUT/exemplar_scan.err"
"$CROWDKIT" demo "$OUT/demo" --small --port 0 --no-progress > "$OUT/demo.log" 2>&1
( time "$CROWDKIT" mis "$OUT/demo" --device cuda --all-units 20 --no-progress ) \
  > "$OUT/mis_cuda.log" 2>&1
cp "$OUT/demo/data/mis.csv" "$OUT/mis_cuda.csv" 2>/dev/null
rm -rf "$OUT/demo/.cache/mis"
( time "$CROWDKIT" mis "$OUT/demo" --device cpu --all-units 20 --no-progress ) \
  > "$OUT/mis_cpu.log" 2>&1
cp "$OUT/demo/data/mis.csv" "$OUT/mis_cpu.csv" 2>/dev/null
rm -rf "$OUT/demo/localturk-files" "$OUT/demo/stimuli" "$OUT/demo/design"
tail -n 3 "$OUT"/*.json "$OUT"/mis_*.log
