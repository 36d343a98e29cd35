################################################################################
#
# capbox
#
################################################################################

# The agent is built from the repository this external tree lives in. The
# local site method never runs Go's vendoring step, so the tree must already
# hold a vendor/ directory: buildroot/scripts/build-image.sh copies the
# repository aside and runs `go mod vendor` there before calling Buildroot.
# CAPBOX_VERSION is capbox's own (git describe), given on Buildroot's command
# line by build-image.sh; post-build.sh and post-image.sh read it too.
CAPBOX_VERSION = local
CAPBOX_SITE = $(BR2_EXTERNAL_CAPBOX_PATH)/..
CAPBOX_SITE_METHOD = local
CAPBOX_LICENSE = Apache-2.0
CAPBOX_LICENSE_FILES = LICENSE
CAPBOX_GOMOD = capbox
CAPBOX_BUILD_TARGETS = cmd/capboxd
CAPBOX_LDFLAGS = -X main.version=$(CAPBOX_VERSION)

# cgo: go-gst links GStreamer core and the plugins-base libraries through
# pkg-config (Buildroot's wrapper points it at the staging sysroot).
CAPBOX_DEPENDENCIES = host-pkgconf gstreamer1 gst1-plugins-base

# The agent's own user: capture, sound and render nodes through its groups.
# No home (state lives in /data/capbox) and no login shell.
define CAPBOX_USERS
	capbox -1 capbox -1 * - - video,audio capbox capture agent
endef

$(eval $(golang-package))
