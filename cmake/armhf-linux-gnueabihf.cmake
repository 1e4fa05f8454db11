# Cross-build of netflash-agent alone for 32-bit Raspberry Pi OS (armhf):
# cmake -DCMAKE_TOOLCHAIN_FILE=cmake/armhf-linux-gnueabihf.cmake -DNETFLASH_AGENT_ONLY=ON.
# Needs gcc-arm-linux-gnueabihf and libc6-dev-armhf-cross only (the agent
# links nothing but libc). Debian's armhf is ARMv7: the agent runs on Pi 2, 3, 4, 5 and
# Zero 2 W with a 32-bit OS, not on the ARMv6 Pi 1 and Zero (W).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf /usr/lib/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm-static -L /usr/arm-linux-gnueabihf)
