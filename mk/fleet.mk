# Fleet over MQTT (PROTOCOL.md, docs/FLEET.md). `make test` already runs the fleet unit and
# broker tests (mochi in-process and a real mosquitto on loopback); these add the scale run.
#   make test-fleet-scale              500 simulated boxes against mosquitto (~35 s)
#   make test-fleet-scale SCALE=2000   more boxes, longer CPU window: SCALE_WINDOW=60s
#   make fuzz-fleet                    every inbound parser, FUZZTIME each (default 30s)
SCALE        ?= 500
SCALE_WINDOW ?= 20s
FUZZTIME     ?= 30s

test-fleet-scale: deps ## 500 simulated boxes on mosquitto: capboxctl ls < 2 s, broker and link CPU
	$(GO) test -count=1 -run '^TestScale$$' -v ./cmd/capboxctl/ -args -scale=$(SCALE) -scale.window=$(SCALE_WINDOW) \
		| grep -E '^(SCALE|---|ok|FAIL|PASS)|scale_test.go'; exit $${PIPESTATUS[0]}

fuzz-fleet: ## fuzz the fleet's inbound parsers (FUZZTIME each)
	@for f in FuzzDecodeRequest FuzzDecodeDesired FuzzDecodeStatus FuzzCheckPayload FuzzDecodeWatch FuzzDecodeMeter FuzzCheckPreview; do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./agent/fleet/wire/ || exit 1; done
	$(GO) test -run '^$$' -fuzz '^FuzzURL$$' -fuzztime $(FUZZTIME) ./internal/redact/
	$(GO) test -run '^$$' -fuzz '^FuzzViewApply$$' -fuzztime $(FUZZTIME) ./cmd/capboxctl/

TEST_TARGETS += test-fleet-scale

.PHONY: test-fleet-scale fuzz-fleet
