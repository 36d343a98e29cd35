# The SD-card image (buildroot/, overlay/; docs/IMAGE.md).
#   make image BOARD=rpi4_64   full Buildroot build: needs network and hours,
#                              so it is not part of `make test`
#   make test-image            offline checks (units, layouts, RAUC, scripts)
#   make image-check BUILDROOT_DIR=DIR   defconfigs + check-package against a
#                              real Buildroot tree kept outside the repository
BOARD ?= rpi4_64

image: deps ## build the SD-card image: make image BOARD=rpi4_64|rpi3|rpi5|imx8mp|x86_64 (network, hours)
	buildroot/scripts/build-image.sh $(BOARD) $(CACHE)/image

test-image: deps ## offline image checks: units + hardening score, genimage layouts, RAUC bundles, first boot
	buildroot/tests/test-image.sh

image-check: deps ## validate defconfigs and packages against a Buildroot tree: BUILDROOT_DIR=DIR
	@test -n "$(BUILDROOT_DIR)" || { echo "set BUILDROOT_DIR to an unpacked Buildroot 2026.02.x tree"; exit 2; }
	buildroot/tests/check-buildroot.sh $(BUILDROOT_DIR)

TEST_TARGETS += test-image

.PHONY: image test-image image-check
