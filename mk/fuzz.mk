# mk/fuzz.mk — libFuzzer harnesses (tests/fuzz/fuzz_*.c), included by the Makefile.
#   make fuzz FUZZ_SECONDS=N   build every harness and run each for N seconds (default 60);
#                              prints each harness's execution count; non-zero exit on a crash
#   make fuzz-build            only build them (into build/fuzz/)
#   make fuzz-seeds            rewrite the committed seed corpora tests/fuzz/corpus/*/
#   FUZZ=name1,name2           run only these harnesses (e.g. FUZZ=checkpoint)
#   FUZZ_JOBS=N                N processes per harness (counts summed); use the cores you have
# Needs clang with libFuzzer (Debian: clang-14 + libclang-rt-14-dev). The harnesses are
# built without OpenMP and BLAS (plain scalar code paths, SIMD kernels still in) and with
# ASan + UBSan, every UB report fatal. Crashes go to build/fuzz/artifacts/<name>/; keep a
# fixed one's input under tests/fuzz/regressions/<name>/ so `make test` replays it.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
FUZZ_BUILD   := build/fuzz
FUZZ         ?=
fuzz_comma   := ,
FUZZ_IGNORE  := tests/fuzz/coverage_ignore.txt
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# -DROPEGPT_LIBFUZZER: each harness then defines LLVMFuzzerTestOneInput (no effect elsewhere).
FUZZ_CFLAGS  := -O1 -g -std=c11 $(WARN) -Wno-unknown-pragmas -Iinclude -Isrc -MMD -MP $(FUZZ_SAN) \
                -DROPEGPT_LIBFUZZER -fsanitize=fuzzer-no-link \
                -fsanitize-coverage-ignorelist=$(FUZZ_IGNORE)

FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(filter-out util,$(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC)))
FUZZ_BINS    := $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_NAMES))
FUZZ_LIBOBJ  := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(ROPE_SRC) $(APP_SRC))

.PHONY: fuzz fuzz-build fuzz-seeds

$(FUZZ_BUILD)/obj/%.o: %.c $(FUZZ_IGNORE)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/obj/%_avx2.o: %_avx2.c $(FUZZ_IGNORE)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(SIMD_AVX2) -c $< -o $@
$(FUZZ_BUILD)/obj/%_avx512.o: %_avx512.c $(FUZZ_IGNORE)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(SIMD_AVX512) -c $< -o $@

# A harness: its object (the .c includes tests/fuzz/fuzz_util.c) with libFuzzer's main.
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIBOBJ)
	@echo "link $@ (libFuzzer + ASan + UBSan)"
	@$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $< $(FUZZ_LIBOBJ) -lm -o $@

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) sh tests/fuzz/run.sh $(if $(FUZZ),$(subst $(fuzz_comma), ,$(FUZZ)),$(FUZZ_NAMES))

# The seed writer is built with the normal compiler and flags.
$(BUILD)/fuzz_seeds: $(BUILD)/obj/tests/fuzz/make_seeds.o $(APP_OBJ) $(BUILD)/librope.a
	$(CC) $(LDFLAGS) -o $@ $< $(APP_OBJ) $(BUILD)/librope.a $(APP_LIBS) $(LDLIBS)

fuzz-seeds: $(BUILD)/fuzz_seeds
	$(BUILD)/fuzz_seeds tests/fuzz/corpus

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
