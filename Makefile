# cc-metric-store in C.
#
#   make          build ./cc-metric-store
#   make run      install missing Debian packages, build, start with ./config.json
#   make test     install missing packages, build, run unit tests (plain and
#                 ASan+UBSan) and integration tests; ends with "N passed, M failed"
#   make fuzz     build the libFuzzer targets and run each for FUZZ_SECONDS
#   make tsan     build the unit tests under ThreadSanitizer and run them
#   make bench    build the benchmark tools (see bench/README.md)
#
# Every .c under src/ except src/main.c is part of the library that both the
# daemon and the tests link; every tests/unit/test_*.c becomes one test binary.

CC       ?= gcc
PKGS     := libmicrohttpd jansson libnats libsodium zlib libzstd libdeflate libcurl
CPPFLAGS += -D_GNU_SOURCE -Isrc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -pthread -fno-strict-aliasing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS   += $(PKG_LIBS) -lm -pthread

# The flags above are read when this file is parsed. `make run`, `make
# test` and `make deb` therefore install the packages first and build in a
# sub-make, which parses the file again with the packages present. A plain
# build (`make`) never installs anything; without the packages it stops with
# one line.
SETUP_GOALS := deps test-tools run test fuzz deb clean
ifneq ($(filter-out $(SETUP_GOALS),$(or $(MAKECMDGOALS),all)),)
  ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && echo ok),ok)
    $(error development packages missing ($(PKGS) via pkg-config): run 'make deps' or scripts/install-deps.sh)
  endif
endif

# safe.directory: also when root builds in a user's checkout
GIT      := git -c safe.directory=$(CURDIR)
VERSION  := $(shell $(GIT) describe --always --dirty 2>/dev/null || echo unknown)
GITHASH  := $(shell $(GIT) rev-parse --short HEAD 2>/dev/null || echo unknown)
CPPFLAGS += -DCCMS_VERSION='"1.5.4-c.$(VERSION)"' -DCCMS_GIT_HASH='"$(GITHASH)"'

# Unit tests find their fixtures next to them: tests/fixtures of this clone.
TEST_CPPFLAGS = -Itests/unit -DCCMS_FIXTURE_DIR='"$(abspath $(dir $<)../fixtures)"'

LIB_SRC  := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c))
TEST_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

BUILD    := build
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

ASAN_BUILD := build-asan
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_OBJ   := $(LIB_SRC:%.c=$(ASAN_BUILD)/%.o)
ASAN_TESTS := $(TEST_SRC:tests/unit/%.c=$(ASAN_BUILD)/tests/%)

TSAN_BUILD := build-tsan
TSAN_FLAGS := -O1 -g -fsanitize=thread
TSAN_OBJ   := $(LIB_SRC:%.c=$(TSAN_BUILD)/%.o)
TSAN_TESTS := $(TEST_SRC:tests/unit/%.c=$(TSAN_BUILD)/tests/%)

FUZZ_BUILD := build-fuzz
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
FUZZ_OBJ   := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZERS    := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_SECONDS ?= 30

# Object files of the sanitizer and fuzz builds are not intermediates to delete.
.SECONDARY:

.PHONY: all deps test-tools run test unit-tests asan-tests tsan fuzz fuzz-build bench clean \
        install deb
all: cc-metric-store

deps:
	@scripts/install-deps.sh

# Tools the tests need besides Debian packages: node + DuckDB (npm) to read
# the Parquet archives back with an independent reader.
test-tools: deps
	@scripts/install-test-tools.sh

cc-metric-store: $(LIB_OBJ) $(BUILD)/src/main.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The OpenAPI document is assembled into the swagger module (.incbin).
$(BUILD)/src/api/swagger.o $(ASAN_BUILD)/src/api/swagger.o $(TSAN_BUILD)/src/api/swagger.o \
  $(FUZZ_BUILD)/src/api/swagger.o: docs/openapi.json

$(BUILD)/%.o: %.c $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -o $@ $< $(LIB_OBJ) -lcmocka $(LDLIBS)

$(ASAN_BUILD)/%.o: %.c $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) -std=c11 -Wall -Wextra -pthread $(ASAN_FLAGS) -c -o $@ $<

$(ASAN_BUILD)/tests/%: tests/unit/%.c $(ASAN_OBJ) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(PKG_CFLAGS) -std=c11 -Wall -Wextra -pthread $(ASAN_FLAGS) -o $@ $< $(ASAN_OBJ) -lcmocka $(LDLIBS)

