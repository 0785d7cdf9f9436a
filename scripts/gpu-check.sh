#!/usr/bin/env bash
# GPU check for the trainer (issue 4): on a GPU host, set up the Vulkan loader + GLVND from carried
# Debian packages, then run the default training job on every TensorFlow.js backend that loads and
# print samples/s and losses per backend (one JSON line per configuration). Budget: < 4 minutes.
#
#   here (Debian, network):  bash scripts/gpu-check.sh --prepare   # .gpu-debs/ + .gpu-pack/ (node, pruned node_modules, dist)
#   on the GPU host:         bash scripts/gpu-check.sh             # carry .gpu-debs and .gpu-pack
#
# Why the pack: the H100 hosts have no Node.js and no Vulkan loader, and a carried tree must stay
# under 64 MiB, so node is xz-compressed and node_modules keeps only the Node bundles, the WASM
# binaries and Dawn's linux-x64 build (see ../shared/gpu/README.md), plus the native addon.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=.gpu-pack

if [ "${1:-}" = "--prepare" ]; then
  npx tsc -p tsconfig.json >/dev/null || true   # emits even with others' type errors
  bash ../shared/gpu/fetch-vulkan-debs.sh .gpu-debs
  rm -rf "$PACK" && mkdir -p "$PACK/node_modules"
  cp "$(command -v node)" "$PACK/node" && strip "$PACK/node" && xz -T2 -6 "$PACK/node"
  cp -r dist "$PACK/dist" && cp package.json "$PACK/"
  # The train bench's PyTorch peer: where the host has no torch it then says so, not "no such file".
  mkdir -p "$PACK/scripts/bench" && cp scripts/bench/pytorch-train.py "$PACK/scripts/bench/"
  # The addon's fused C++ step (the 'native' backend): the best CPU backend the GPU has to beat.
  mkdir -p "$PACK/build/Release" && cp build/Release/icosfl_native.node "$PACK/build/Release/"
  mkdir -p "$PACK/data/nab-server-metrics"
  cp ../shared/data/nab-server-metrics/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv \
     ../shared/data/nab-server-metrics/realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv "$PACK/data/nab-server-metrics/"
  for m in @tensorflow/tfjs-core @tensorflow/tfjs-layers @tensorflow/tfjs-backend-cpu @tensorflow/tfjs-backend-wasm \
           webgpu zod long seedrandom; do
    mkdir -p "$PACK/node_modules/$m" && cp -r "node_modules/$m/." "$PACK/node_modules/$m/"
  done
  # Only what Node loads: each tfjs package's *.node.js bundle (its "main") and the .wasm files.
  find "$PACK/node_modules/@tensorflow" -path '*/dist/*' -type f ! -name '*.node.js' ! -name '*.wasm' -delete
  find "$PACK/node_modules/@tensorflow" -type d \( -name src -o -name scripts \) -prune -exec rm -rf {} +
  find "$PACK/node_modules/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
  rm -rf "$PACK/node_modules/webgpu/build" "$PACK/node_modules/webgpu/node_modules"
  du -sh "$PACK" .gpu-debs
  exit 0
fi

# On the GPU host. Unpack the loader libraries only where an NVIDIA driver is present.
if command -v nvidia-smi >/dev/null 2>&1 && [ -d .gpu-debs ]; then
  for f in .gpu-debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
  export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
fi

NODE=$(command -v node || true)
ROOT=.
if [ -f "$PACK/node.xz" ]; then
  xz -dkf "$PACK/node.xz" && chmod +x "$PACK/node" && NODE=$PACK/node
  ROOT=$PACK
  export BENCH_DATA=$PACK/data
fi
[ -n "$NODE" ] || { echo "gpu-check: no node binary (run --prepare where Node is installed and carry .gpu-pack)" >&2; exit 69; }
[ -f "$ROOT/dist/test/bench/train.bench.js" ] || { echo "gpu-check: $ROOT/dist is not built (npx tsc -p tsconfig.json)" >&2; exit 69; }

run() { # bench, label, env...
  local bench=$1 label=$2; shift 2
  echo "== $label" >&2
  env "$@" timeout 100 "$NODE" "$ROOT/dist/test/bench/$bench.bench.js" 2> >(grep -v '^\s*at ' >&2) || echo "{\"label\":\"$label\",\"failed\":$?}"
}
# 1) the default job (what `backend = "auto"` calibrates on), 2) the same at batch 4096, 3) a wider
# MLP (512 hidden units), where arithmetic starts to matter. The plain-JS backend is skipped for
# the larger ones (minutes, and it is never the fastest). 4) Where the fused step's time goes
# (per-call fixed cost, per-step cost, each kernel alone) beside the native step.
run train default BENCH_EPOCHS=3
run train mlp-batch-4096 BENCH_EPOCHS=3 BENCH_BATCH=4096 BENCH_SKIP=cpu
run train mlp-hidden-512 BENCH_EPOCHS=3 BENCH_HIDDEN=512 BENCH_SKIP=cpu
run gpu-step gpu-step
