include $(sort $(wildcard $(BR2_EXTERNAL_CAPBOX_PATH)/package/*/*.mk))

# GStreamer's SRT elements (srtsrc/srtsink) live in gst1-plugins-bad, whose
# meson option "srt" is left at "auto" by Buildroot, which has no libsrt. With
# our libsrt enabled, turn the option on (a missing libsrt then fails the build
# instead of silently dropping SRT) and build libsrt first. This file is read
# after Buildroot's packages were evaluated, so the configure step gets the
# ordering explicitly; _DEPENDENCIES also feeds per-package directories,
# show-info and legal-info.
ifeq ($(BR2_PACKAGE_LIBSRT)$(BR2_PACKAGE_GST1_PLUGINS_BAD),yy)
GST1_PLUGINS_BAD_DEPENDENCIES += libsrt
GST1_PLUGINS_BAD_CONF_OPTS += -Dsrt=enabled
$(GST1_PLUGINS_BAD_TARGET_CONFIGURE): | libsrt
endif
