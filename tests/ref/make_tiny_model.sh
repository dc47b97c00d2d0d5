#!/bin/sh
# make_tiny_model.sh — regenerates the two fixtures of the generate golden
# test (tests/test_generate.c: generate_cli_greedy_golden):
#   tests/ref/tiny_rope.bin         a 2-layer, 16-channel RoPE GPT (context 32)
#                                    trained by `ropegpt train` for 1000 steps
#   tests/ref/tiny_rope_greedy.txt  its greedy continuation of "ROMEO:"
# Run from the repository root after `make`; ROPEGPT_BIN picks the binary.
# Rerun whenever the checkpoint format or the model's arithmetic changes on
# purpose, and commit both files together (the model is ~130 KB).
set -eu
BIN=${ROPEGPT_BIN:-build/ropegpt}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$BIN" train --pe rope --layers 2 --heads 2 --dim 16 --ctx 32 --batch 16 --steps 1000 \
    --warmup 50 --lr 1e-2 --min-lr 1e-3 --eval-every 500 --eval-batches 2 --threads 1 --seed 7 \
    --quiet --out "$TMP/run"
cp "$TMP/run/model.bin" tests/ref/tiny_rope.bin
"$BIN" generate --model tests/ref/tiny_rope.bin --prompt "ROMEO:" --tokens 200 --temperature 0 \
    --threads 1 > tests/ref/tiny_rope_greedy.txt
ls -l tests/ref/tiny_rope.bin tests/ref/tiny_rope_greedy.txt
