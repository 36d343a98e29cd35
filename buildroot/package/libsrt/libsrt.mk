################################################################################
#
# libsrt
#
################################################################################

LIBSRT_VERSION = 1.5.4
LIBSRT_SITE = $(call github,Haivision,srt,v$(LIBSRT_VERSION))
LIBSRT_LICENSE = MPL-2.0
LIBSRT_LICENSE_FILES = LICENSE
LIBSRT_CPE_ID_VENDOR = haivision
LIBSRT_CPE_ID_PRODUCT = srt
LIBSRT_INSTALL_STAGING = YES
LIBSRT_DEPENDENCIES = host-pkgconf openssl

# 1.5.4 declares cmake_minimum_required(2.8.12), which CMake 4 refuses
# without a policy floor.
LIBSRT_CONF_OPTS = \
	-DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
	-DENABLE_APPS=OFF \
	-DENABLE_SHARED=ON \
	-DENABLE_STATIC=OFF \
	-DENABLE_ENCRYPTION=ON \
	-DUSE_ENCLIB=openssl-evp \
	-DENABLE_UNITTESTS=OFF \
	-DENABLE_TESTING=OFF

$(eval $(cmake-package))
