# capbox A/B boot for U-Boot (found on the CAPBOX partition by standard boot),
# driven by RAUC's U-Boot backend: BOOT_ORDER lists the slots to try,
# BOOT_<slot>_LEFT the attempts left for each. RAUC marks a slot good
# (refilling its attempts) once the agent is ready.
# Slot A is partition 2 (GPT name rootfs-a), B is partition 3 (rootfs-b) of
# board/imx8mp/genimage.cfg: both maps are spelled out (PARTLABEL is
# case-sensitive). buildroot/tests/test-bootcmd.sh runs this file.
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3

setenv capbox_slot
for slot in ${BOOT_ORDER}; do
	if test "x${capbox_slot}" = "x"; then
		if test "x${slot}" = "xA" && test ${BOOT_A_LEFT} -gt 0; then
			setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
			setenv capbox_slot A
			setenv capbox_part 2
			setenv capbox_root rootfs-a
		elif test "x${slot}" = "xB" && test ${BOOT_B_LEFT} -gt 0; then
			setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
			setenv capbox_slot B
			setenv capbox_part 3
			setenv capbox_root rootfs-b
		fi
	fi
done

if test "x${capbox_slot}" = "x"; then
	echo "capbox: no slot has attempts left; resetting both"
	setenv BOOT_A_LEFT 3
	setenv BOOT_B_LEFT 3
	saveenv
	reset
fi
saveenv

setenv bootargs "root=PARTLABEL=${capbox_root} rootfstype=ext4 ro rootwait console=ttymxc1,115200 rauc.slot=${capbox_slot}"
load mmc ${devnum}:${capbox_part} ${kernel_addr_r} /boot/Image
load mmc ${devnum}:${capbox_part} ${fdt_addr_r} /boot/freescale/imx8mp-evk.dtb
booti ${kernel_addr_r} - ${fdt_addr_r}