$(TSAN_BUILD)/%.o: %.c $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) -std=c11 -Wall -Wextra -pthread $(TSAN_FLAGS) -c -o $@ $<

$(TSAN_BUILD)/tests/%: tests/unit/%.c $(TSAN_OBJ) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(PKG_CFLAGS) -std=c11 -Wall -Wextra -pthread $(TSAN_FLAGS) -o $@ $< $(TSAN_OBJ) -lcmocka $(LDLIBS)

$(FUZZ_BUILD)/src/%.o: src/%.c $(wildcard src/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(PKG_CFLAGS) -std=c11 -Wall -Wextra -pthread $(FUZZ_FLAGS) -c -o $@ $<

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_OBJ) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -Itests/fuzz $(PKG_CFLAGS) -std=c11 -Wall -Wextra -pthread -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

unit-tests: $(TESTS)
asan-tests: $(ASAN_TESTS)

# The fault-injection shim the integration tests preload (tests/tools/faultinject.c).
FAULTINJECT := $(BUILD)/faultinject.so
$(FAULTINJECT): tests/tools/faultinject.c
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -std=c11 -Wall -Wextra -O1 -g -shared -fPIC -o $@ $< -ldl
fuzz-build: $(FUZZERS)

# The whole suite: unit tests, the same under ASan+UBSan, then the
# integration tests against the real binary. tests/run_tests.py prints the
# "N passed, M failed" summary and exits non-zero on any failure.
test: deps test-tools
	$(MAKE) cc-metric-store unit-tests asan-tests $(FAULTINJECT)
	python3 tests/run_tests.py --unit $(TESTS) --asan $(ASAN_TESTS) --integration tests/integration

tsan: $(TSAN_TESTS)
	python3 tests/run_tests.py --unit $(TSAN_TESTS)

fuzz: deps
	$(MAKE) fuzz-build
	@for f in $(FUZZERS); do \
	  name=$$(basename $$f); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
	  mkdir -p $$corpus $(FUZZ_BUILD)/artifacts $(FUZZ_BUILD)/corpus-$$name; \
	  echo "== $$name ($(FUZZ_SECONDS)s, corpus $$corpus)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_BUILD)/artifacts/ $(FUZZ_BUILD)/corpus-$$name $$corpus >/dev/null 2>$(FUZZ_BUILD)/$$name.log \
	    || { tail -40 $(FUZZ_BUILD)/$$name.log; exit 1; }; \
	  grep -E '^(#[0-9]+.*DONE|Done)' $(FUZZ_BUILD)/$$name.log | tail -1; \
	done

run: deps
	$(MAKE) cc-metric-store
	./cc-metric-store -config config.json

bench: cc-metric-store $(BUILD)/bench/ingest_cpu
	$(MAKE) -C bench

# The CPU cost of ingest in one process (bench/ingest_cpu.c): links the store.
$(BUILD)/bench/ingest_cpu: bench/ingest_cpu.c bench/workload.h $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ibench $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

# ---- installation and the Debian package (docs/packaging.md) ----------------
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/cc-metric-store
SYSCONFDIR     ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
STATEDIR       ?= /var/lib/cc-metric-store

# An existing config is never overwritten; the example is always in DOCDIR.
install: cc-metric-store
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/cc-metric-store $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 cc-metric-store $(DESTDIR)$(BINDIR)/cc-metric-store
	install -m 0644 packaging/cc-metric-store.8 $(DESTDIR)$(MANDIR)/man8/cc-metric-store.8
	install -m 0644 packaging/config.json $(DESTDIR)$(DOCDIR)/config.example.json
	[ -e $(DESTDIR)$(SYSCONFDIR)/cc-metric-store/config.json ] || \
	  install -m 0640 packaging/config.json $(DESTDIR)$(SYSCONFDIR)/cc-metric-store/config.json
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    -e 's|@STATEDIR@|$(STATEDIR)|g' packaging/cc-metric-store.service \
	  > $(DESTDIR)$(SYSTEMDUNITDIR)/cc-metric-store.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/cc-metric-store.service

# build/cc-metric-store_<version>_<arch>.deb (scripts/build-deb.sh); it
# ships the Swagger UI assets for -dev, from the pinned npm package.
deb: deps
	@scripts/install-test-tools.sh web/swagger-ui
	$(MAKE) cc-metric-store
	scripts/build-deb.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) cc-metric-store
	-$(MAKE) -C bench clean
