/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Which Raspberry Pi is asking: the board revision carried in the client GUID
 * (DHCP option 97) of a Pi 4/5 bootloader, as dnsmasq logs it. */
#ifndef NETFLASH_PIMODEL_H
#define NETFLASH_PIMODEL_H

#include <stddef.h>
#include <stdint.h>

/* "Pi 4B 4GB", "Pi 5 8GB", "Pi 3B+ 1GB", ... from a new-style revision code
 * (bit 23 set). Returns 0, or -EINVAL for an old-style or unknown code. */
int pi_revision_model(uint32_t rev, char *out, size_t cap);

/* The boot-file family of a model named by pi_revision_model ("Pi 4B 4GB"
 * -> "pi4"; "Pi 500 8GB" -> "pi5"; "Pi Zero 2 W" -> "pi3"): pi1 ... pi5, or
 * NULL for a name it did not make. */
const char *pi_model_family(const char *model);

/* What a boot-file set in dir lacks to netboot the aarch64 flasher on a
 * family ("pi3", "pi4", "pi5"): the firmware files the family's boot ROM
 * or EEPROM loads, its 64-bit kernel and its device tree (Raspberry Pi
 * documentation, "Boot sequence"; a Pi 5 boots kernel_2712.img from its
 * EEPROM, no start*.elf). The missing names into out (cap bytes, ", "
 * between them; "" when nothing is missing). Returns how many are missing,
 * or -EINVAL for an unknown family. */
int pi_boot_set_missing(const char *dir, const char *family, char *out, size_t cap);

/* Decodes option 97 as sent (type byte 0, then the fourcc "RPi4"/"RPi5",
 * the board revision, the MAC's low 4 bytes, the serial; little-endian
 * words). At least the first 9 bytes are needed. Fills the model; returns 0,
 * or -EINVAL when these bytes are not a Pi GUID. */
int pi_guid_model(const uint8_t *g, size_t n, char *out, size_t cap);

/* Finds the client GUID that the Pi with canonical MAC sent in its latest
 * proxy-DHCP exchange in dnsmasq's --log-dhcp log (the tail of the file):
 * "<xid> PXE(<if>) <mac> proxy" and "<xid> sent size: 17 option: 97
 * client-machine-id <hex>" (dnsmasq shows the first 14 bytes). Returns the
 * number of bytes put in out, 0 if none was logged, or -errno. */
int pi_guid_from_log(const char *log_path, const char *mac, uint8_t *out, size_t cap);

#endif
