# ropegpt / librope build. Every output goes under $(BUILD) (default build/).
#   make            library + tools        make test       build and run all tests
#   make lib        build/librope.{a,so}   make bench      build and run benchmarks
#   make demo       the RoPE comparison    make install    PREFIX=/usr/local DESTDIR=
#   make clean
# Switches: SAN=1 (ASan+UBSan, into build/san), NO_OMP=1, NO_BLAS=1, WERROR=1,
# CC=clang (use BUILD=build/clang to keep objects apart).

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build

WARN    := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes
CFLAGS  ?= -O2 -g
# -ffp-contract=off: no a*b+c fused into FMA behind our back. gcc's ISO mode
# already does this; clang's default fuses within an expression, which gave
# the AVX-512 copies of the elementwise loops (GELU, SwiGLU, cross-entropy)
# other bits than their portable twins.
CFLAGS  += -std=c11 -ffp-contract=off $(WARN) -fPIC -Iinclude -Isrc -MMD -MP
LDLIBS  += -lm
ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif
ifeq ($(SAN),1)
BUILD   := build/san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# ---- probes: optional features, each found by compiling a tiny program ----
probe = $(shell printf '$(2)' | $(CC) -x c - -o /dev/null $(1) >/dev/null 2>&1 && echo yes)

ifneq ($(NO_OMP),1)
HAVE_OMP := $(call probe,-fopenmp,\043include <omp.h>\nint main(void){return omp_get_max_threads()<0;}\n)
endif
ifeq ($(HAVE_OMP),yes)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
else
CFLAGS  += -Wno-unknown-pragmas
endif

# gcc's -O2 vectorises only loops that need no runtime alias check and no
# remainder loop (the "very cheap" cost model): LayerNorm's normalise loop,
# the residual add and the bias sums ran scalar. The dynamic model vectorises
# them; plain vectorisation never reorders a float sum, so the bits do not
# change. clang vectorises such loops at -O2 and has no such flag.
HAVE_VECT_COST := $(call probe,-fvect-cost-model=dynamic,int main(void){return 0;}\n)
ifeq ($(HAVE_VECT_COST),yes)
CFLAGS  += -fvect-cost-model=dynamic
endif

ifneq ($(NO_BLAS),1)
BLAS_INC := $(firstword $(wildcard /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/aarch64-linux-gnu/openblas-pthread /usr/include/openblas))
BLAS_CFLAGS := $(if $(BLAS_INC),-I$(BLAS_INC))
comma := ,
HAVE_BLAS := $(call probe,$(BLAS_CFLAGS) -lopenblas,\043include <cblas.h>\nint main(void){float a=1$(comma)b=1$(comma)c=0;cblas_sgemm(CblasRowMajor$(comma)CblasNoTrans$(comma)CblasNoTrans$(comma)1$(comma)1$(comma)1$(comma)1.f$(comma)&a$(comma)1$(comma)&b$(comma)1$(comma)0.f$(comma)&c$(comma)1);return c!=1.f;}\n)
endif
ifeq ($(HAVE_BLAS),yes)
APP_CFLAGS += $(BLAS_CFLAGS) -DROPEGPT_HAVE_BLAS=1
APP_LIBS   += -lopenblas
endif
# Every object is rebuilt when OpenBLAS appears or goes in the same BUILD
# folder (its define is in the objects' flags, and a stale object would
# silently leave the BLAS backend out): they depend on a state file
# rewritten only when its content changes.
BLAS_STATE := $(if $(filter yes,$(HAVE_BLAS)),on $(BLAS_CFLAGS),off)
BLAS_STATE_FILE := $(BUILD)/blas.state
_blas_state := $(shell mkdir -p $(BUILD) && (echo '$(BLAS_STATE)' | cmp -s - $(BLAS_STATE_FILE) || echo '$(BLAS_STATE)' > $(BLAS_STATE_FILE)))

ARCH := $(shell $(CC) -dumpmachine)
ifneq ($(findstring x86_64,$(ARCH)),)
SIMD_AVX2   := -mavx2 -mfma
SIMD_AVX512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2
endif

