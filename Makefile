# zeroloss build. `make` builds every binary; `make test` runs every test tier
# against real local services; `make check` does the same under ASan+UBSan.
# Libraries are found with pkg-config; `make deps` installs what is missing.

PKGS := rdkafka libcurl jansson libmicrohttpd libsecp256k1 nettle gmp libsodium libpq uuid

CC      ?= cc
NPROC   := $(shell nproc 2>/dev/null || echo 2)
MODE    ?= release
BUILD   := build/$(MODE)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# -Wno-format-truncation: snprintf into a bounded buffer is how this code
# bounds strings on purpose; gcc's guess at a possible truncation is noise.
WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-truncation
DEFS    := -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L
ifeq ($(MODE),asan)
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
OPT     := -O2 -g
endif
CFLAGS  += $(WARN) $(DEFS) $(OPT) -Icommon -Itests $(PKG_CFLAGS) -MMD -MP
LDFLAGS += $(filter -fsanitize=%,$(OPT))
LDLIBS  += $(PKG_LIBS) -lpthread -lm

COMMON_SRC  := $(wildcard common/*.c)
COMMON_OBJ  := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
LIBZL       := $(BUILD)/libzl.a

# workers/<stage>/*.c -> bin/<stage>; tools/<name>.c -> bin/<name>
WORKERS     := $(patsubst workers/%/main.c,$(BUILD)/bin/%,$(wildcard workers/*/main.c))
TOOLS       := $(patsubst tools/%.c,$(BUILD)/bin/%,$(wildcard tools/*.c))
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
SVC_TESTS   := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/*.c))

.SECONDARY:
.PHONY: all deps test test-unit check fuzz bench contracts contracts-check demo up down status chaos clean

all: $(WORKERS) $(TOOLS) $(UNIT_TESTS) $(SVC_TESTS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBZL): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

# Static pattern rules, so each rule applies only to its own list: a stage
# links every workers/<stage>/*.c (a stage may split its main.c into files of
# its own), a tool its one tools/<name>.c.
$(TOOLS): $(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIBZL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

stage_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard workers/$(1)/*.c))
.SECONDEXPANSION:
$(WORKERS): $(BUILD)/bin/%: $$(call stage_objs,$$*) $(LIBZL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBZL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/c/%.o $(LIBZL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# Installs Debian packages, Kafka jars, npm tools and Kubo when missing; quick
# when all are present.
deps:
	@deploy/local/deps all

# Tests that need no service: fast iteration.
test-unit: all
	@tests/run-unit $(BUILD)

# Every tier: unit, then services up, smoke + integration, services down
# (also on failure).
test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@tests/run-all $(BUILD)

check: deps
	@$(MAKE) --no-print-directory -j$(NPROC) MODE=asan all
	@ZL_SANITIZER_PASS=1 tests/run-all build/asan
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

# libFuzzer targets: tests/fuzz/fuzz_<name>.c, linked with every common/
# source (clang; libFuzzer brings its own main). `make fuzz` runs each for
# FUZZ_SECONDS with its seed corpus tests/fuzz/corpus/<name>/ (new inputs go
# to build/fuzz/corpus/<name>, never into the repository).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 \
                $(DEFS) -Icommon $(PKG_CFLAGS)

build/fuzz/%: tests/fuzz/%.c $(COMMON_SRC) $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $< $(COMMON_SRC) -o $@ $(PKG_LIBS) -lpthread -lm

fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	  name=$$(basename $$t); seeds=tests/fuzz/corpus/$${name#fuzz_}; out=build/fuzz/corpus/$${name#fuzz_}; \
	  mkdir -p $$out; echo "== $$name for $(FUZZ_SECONDS)s"; \
	  if ! $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build/fuzz/ \
	       $$out $$( [ -d $$seeds ] && echo $$seeds ) > build/fuzz/$$name.log 2>&1; then \
	    tail -n 40 build/fuzz/$$name.log; echo "$$name FOUND A BUG (input saved under build/fuzz/)"; exit 1; fi; \
	  grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec' build/fuzz/$$name.log; \
	done

# The README's run command: every service, every stage, a few hundred
# deposits, live progress and a report (DEMO_ARGS="--keep" leaves it running).
demo: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@deploy/local/demo $(DEMO_ARGS)

# The pipeline kept running (deploy/local/stack, .local/stack): every stage,
# the sweeper and zl-admin under supervisord, which restarts what dies; then
# eval "$(deploy/local/stack env)" for zlctl and cast. The README's tour.
up: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@deploy/local/stack up

down:
	@deploy/local/stack down

status:
	@deploy/local/stack status

# Seeded fault schedules over the whole pipeline (tests/chaos/chaos.py).
# make chaos SCHEDULES=20 DEPOSITS=2000 [SEED=n] [DURATION_S=s] [CLUSTER=1] [SOLANA_DEPOSITS=n]
SCHEDULES ?= 1
# SOLANA_DEPOSITS=n: n USDT deposits on Solana per schedule too, with
# Solana's faults (needs solana-test-validator: deploy/local/deps solana).
SOLANA_DEPOSITS ?= 0
# CLUSTER=1: Kafka as a three-broker cluster, with its faults (--cluster).
CLUSTER ?=
DEPOSITS ?= 200
# A cluster's faults run one at a time and take ~140 s together (each broker
# restart ~20 s): a longer schedule keeps deposits flowing under all of them.
DURATION_S ?= $(if $(filter 1,$(CLUSTER)),150,60)
chaos: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@tests/chaos/chaos.py --schedules $(SCHEDULES) --deposits $(DEPOSITS) --duration-s $(DURATION_S) \
	  $(if $(SEED),--seed $(SEED)) $(if $(filter 1,$(CLUSTER)),--cluster) --solana-deposits $(SOLANA_DEPOSITS) \
	  --json .local/chaos-results.json

# Benchmarks; results go to bench/results/ (committed by hand, not by this).
bench: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@bench/run

contracts:
	@deploy/local/deps npm
	node deploy/contracts/build.js

contracts-check:
	node deploy/contracts/build.js --check

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
