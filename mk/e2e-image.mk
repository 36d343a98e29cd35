# The virtual appliance (docs/IMAGE.md "The virtual appliance"): the x86_64
# image's boot logic (genimage layout, grub.cfg, RAUC system.conf, overlay,
# units, scripts) booted in QEMU with OVMF, Debian's kernel and userland
# standing in for Buildroot's, and the A/B scenarios proven by booting it.
#   make e2e-image                       build the images (cached by their inputs) and run every scenario
#   make e2e-image E2E_IMAGE_RUN=update   only scenarios matching a regular expression (first-boot always runs)
#   make e2e-image-list                  the scenarios
# Not in `make test`: cold (debootstrap, five images, eight boots under TCG) it takes well over
# 20 minutes on a shared 2-core machine; figures in docs/IMAGE.md.
APPLIANCE         := $(CACHE)/appliance
E2E_IMAGE_RUN     ?=
E2E_IMAGE_TIMEOUT ?= 60m
APPLIANCE_IMAGE    = e2e/appliance/make-image.sh $(APPLIANCE)

e2e-image-prepare: build
	@mkdir -p $(APPLIANCE)/bin
	@e2e/appliance/base-root.sh $(APPLIANCE)
	CGO_ENABLED=0 $(GO) build -o $(APPLIANCE)/bin/appliance-probe ./e2e/appliance/probe
	$(GO) build -o $(APPLIANCE)/bin/e2e-appliance ./e2e/appliance
	$(GO) build -ldflags "-X main.version=$(VERSION)-update -X main.commit=$(COMMIT)" -o $(APPLIANCE)/bin/capboxd-update ./cmd/capboxd
	@for k in keys keys-other; do test -f $(APPLIANCE)/$$k/ca.cert.pem || sh buildroot/board/common/rauc-dev-keys.sh $(APPLIANCE)/$$k; done
	@$(APPLIANCE_IMAGE)/img-a $(VERSION) $(BIN)/capboxd $(APPLIANCE)/keys good
	@$(APPLIANCE_IMAGE)/img-b $(VERSION)-update $(APPLIANCE)/bin/capboxd-update $(APPLIANCE)/keys good
	@$(APPLIANCE_IMAGE)/img-bad-agent $(VERSION)-bad-agent $(APPLIANCE)/bin/capboxd-update $(APPLIANCE)/keys agent-never-ready
	@$(APPLIANCE_IMAGE)/img-bad-kernel $(VERSION)-bad-kernel $(APPLIANCE)/bin/capboxd-update $(APPLIANCE)/keys kernel-hangs
	@e2e/appliance/resign.sh $(APPLIANCE)/img-a $(APPLIANCE)/img-foreign $(APPLIANCE)/keys $(APPLIANCE)/keys-other
	@cp e2e/appliance/valid.yaml e2e/appliance/invalid.yaml $(APPLIANCE)/

e2e-image: e2e-image-prepare ## the virtual appliance: boot the x86_64 image's A/B logic in QEMU and run its scenarios
	$(APPLIANCE)/bin/e2e-appliance -images $(APPLIANCE) -timeout $(E2E_IMAGE_TIMEOUT) $(if $(E2E_IMAGE_RUN),-run '$(E2E_IMAGE_RUN)')

e2e-image-list: ## list the virtual appliance's scenarios
	@$(GO) run ./e2e/appliance -list

.PHONY: e2e-image e2e-image-prepare e2e-image-list
