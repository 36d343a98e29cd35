# The virtual capture box: whole-system tests on real V4L2 devices (vivid, vicodec) in a QEMU
# guest booting Debian's kernel, with the host's userland and the real bin/capboxd inside.
# See docs/E2E.md. Not in `make test` until every scenario passes (capboxd features land first).
#   make e2e                         the amd64 suite
#   make e2e E2E_RUN=signal          only scenarios whose name matches a regular expression
#   make e2e E2E_VERBOSE=1           guest debug logging
#   make e2e-arm64                   the same suite in an aarch64 guest
include e2e/versions.env

E2E_CACHE   := $(CACHE)/e2e
E2E_TIMEOUT ?= 20m
E2E_RUN     ?=
E2E_VERBOSE ?=
E2E_FLAGS    = -timeout $(E2E_TIMEOUT) $(if $(E2E_RUN),-run '$(E2E_RUN)') $(if $(E2E_VERBOSE),-v)

e2e-prepare: deps ## fetch the pinned Debian kernel, build vicodec/vimc out of tree, make the initramfs (cached)
	@e2e/prepare.sh amd64

e2e-prepare-arm64: deps
	@e2e/prepare.sh arm64

e2e-tools:
	@mkdir -p $(E2E_CACHE)/bin $(E2E_CACHE)/amd64/bin
	$(GO) build -o $(E2E_CACHE)/bin/e2e-vm ./e2e/vm
	CGO_ENABLED=0 GOARCH=amd64 $(GO) build -o $(E2E_CACHE)/amd64/bin/e2e-guest ./e2e/guest

e2e: build e2e-prepare e2e-tools ## boot the virtual capture box (QEMU, vivid + vicodec) and run the scenario suite
	$(E2E_CACHE)/bin/e2e-vm -arch amd64 $(E2E_FLAGS)

e2e-list: e2e-tools ## list the virtual capture box's scenarios
	@$(E2E_CACHE)/amd64/bin/e2e-guest -list

e2e-arm64: cross-arm64 e2e-prepare-arm64 e2e-tools ## the same suite in an aarch64 guest (slow; not in CI)
	@mkdir -p $(E2E_CACHE)/arm64/bin
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build -o $(E2E_CACHE)/arm64/bin/e2e-guest ./e2e/guest
	$(E2E_CACHE)/bin/e2e-vm -arch arm64 $(E2E_FLAGS)

e2e-fixture: ## the last run's snapshots -> e2e/fixtures/vivid-vicodec (capboxd snapshot) and vivid-vicodec-sysfs (raw)
	@r=$(E2E_CACHE)/amd64/results; \
	test -f $$r/fixture-sysfs.tar || { echo "no snapshot: run make e2e first"; exit 1; }; \
	rm -rf e2e/fixtures/vivid-vicodec-sysfs && mkdir -p e2e/fixtures/vivid-vicodec-sysfs; \
	tar -C e2e/fixtures/vivid-vicodec-sysfs -xf $$r/fixture-sysfs.tar; \
	if [ -d $$r/fixture ]; then rm -rf e2e/fixtures/vivid-vicodec && cp -a $$r/fixture e2e/fixtures/vivid-vicodec; \
	else echo "no capboxd snapshot in the last run: e2e/fixtures/vivid-vicodec left as it is"; fi

.PHONY: e2e e2e-prepare e2e-prepare-arm64 e2e-tools e2e-list e2e-arm64 e2e-fixture
