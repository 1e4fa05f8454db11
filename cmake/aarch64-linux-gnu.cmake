# SPDX-License-Identifier: GPL-2.0-or-later
# Cross-build of the worker side (flasher-init, its libraries, unit tests)
# for 64-bit Raspberry Pis: cmake -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# -DNETFLASH_WORKER_ONLY=ON. Needs gcc-aarch64-linux-gnu and the arm64 -dev
# packages (multiarch); ctest runs the unit tests under qemu-aarch64-static.
set(NF_CROSS_TRIPLET aarch64-linux-gnu)
set(NF_CROSS_PROCESSOR aarch64)
set(NF_CROSS_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/cross-linux-gnu.cmake)
