# hfc-eval: plain Makefile. Dependencies come from pkg-config:
#   fftw3f, libpng, libcjson, openblas (Debian: see README "Set up").
CC      ?= cc
PKGS    := fftw3f libcjson openblas
CFLAGS  ?= -O3 -march=x86-64-v3 -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Iinclude \
           $(shell pkg-config --cflags $(PKGS)) -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread -lm
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3

LIB_SRC := src/util.c src/data_cifar.c src/split_fft.c src/model_load.c \
           src/engine_ops.c src/engine_run.c src/evaluate.c src/report_json.c
LIB_OBJ := $(LIB_SRC:src/%.c=build/%.o)
TEST_BINS := build/test_split build/test_engine

all: build/hfc-eval

build/%.o: src/%.c | build
	$(CC) $(CFLAGS) -c $< -o $@

build/tests/%.o: tests/%.c | build
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -Isrc -c $< -o $@

build/hfc-eval: build/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build/test_%: build/tests/test_%.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build:
	@mkdir -p build

check: all $(TEST_BINS)
	PYTHON=$(PYTHON) bash tests/run.sh

bench: all
	PYTHON=$(PYTHON) bash bench/run

install: all
	install -D -m 755 build/hfc-eval $(DESTDIR)$(PREFIX)/bin/hfc-eval

clean:
	rm -rf build

.PHONY: all check bench install clean
-include $(wildcard build/*.d build/tests/*.d)

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

.PHONY: data demo
