# The SD-card image (buildroot/, overlay/; docs/IMAGE.md).
#   make image BOARD=rpi4_64   full Buildroot build: needs network and hours,
#                              so it is not part of `make test`
#   make test-image            offline checks (post-build/post-image for every
#                              board, GRUB, boot scripts, units, RAUC, first boot)
#   make image-check           Buildroot's own checks against the pinned
#                              Buildroot 2026.02.3 (defconfig/savedefconfig,
#                              check-package, hashes, Go version)
# CAPBOX_DL_DIR holds (or receives) buildroot-2026.02.3.tar.gz, the tag's
# source archive, verified by the commit git get-tar-commit-id reads from it.
BOARD         ?= rpi4_64
CAPBOX_DL_DIR ?= $(CACHE)/dl

image: deps ## build the SD-card image: make image BOARD=rpi4_64|rpi3|rpi5|imx8mp|x86_64 (network, hours)
	CAPBOX_DL_DIR=$(CAPBOX_DL_DIR) buildroot/scripts/build-image.sh $(BOARD) $(CACHE)/image

test-image: deps build ## offline image checks: post-image layouts and bundles, GRUB, boot scripts, units, first boot
	buildroot/tests/test-image.sh

image-check: deps ## Buildroot 2026.02.3's checks on every defconfig and the external tree (CAPBOX_DL_DIR)
	buildroot/tests/check-buildroot.sh $(CAPBOX_DL_DIR) $(CACHE)/image

TEST_TARGETS += test-image image-check

.PHONY: image test-image image-check
