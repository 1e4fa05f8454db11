/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Card health: who the card says it is, whether it holds what it claims
 * (fake-capacity probe), and how its writes behave (stall watchdog, in the
 * engine). */
#ifndef NETFLASH_HEALTH_H
#define NETFLASH_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "target.h"

struct nf_card_id {
	int have;            /* an SD/MMC card: the fields below come from sysfs */
	char name[32], manfid[16], oemid[16], serial[24], date[16], type[16];
	char cid[40], csd[40];
	uint64_t bytes;      /* the size the device claims */
};

/* Reads the identity of the card behind path (a block device; a partition
 * means its disk) from /sys/dev/block/M:m/device/{cid,csd,name,...}. Sets
 * id->have = 0 for devices that are not MMC/SD cards (loop, files). */
void nf_card_identify(const char *path, struct nf_card_id *id);

/* One line: "SD card SC16G, manfid 0x000003, serial 0x1a2b3c4d, 06/2023,
 * 15.9 GB, CID ..." or "loop0: not an SD/MMC card, 64.0 MB". */
void nf_card_describe(const struct nf_card_id *id, const char *path, char *out, size_t cap);

struct nf_flash_result;

/* The card-health verdict of a flash, each part one line, empty when not
 * found: writes that took the stall watchdog's limit or longer, and a
 * write rate below the floor. */
struct nf_card_verdict {
	char stall[200]; /* "2 write(s) took 5 s or longer; the slowest 7.1 s at 96.0 MiB" */
	char slow[160];  /* "the card wrote 3.1 MB/s, below the floor of 10.0 MB/s" */
};

/* Fills v from res. min_mbps: the floor in MB/s (0: none); the rate is
 * judged only over more than a second of writing. */
void nf_card_verdict(const struct nf_flash_result *res, double min_mbps, struct nf_card_verdict *v);

#define NF_PROBE_BLOCK 4096u

/* Fake-capacity probe: writes a unique marker block at offsets spread up to
 * the end the target claims (size bytes) -- at powers of two past a random
 * base, so a card that drops high address bits overwrites its own markers,
 * and at even steps -- then reads them all back from the device and puts
 * back what was there. Bounded: about 60 blocks of 4 KiB, and when markers
 * do not read back at most 64 trials of two 4 KiB markers (each put back)
 * to name the real size: the smallest divisor of the gcd of the distances
 * markers moved at which one lands on another (a card that wraps), or a
 * bisection between the last marker that read back and the first that did
 * not (a card that loses writes). Returns 0 when every marker read back,
 * -EIO with detail naming the first offset that did not and the real size
 * (a fake or failing card), or another -errno. */
int nf_probe_capacity(struct nf_target *t, uint64_t size, char *detail, size_t cap);

#endif
