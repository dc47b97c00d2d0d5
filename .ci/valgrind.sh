#!/usr/bin/env bash
# valgrind.sh — a short train + sample + generate run (GPT checkpoint, then a
# llama2.c model with its tokenizer) under valgrind memcheck: any invalid
# read/write, use of uninitialised memory or definite/possible leak fails it.
# The build is plain scalar (NO_OMP=1 NO_BLAS=1): the OpenMP and OpenBLAS
# thread pools keep memory until exit by design, which memcheck would report
# as possible leaks that are not ours.
# Usage: .ci/valgrind.sh   (from anywhere; needs valgrind; ~1 min)
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/valgrind
make -s -j"$(nproc)" NO_OMP=1 NO_BLAS=1 BUILD="$B" "$B/ropegpt" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 50000 data/tinyshakespeare.txt > "$work/data.txt"
vg() {
    echo "== valgrind ropegpt $*"
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible \
        --track-origins=yes "$B/ropegpt" "$@" >"$work/out" 2>"$work/err" || {
        echo "valgrind: failed (exit $?):"; cat "$work/err"; exit 1; }
}
tiny=(--layers 1 --dim 16 --heads 2 --ctx 16 --batch 2 --eval-every 2 --eval-batches 1 --threads 1 --quiet)
vg train "${tiny[@]}" --pe rope --steps 3 --save-every 1 --stop-after 2 --data "$work/data.txt" --out "$work/run"
vg train --resume "$work/run" --quiet
vg sample --model "$work/run" --tokens 8 --prompt "ROMEO:"
vg generate --model "$work/run" --tokens 8 --prompt "ROMEO:" --rope-scaling yarn --ctx 32
vg train "${tiny[@]}" --pe learned --steps 2 --data "$work/data.txt" --out "$work/learned"
vg generate --model "$work/learned" --tokens 4 --prompt "A"
vg train --arch llama --layers 1 --heads 2 --kv-heads 1 --dim 8 --ctx 16 --batch 2 --eval-every 2 \
    --eval-batches 1 --threads 1 --quiet --steps 3 --stop-after 2 --data "$work/data.txt" --out "$work/llama"
vg train --resume "$work/llama" --quiet
vg export --random tiny --out "$work/l.bin" --tokenizer-out "$work/tok.bin"
vg generate --model "$work/l.bin" --tokenizer "$work/tok.bin" --tokens 4 --prompt "Once"
# Bad input must be clean too: a refused checkpoint frees what it read.
head -c 1000 "$work/run/model.bin" > "$work/trunc.bin"
echo "== valgrind ropegpt sample --model <truncated> (exit 2 expected)"
set +e
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible \
    "$B/ropegpt" sample --model "$work/trunc.bin" >/dev/null 2>"$work/err"
rc=$?
set -e
if [ "$rc" -ne 2 ]; then echo "valgrind: expected exit 2, got $rc:"; cat "$work/err"; exit 1; fi
echo "valgrind: clean"
