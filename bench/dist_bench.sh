#!/usr/bin/env bash
# dist_bench.sh — data-parallel scaling of `ropegpt train`'s step (issue 6):
# tokens/s of the GPT-2 124M shape (L12 NH12 C768 V50304 T64, B4 per rank)
# on 1 rank x 1 thread and on 2 ranks x 1 thread (mpirun, same machine), and
# the scaling efficiency tok_s / (2 * tok_s_1rank). Every run goes through
# the trainer's path (bench/dist_bench.c). Two jobs of 2 ranks, each with
# --solo: before every data-parallel step one rank (they take turns) takes
# one single-process step of a model of its own while the other sleeps, so
# the 1-rank figure is
# measured in the same minutes as the 2-rank one (this host's speed drifts
# by 20-30% within minutes; separate jobs turned that into the efficiency).
#   job 1: the default (all-reduce in buckets overlapping the backward);
#   job 2: --zero 1 (AdamW sharded: each rank updates half the parameters,
#          then an all-gather).
# Rank 0's lines of each job, then the summary lines, the first one the
# issue's figure (medians over the steps; pair_eff = median over the steps
# of solo step time / 2-rank step time, with its quartiles):
#   dist_bench ranks=2 threads_per_rank=1 tok_s=<x> tok_s_1rank=<y> efficiency=<x/(2y)> pair_eff=.. q1=.. q3=..
#   dist_bench ranks=2 threads_per_rank=1 zero=1 tok_s=... tok_s_1rank=... efficiency=... pair_eff=...
# Usage: bench/dist_bench.sh [BUILD folder, default build] [steps, default 8]
# Env MPIRUN_ARGS: extra mpirun flags (e.g. "--mca btl_vader_single_copy_mechanism none"
# in a container without ptrace rights). Needs ~2.5 GB of memory per rank
# (5 GB with --solo, each rank holding a solo model too) and 2 otherwise idle
# cores for a fair figure.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-8}
make -s BUILD="$build" "$build/bench/dist_bench" >/dev/null
bin="$build/bench/dist_bench"
# (nproc before the export: GNU nproc honours OMP_NUM_THREADS)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mpi() { mpirun --oversubscribe --allow-run-as-root ${MPIRUN_ARGS:-} -np 2 "$bin" --run --solo --steps "$steps" "$@"; }
field() { echo "$2" | grep "$3" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
out1=$(mpi); echo "$out1"
out2=$(mpi --zero 1); echo "$out2"
line() {   # $1 label, $2 job output
    local x y e q1 q3
    x=$(field tok_s "$2" 'ranks=2 ') y=$(field tok_s "$2" 'solo=1')
    e=$(field efficiency "$2" dist_bench_pairs) q1=$(field q1 "$2" dist_bench_pairs) q3=$(field q3 "$2" dist_bench_pairs)
    [ -n "$x" ] && [ -n "$y" ] && [ -n "$e" ] || { echo "dist_bench: a run failed" >&2; exit 1; }
    awk -v x="$x" -v y="$y" -v q="$1" -v e="$e" -v a="$q1" -v b="$q3" 'BEGIN {
        printf "dist_bench ranks=2 threads_per_rank=1 %stok_s=%.1f tok_s_1rank=%.1f efficiency=%.3f pair_eff=%s q1=%s q3=%s\n",
               q, x, y, x / (2 * y), e, a, b }'
}
line "" "$out1"
line "zero=1 " "$out2"
