/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Worker power control from ROOT/power.conf, one line per worker:
 *
 *   # MAC              how
 *   b8:27:eb:d3:85:78  gpio gpiochip0:17:active-low
 *   dc:a6:32:01:02:03  exec /usr/local/bin/poe-port-cycle switch1 7
 *
 * gpio: a relay on that line (lib/gpio.h spec). A power cycle drives the
 * line active for the off time, which must cut the worker's power, then
 * inactive again and releases it: wire the relay so that the worker has
 * power while the line is inactive (normally closed contacts), so a master
 * that crashes or reboots never leaves a worker dark.
 * exec: a command (absolute path, arguments split on blanks, no shell) that
 * power-cycles the worker itself (a PoE switch port, a smart PDU). It runs
 * with NETFLASH_MAC and NETFLASH_OFF_SECONDS set; exit status 0 is success. */
#ifndef NETFLASH_POWER_H
#define NETFLASH_POWER_H

#include <stddef.h>

#include "gpio.h"

struct master;

#define POWER_FILE "power.conf"
#define POWER_LINE_MAX 512
#define POWER_ARGS_MAX 16

struct power_entry {
	char mac[18];                    /* canonical */
	unsigned lineno;
	int is_exec;
	struct nf_gpio_spec gpio;        /* gpio */
	char cmd[POWER_LINE_MAX];        /* exec: the command as written */
};

/* Calls fn for each entry of ROOT/power.conf, in file order, until fn
 * returns non-zero (that value is returned). Returns 0, -ENOENT (no file),
 * -EBADMSG (a bad line: detail says "FILE:N: why"; nothing is called for a
 * file with a bad line), -errno. */
int power_each(const struct master *m, int (*fn)(const struct power_entry *e, void *ctx), void *ctx,
	       char *detail, size_t cap);

/* Finds mac's entry. Returns 0, -ENOENT (no file or no entry: detail
 * says which), -EBADMSG, -errno. */
int power_find(const struct master *m, const char *mac, struct power_entry *out, char *detail, size_t cap);

/* Power-cycles the worker: its power is off for off_ms (gpio; an exec
 * command gets it as NETFLASH_OFF_SECONDS). For gpio, SIGINT, SIGTERM and
 * SIGHUP wait until the power is back. Returns 0 or -errno with detail. */
int power_cycle(const struct power_entry *e, unsigned off_ms, char *detail, size_t cap);

#endif
