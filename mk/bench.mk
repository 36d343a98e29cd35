# Benchmarks (docs/BENCHMARKS.md): what capbox costs and how fast it recovers, side by side
# with gst-launch-1.0 and ffmpeg sending the same stream, and what the fleet costs a broker.
#   make bench                          every figure (about 30 min; results in .cache/bench/run-DATE)
#   make bench BENCH_ARGS='-reps 5 overhead'   capbench's flags and figures (go run ./bench -h)
#   make bench BENCH_E2E=0              no virtual capture box boots: figure 4 reads the last
#                                       `make e2e` results instead
#   make test-bench                     each figure once at a tiny size (< 60 s): keeps them working
BENCH_DIR      := $(CACHE)/bench
BENCH_STAMP    := $(shell date -u +%Y%m%d-%H%M%S)
BENCH_OUT      ?= $(BENCH_DIR)/run-$(BENCH_STAMP)
BENCH_ARGS     ?=
BENCH_E2E      ?= 1
BENCH_E2E_RUNS ?= 3

bench-tool:
	@mkdir -p $(BENCH_DIR)
	$(GO) build -o $(BENCH_DIR)/capbench ./bench

bench: build cross-arm64 bench-tool $(if $(filter 1,$(BENCH_E2E)),e2e-prepare e2e-tools) ## capbox vs gst-launch-1.0 and ffmpeg: CPU, RSS, first byte, recovery, zero-copy, fleet, size (~30 min)
	@mkdir -p $(BENCH_OUT)
	@e2e=; if [ "$(BENCH_E2E)" = 1 ]; then \
		for i in $$(seq $(BENCH_E2E_RUNS)); do \
			echo "bench: virtual capture box, zero-copy rows, boot $$i of $(BENCH_E2E_RUNS)"; \
			$(E2E_CACHE)/bin/e2e-vm -arch amd64 -run '^(gst-dmabuf-zero-copy|capboxd-zero-copy-run)$$' -out $(BENCH_OUT)/e2e-$$i \
				> $(BENCH_OUT)/e2e-$$i.log 2>&1 || echo "bench: boot $$i failed (see $(BENCH_OUT)/e2e-$$i.log)"; \
			e2e=$$e2e$${e2e:+,}$(BENCH_OUT)/e2e-$$i/results.jsonl; \
		done; \
	else e2e=$(E2E_CACHE)/amd64/results/results.jsonl; fi; \
	$(BENCH_DIR)/capbench -out $(BENCH_OUT) -e2e-results $$e2e $(BENCH_ARGS)

test-bench: build cross-arm64 bench-tool ## every benchmark once at a tiny size (< 60 s), so they keep working
	$(BENCH_DIR)/capbench -tiny -out $(BENCH_DIR)/tiny

TEST_TARGETS += test-bench

.PHONY: bench bench-tool test-bench
