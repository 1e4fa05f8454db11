# SPDX-License-Identifier: GPL-2.0-or-later
# Cross-build of netflash-agent alone for 32-bit Raspberry Pi OS (armhf):
# cmake -DCMAKE_TOOLCHAIN_FILE=cmake/armhf-linux-gnueabihf.cmake -DNETFLASH_AGENT_ONLY=ON.
# Needs gcc-arm-linux-gnueabihf and libc6-dev-armhf-cross only (the agent
# links nothing but libc). Debian's armhf is ARMv7: the agent runs on Pi 2, 3, 4, 5 and
# Zero 2 W with a 32-bit OS, not on the ARMv6 Pi 1 and Zero (W).
set(NF_CROSS_TRIPLET arm-linux-gnueabihf)
set(NF_CROSS_PROCESSOR arm)
set(NF_CROSS_QEMU qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/cross-linux-gnu.cmake)
