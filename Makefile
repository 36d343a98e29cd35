# capbox: `make run` and `make test` are all a fresh Debian 12 machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GO      ?= go
CACHE   := $(CURDIR)/.cache
BIN     := $(CURDIR)/bin
# Fragments add targets and extend TEST_TARGETS (image, e2e, bench).
TEST_TARGETS :=

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z0-9_-]+:.*## /{printf "  %-14s %s\n",$$1,$$2}' $(MAKEFILE_LIST)

deps: ## install missing Debian packages (idempotent, says what it installs)
	@scripts/deps.sh

sysroots: deps ## build the arm64 and armhf target sysroots into .cache (once)
	@scripts/sysroot.sh arm64
	@scripts/sysroot.sh armhf

build: deps ## build bin/capboxd (cgo, GStreamer) and bin/capboxctl (pure Go)
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/capboxd ./cmd/capboxd
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/capboxctl ./cmd/capboxctl

run: build ## run the agent on its embedded default (SRT listener on :8890, recordings in ./recordings)
	$(BIN)/capboxd run

purego: ## prove board/, agent/, capboxctl and pipelines/recdir build without cgo
	CGO_ENABLED=0 $(GO) build ./board/... ./agent/... ./cmd/capboxctl ./pipelines/recdir

check: build purego lint ## the inner loop: lint and every package's go tests (no images, VMs or cross builds)
	$(GO) test -race -count=1 ./...

test: build purego ## every test that runs on this machine (what CI runs)
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory test-cross test-cross-armv7 $(TEST_TARGETS)

test-cross: cross-arm64 ## run the arm64 binary under qemu-user: version + a decodable test recording
	scripts/test-cross.sh arm64 $(BIN)/capboxd-arm64

cross-arm64: sysroots-arm64 ## bin/capboxd-arm64 (cgo, against .cache/sysroot-arm64)
	scripts/cross.sh arm64 $(BIN)/capboxd-arm64 "$(LDFLAGS)"

cross-armv7: sysroots-armhf ## bin/capboxd-armv7 (cgo, against .cache/sysroot-armhf)
	scripts/cross.sh armhf $(BIN)/capboxd-armv7 "$(LDFLAGS)"

test-cross-armv7: cross-armv7 ## run the armv7 binary under qemu-arm: version + a decodable test recording
	scripts/test-cross.sh armhf $(BIN)/capboxd-armv7

sysroots-arm64: deps
	@scripts/sysroot.sh arm64
sysroots-armhf: deps
	@scripts/sysroot.sh armhf

soak: build ## 10-minute soak of repeated output failures; reports RSS (not in make test)
	CAPBOX_SOAK=10m $(GO) test -count=1 -timeout 20m -run TestSoakRepeatedOutputFailures -v ./pipelines/gst/

lint: deps ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean: ## remove build outputs (keeps the sysroot and download caches)
	rm -rf $(BIN) recordings

distclean: clean ## also remove .cache (sysroots, downloads)
	rm -rf $(CACHE)

include $(wildcard mk/*.mk)

.PHONY: help deps sysroots build run purego check test soak test-cross cross-arm64 cross-armv7 test-cross-armv7 sysroots-arm64 sysroots-armhf lint clean distclean
