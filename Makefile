# zeroloss build. `make` builds every binary; `make test` runs every test tier
# against real local services; `make check` does the same under ASan+UBSan.
# Libraries are found with pkg-config; `make deps` installs what is missing.

PKGS := rdkafka libcurl jansson libmicrohttpd libsecp256k1 nettle libpq uuid

CC      ?= cc
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

# workers/<stage>/main.c -> bin/<stage>; tools/<name>.c -> bin/<name>
WORKERS     := $(patsubst workers/%/main.c,$(BUILD)/bin/%,$(wildcard workers/*/main.c))
TOOLS       := $(patsubst tools/%.c,$(BUILD)/bin/%,$(wildcard tools/*.c))
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
SVC_TESTS   := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/*.c))

.SECONDARY:
.PHONY: all deps test test-unit check contracts contracts-check demo clean services-down

all: $(WORKERS) $(TOOLS) $(UNIT_TESTS) $(SVC_TESTS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBZL): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/obj/workers/%/main.o $(LIBZL)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIBZL)
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
	@$(MAKE) --no-print-directory all
	@tests/run-all $(BUILD)

check: deps
	@$(MAKE) --no-print-directory MODE=asan all
	@tests/run-all build/asan

contracts:
	@deploy/local/deps npm
	node deploy/contracts/build.js

contracts-check:
	node deploy/contracts/build.js --check

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