# ---- sources ----
ROPE_SRC  := $(sort $(wildcard src/rope/*.c))
APP_SRC   := $(sort $(wildcard src/nn/*.c src/model/*.c src/data/*.c src/util/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
ROPE_OBJ  := $(call obj,$(ROPE_SRC))
APP_OBJ   := $(call obj,$(APP_SRC))
TEST_OBJ  := $(call obj,$(TEST_SRC) tests/runner.c)
TOOLS     := $(patsubst tools/%.c,$(BUILD)/%,$(TOOL_SRC))
BENCHES   := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all lib test bench demo install uninstall clean config
# Keep objects that pattern rules chain through (tools/*.o), so relinks stay cheap.
.SECONDARY:
all: lib $(TOOLS) config
lib: $(BUILD)/librope.a $(BUILD)/librope.so

config:
	@echo "build: $(BUILD)  cc: $(CC)  openmp: $(or $(HAVE_OMP),no)  openblas: $(or $(HAVE_BLAS),no)  simd: $(if $(SIMD_AVX2),avx2+avx512,scalar only)"

$(BUILD)/obj/%.o: %.c $(BLAS_STATE_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(APP_CFLAGS) -c $< -o $@

# SIMD kernels get their ISA flags file by file; CPU detection picks at run time.
$(BUILD)/obj/%_avx2.o: %_avx2.c $(BLAS_STATE_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(APP_CFLAGS) $(SIMD_AVX2) -c $< -o $@
$(BUILD)/obj/%_avx512.o: %_avx512.c $(BLAS_STATE_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(APP_CFLAGS) $(SIMD_AVX512) -c $< -o $@

$(BUILD)/librope.a: $(ROPE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/librope.so: $(ROPE_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,librope.so.0 -o $@ $^ -lm

$(BUILD)/%: $(BUILD)/obj/tools/%.o $(APP_OBJ) $(BUILD)/librope.a
	$(CC) $(LDFLAGS) -o $@ $< $(APP_OBJ) $(BUILD)/librope.a $(APP_LIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(APP_OBJ) $(BUILD)/librope.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(APP_OBJ) $(BUILD)/librope.a $(APP_LIBS) $(LDLIBS)

# ---- tests: every TEST(name) line in tests/test_*.c becomes a table entry ----
$(BUILD)/tests/test_list.h: $(TEST_SRC)
	@mkdir -p $(dir $@)
	@sed -n 's/^TEST(\([A-Za-z0-9_]*\)).*/X(\1)/p' $(TEST_SRC) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/tests/runner.o: tests/runner.c $(BUILD)/tests/test_list.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(BUILD)/tests -Itests -c $< -o $@
$(BUILD)/test_runner: $(TEST_OBJ) $(APP_OBJ) $(BUILD)/librope.a
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(APP_OBJ) $(BUILD)/librope.a $(APP_LIBS) $(LDLIBS)

test: all $(BUILD)/test_runner
	ROPEGPT_BIN=$(BUILD)/ropegpt $(BUILD)/test_runner $(T)

bench: all $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

demo: all
	$(BUILD)/ropegpt compare --pe none,learned,rope --seeds 1 --steps 500 --eval-every 50 --eval-batches 10 --out runs/demo

# ---- install ----
install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/rope.h $(DESTDIR)$(PREFIX)/include/rope.h
	install -m 644 $(BUILD)/librope.a $(DESTDIR)$(PREFIX)/lib/librope.a
	install -m 755 $(BUILD)/librope.so $(DESTDIR)$(PREFIX)/lib/librope.so.0
	ln -sf librope.so.0 $(DESTDIR)$(PREFIX)/lib/librope.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^#define ROPE_VERSION_STRING "\(.*\)"/\1/p' include/rope.h)|' \
	    -e 's|@OMP@|$(if $(HAVE_OMP),-fopenmp)|' rope.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/rope.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/rope.h $(DESTDIR)$(PREFIX)/lib/librope.a \
	      $(DESTDIR)$(PREFIX)/lib/librope.so $(DESTDIR)$(PREFIX)/lib/librope.so.0 \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/rope.pc

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Optional extra rule files (fuzzing, MPI, ...), one job each.
-include $(sort $(wildcard mk/*.mk))
