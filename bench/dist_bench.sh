#!/usr/bin/env bash
# dist_bench.sh — data-parallel scaling of `ropegpt train`'s step (issue 6):
# tokens/s of the GPT-2 124M shape (L12 NH12 C768 V50304 T64, B4 per rank)
# on 1 rank x 1 thread and on 2 ranks x 1 thread (mpirun, same machine), and
# the scaling efficiency tok_s / (2 * tok_s_1rank). Every run goes through
# the trainer's path (bench/dist_bench.c). Three jobs, rank 0's lines each:
#   1 rank; 2 ranks alternating steps with the all-reduce overlapping the
#   backward (the default) and with one blocking all-reduce after backward
#   (the baseline, measured under the same load); 2 ranks with ZeRO-1 (AdamW
#   sharded: each rank updates half the parameters, then an all-gather).
# and then the summary lines, the first one the issue's figure:
#   dist_bench ranks=2 threads_per_rank=1 tok_s=<x> tok_s_1rank=<y> efficiency=<x/(2y)>
#   dist_bench ranks=2 threads_per_rank=1 overlap=0 tok_s=... tok_s_1rank=... efficiency=...
#   dist_bench ranks=2 threads_per_rank=1 zero=1 tok_s=... tok_s_1rank=... efficiency=...
# Usage: bench/dist_bench.sh [BUILD folder, default build] [steps, default 3]
# Env MPIRUN_ARGS: extra mpirun flags (e.g. "--mca btl_vader_single_copy_mechanism none"
# in a container without ptrace rights). Needs ~2.5 GB of memory per rank and
# 2 otherwise idle cores for a fair figure: a third busy process on 2 cores
# slows the 2-rank job much more than the 1-rank run, which leaves a core free.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-3}
make -s BUILD="$build" "$build/bench/dist_bench" >/dev/null
bin="$build/bench/dist_bench"
# (nproc before the export: GNU nproc honours OMP_NUM_THREADS)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mpi() { mpirun --oversubscribe --allow-run-as-root ${MPIRUN_ARGS:-} -np 2 "$bin" --run --steps "$steps" "$@"; }
tok() { echo "$1" | sed -n 's/.*tok_s=\([0-9.]*\).*/\1/p'; }
out1=$("$bin" --run --steps "$steps"); echo "$out1"
both=$(mpi --overlap 2); echo "$both"
out2=$(echo "$both" | grep 'overlap=1' || true)
out3=$(echo "$both" | grep 'overlap=0' || true)
out4=$(mpi --zero 1); echo "$out4"
one=$(tok "$out1")
[ -n "$one" ] && [ -n "$(tok "$out2")" ] && [ -n "$(tok "$out3")" ] && [ -n "$(tok "$out4")" ] ||
    { echo "dist_bench: a run failed" >&2; exit 1; }
line() { awk -v x="$2" -v y="$one" -v q="$1" 'BEGIN { printf "dist_bench ranks=2 threads_per_rank=1 %stok_s=%.1f tok_s_1rank=%.1f efficiency=%.3f\n", q, x, y, x / (2 * y) }'; }
line "" "$(tok "$out2")"
line "overlap=0 " "$(tok "$out3")"
line "zero=1 " "$(tok "$out4")"
