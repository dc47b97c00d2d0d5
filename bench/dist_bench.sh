#!/usr/bin/env bash
# dist_bench.sh — data-parallel scaling of `ropegpt train`'s step (issue 6):
# tokens/s of the GPT-2 124M shape (L12 NH12 C768 V50304 T64, B4 per rank)
# on 1 rank x 1 thread and on 2 ranks x 1 thread (mpirun, same machine), and
# the scaling efficiency tok_s / (2 * tok_s_1rank). Both runs go through the
# real path (train_dist_step: bucketed all-reduce + AdamW). Prints
#   dist_bench ranks=2 threads_per_rank=1 tok_s=<x> tok_s_1rank=<y> efficiency=<x/(2y)>
# Usage: bench/dist_bench.sh [BUILD folder, default build] [steps, default 3]
# Needs ~2.5 GB of memory per rank and 2 free cores for a fair figure.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-3}
make -s BUILD="$build" "$build/bench/dist_bench" >/dev/null
bin="$build/bench/dist_bench"
# (nproc before the export: GNU nproc honours OMP_NUM_THREADS)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
out1=$("$bin" --run --steps "$steps")
echo "$out1"
out2=$(mpirun --oversubscribe --allow-run-as-root -np 2 "$bin" --run --steps "$steps")
echo "$out2"
one=$(echo "$out1" | sed -n 's/.*tok_s=\([0-9.]*\).*/\1/p')
two=$(echo "$out2" | sed -n 's/.*tok_s=\([0-9.]*\).*/\1/p')
[ -n "$one" ] && [ -n "$two" ] || { echo "dist_bench: a run failed" >&2; exit 1; }
awk -v x="$two" -v y="$one" 'BEGIN { printf "dist_bench ranks=2 threads_per_rank=1 tok_s=%.1f tok_s_1rank=%.1f efficiency=%.3f\n", x, y, x / (2 * y) }'
