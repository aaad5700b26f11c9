# hfc-eval: plain Makefile. Dependencies come from pkg-config:
#   fftw3f, libpng, libjpeg, zlib, libcjson, openblas (Debian: see README "Set up").
CC      ?= cc
PKGS    := fftw3f libpng libjpeg zlib libcjson openblas
CFLAGS  ?= -O3 -march=x86-64-v3 -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Iinclude -Isrc \
           $(shell pkg-config --cflags $(PKGS)) -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread -lm
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3

# Every library source: src/FLOOR/*.c (docs/architecture.md), main.c aside.
LIB_SRC := $(filter-out src/cli/main.c,$(sort $(wildcard src/*/*.c)))
LIB_OBJ := $(LIB_SRC:src/%.c=build/%.o)
TEST_BINS := build/test_split build/test_engine build/test_png build/test_grad build/test_id build/test_flips \
             build/test_sources \
             build/test_sha
# The same code built with AddressSanitizer + UndefinedBehaviorSanitizer;
# make check runs the unit tests and a small end-to-end run with these.
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_OBJ   := $(LIB_SRC:src/%.c=build/asan/%.o)
SAN_BINS  := build/asan/hfc-eval build/asan/test_split build/asan/test_engine build/asan/test_png \
             build/asan/test_grad build/asan/test_sha

all: build/hfc-eval

# The split's v8 arithmetic (src/data/split.c) is written as a += b * c: let the
# compiler make those fused multiply-adds (ISO C mode would not).
build/data/split.o build/asan/data/split.o: CFLAGS += -ffp-contract=fast
# The activations' loops (src/layers/activation.c unary_loop and
# dact_loop) clamp with comparisons; without traps to keep, the compiler may
# turn those into vector selects. Values are unchanged.
build/kernels/ops.o build/asan/kernels/ops.o build/layers/activation.o build/asan/layers/activation.o: \
    CFLAGS += -fno-trapping-math

build/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/tests/%.o: tests/%.c | build
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -Isrc -c $< -o $@

build/asan/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

build/asan/test_%.o: tests/test_%.c
	@mkdir -p build/asan
	$(CC) $(CFLAGS) $(SAN_FLAGS) -Isrc -c $< -o $@

build/asan/hfc-eval: build/asan/cli/main.o $(SAN_OBJ)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

build/asan/test_%: build/asan/test_%.o $(SAN_OBJ)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

asan: $(SAN_BINS)

# libFuzzer harnesses (clang): make fuzz; tests/fuzz/run.sh SECONDS runs them.
FUZZ_BINS := build/fuzz/fuzz_model build/fuzz/fuzz_cifar build/fuzz/fuzz_args build/fuzz/fuzz_npy \
             build/fuzz/fuzz_idx build/fuzz/fuzz_image build/fuzz/fuzz_npz
# The library is compiled once for all harnesses (instrumented, not linked
# with libFuzzer's main), each harness then only links.
FUZZ_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -Iinclude -Isrc \
               -fno-sanitize-recover=undefined $(shell pkg-config --cflags $(PKGS))
FUZZ_OBJ := $(LIB_SRC:src/%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	@mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $(filter %.c %.o,$^) -o $@ $(LDLIBS)

fuzz: $(FUZZ_BINS)

build/hfc-eval: build/cli/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

build/bench_parts: bench/bench_parts.c $(LIB_OBJ)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

# bench/run --isa avx2: ONNX Runtime shown a CPU without AVX-512 (bench/avx2_only.c)
build/avx2_only.so: bench/avx2_only.c | build
	$(CC) -O2 -g -Wall -Wextra -shared -fPIC $< -o $@

build/test_%: build/tests/test_%.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

build:
	@mkdir -p build

check: all $(TEST_BINS) $(SAN_BINS)
	PYTHON=$(PYTHON) bash tests/run.sh

bench: all build/bench_parts build/avx2_only.so
	PYTHON=$(PYTHON) bash bench/run

install: all
	install -D -m 755 build/hfc-eval $(DESTDIR)$(PREFIX)/bin/hfc-eval

clean:
	rm -rf build

.PHONY: all check bench asan fuzz install clean
-include $(wildcard build/*.d build/*/*.d build/asan/*/*.d)

# --- data and demo ------------------------------------------------------
CIFAR_URL := https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
DATA_DIR  := $(or $(HFC_DATA),$(wildcard ../shared/cifar-10-batches-bin),data/cifar-10-batches-bin)

data: data/cifar-10-batches-bin/test_batch.bin

data/cifar-10-batches-bin/test_batch.bin:
	curl -fL --retry 3 -o data/cifar-10-binary.tar.gz $(CIFAR_URL)
	tar -xzf data/cifar-10-binary.tar.gz -C data
	cd data && sha256sum -c cifar-10-batches-bin.sha256
	rm -f data/cifar-10-binary.tar.gz

demo: all
	@if [ ! -f "$(DATA_DIR)/test_batch.bin" ]; then \
	  echo "CIFAR-10 not found at $(DATA_DIR)."; \
	  echo "Get it with:  make data   (downloads $(CIFAR_URL))"; \
	  echo "or set HFC_DATA to a directory holding test_batch.bin."; exit 2; fi
	./build/hfc-eval compare --data "$(DATA_DIR)" --radius 4,8,12,16 \
	  data/models/preact20-bn.bin data/models/preact20-nobn.bin

# docs/pictures: the README's examples. Grids and spectra come from generated
# test-card images (the repository never carries CIFAR-10 pixels); kernels
# need no data; the accuracy plot needs the real test set.
MODELS := data/models/preact20-bn.bin data/models/preact20-nobn.bin \
          data/models/vgg-bn.bin data/models/vgg-nobn.bin
ADV_MODELS := data/models/preact20-bn-adv.bin data/models/preact20-nobn-adv.bin
pictures: all
	@mkdir -p docs/pictures
	$(PYTHON) tools/testcard.py build/testcard.cifar
	rm -rf build/pictures && ./build/hfc-eval --data build/testcard.cifar --radius 8 \
	  --png build/pictures --png-images 0,1,2,5,6 $(MODELS) >/dev/null
	cp build/pictures/*-kernels.png docs/pictures/
	cp build/pictures/preact20-bn-r8-grid.png docs/pictures/testcard-preact20-bn-r8-grid.png
	cp build/pictures/spectrum-r8.png docs/pictures/testcard-spectrum-r8.png
	rm -rf build/pictures-adv && ./build/hfc-eval --data build/testcard.cifar --radius 8 \
	  --png build/pictures-adv $(ADV_MODELS) >/dev/null
	cp build/pictures-adv/*-kernels.png docs/pictures/
	@if [ ! -f "$(DATA_DIR)/test_batch.bin" ]; then \
	  echo "CIFAR-10 not found at $(DATA_DIR): accuracy-vs-radius.png not remade (make data)"; \
	else \
	  rm -rf build/pictures-real && ./build/hfc-eval compare --data "$(DATA_DIR)" \
	    --radius 4,8,12,16 --png build/pictures-real --png-images 0 $(MODELS) && \
	  cp build/pictures-real/accuracy-vs-radius.png docs/pictures/; fi

.PHONY: data demo pictures
