# SPDX-License-Identifier: GPL-2.0-or-later
# The part of the cross toolchain files (aarch64-linux-gnu.cmake,
# armhf-linux-gnueabihf.cmake) they share: include it after setting
# NF_CROSS_TRIPLET (the GNU triplet: compiler prefix, Debian's multiarch and
# cross-libc directories), NF_CROSS_PROCESSOR and NF_CROSS_QEMU (the
# qemu-user emulator that runs the tests).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${NF_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${NF_CROSS_TRIPLET}-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/${NF_CROSS_TRIPLET} /usr/lib/${NF_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE ${NF_CROSS_TRIPLET})
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${NF_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(CMAKE_CROSSCOMPILING_EMULATOR ${NF_CROSS_QEMU} -L /usr/${NF_CROSS_TRIPLET})
