/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "pimodel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"

#define LOG_TAIL (1u << 20) /* the newest MiB of the log is plenty */

/* The "type" field (bits 4-11) of new-style codes, from the Raspberry Pi
 * documentation's revision-code table, with the boot-file family: what the
 * board's firmware needs (BCM2835/6/7: bootcode.bin + start.elf; BCM2711:
 * start4.elf; BCM2712: firmware in EEPROM, kernel_2712.img). */
static const struct {
	const char *name, *family;
} types[] = {
	[0x00] = { "Pi A", "pi1" }, [0x01] = { "Pi B", "pi1" }, [0x02] = { "Pi A+", "pi1" },
	[0x03] = { "Pi B+", "pi1" }, [0x04] = { "Pi 2B", "pi2" }, [0x06] = { "CM1", "pi1" },
	[0x08] = { "Pi 3B", "pi3" }, [0x09] = { "Pi Zero", "pi1" }, [0x0a] = { "CM3", "pi3" },
	[0x0c] = { "Pi Zero W", "pi1" }, [0x0d] = { "Pi 3B+", "pi3" }, [0x0e] = { "Pi 3A+", "pi3" },
	[0x10] = { "CM3+", "pi3" }, [0x11] = { "Pi 4B", "pi4" }, [0x12] = { "Pi Zero 2 W", "pi3" },
	[0x13] = { "Pi 400", "pi4" }, [0x14] = { "CM4", "pi4" }, [0x15] = { "CM4S", "pi4" },
	[0x17] = { "Pi 5", "pi5" }, [0x18] = { "CM5", "pi5" }, [0x19] = { "Pi 500", "pi5" },
	[0x1a] = { "CM5 Lite", "pi5" },
};

int pi_revision_model(uint32_t rev, char *out, size_t cap)
{
	static const char *const mem[] = { "256MB", "512MB", "1GB", "2GB", "4GB", "8GB", "16GB" };
	unsigned type = (rev >> 4) & 0xff, m = (rev >> 20) & 7;

	if (!(rev & (1u << 23)) || type >= sizeof(types) / sizeof(types[0]) || !types[type].name)
		return -EINVAL;
	if (m < sizeof(mem) / sizeof(mem[0]))
		snprintf(out, cap, "%s %s", types[type].name, mem[m]);
	else
		snprintf(out, cap, "%s", types[type].name);
	return 0;
}

const char *pi_model_family(const char *model)
{
	const char *best = NULL;
	size_t best_n = 0;

	/* The longest name wins: "Pi Zero 2 W 512MB" is not a "Pi Zero". */
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t n = types[i].name ? strlen(types[i].name) : 0;

		if (n > best_n && strncmp(model, types[i].name, n) == 0 && (model[n] == ' ' || model[n] == '\0')) {
			best = types[i].family;
			best_n = n;
		}
	}
	return best;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int pi_guid_model(const uint8_t *g, size_t n, char *out, size_t cap)
{
	/* Byte 0 is the GUID type (0); then the fourcc, "RPi4" on a Pi 4 and
	 * (by the same scheme) "RPi5" on a Pi 5: 'R' 'P' 'i' and a digit. */
	if (n < 9 || g[0] != 0 || g[1] != 'R' || g[2] != 'P' || g[3] != 'i' || g[4] < '0' || g[4] > '9')
		return -EINVAL;
	return pi_revision_model(le32(g + 5), out, cap);
}

/* The xid of a dnsmasq DHCP log line ("... dnsmasq-dhcp[PID]: XID rest"):
 * sets *rest past it. Returns 1 if the line has one. */
static int line_xid(const char *line, const char **rest, char *xid, size_t cap)
{
	const char *p = strstr(line, "dnsmasq-dhcp[");
	size_t n;

	if (!p || !(p = strstr(p, "]: ")))
		return 0;
	p += 3;
	n = strspn(p, "0123456789");
	if (n == 0 || n >= cap || p[n] != ' ')
		return 0;
	memcpy(xid, p, n);
	xid[n] = '\0';
	*rest = p + n + 1;
	return 1;
}

static size_t parse_hex_bytes(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (n < cap) {
		int hi = nf_hex_digit(s[0]), lo = hi < 0 ? -1 : nf_hex_digit(s[1]);

		if (hi < 0 || lo < 0)
			break;
		out[n++] = (uint8_t)(hi << 4 | lo);
		if (s[2] != ':')
			break;
		s += 3;
	}
	return n;
}

int pi_guid_from_log(const char *log_path, const char *mac, uint8_t *out, size_t cap)
{
	char xid[16] = "", needle[40], *buf, *line, *save = NULL;
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	size_t got = 0, want;
	off_t from;
	ssize_t r;
	size_t found = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	from = sb.st_size > (off_t)LOG_TAIL ? sb.st_size - (off_t)LOG_TAIL : 0;
	want = (size_t)(sb.st_size - from);
	buf = malloc(want + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < want && (r = pread(fd, buf + got, want - got, from + (off_t)got)) > 0)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	/* dnsmasq spells the MAC with colons. */
	snprintf(needle, sizeof(needle), " %s proxy", mac);
	for (char *c = needle; *c; c++)
		if (*c == '-')
			*c = ':';
	/* Forward through the tail: remember the xid of this MAC's newest proxy
	 * exchange, and the option 97 dnsmasq sent back in that exchange. */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *rest;
		char lx[16];

		if (!line_xid(line, &rest, lx, sizeof(lx)))
			continue;
		if (strncmp(rest, "PXE(", 4) == 0 && strstr(rest, needle)) {
			snprintf(xid, sizeof(xid), "%s", lx);
			found = 0;
		} else if (xid[0] && strcmp(lx, xid) == 0 && strncmp(rest, "sent size:", 10) == 0) {
			const char *o = strstr(rest, " option: 97 client-machine-id ");

			uint8_t tmp[64];
			size_t n;

			if (!o)
				continue;
			o += strlen(" option: 97 client-machine-id ");
			n = parse_hex_bytes(o + strspn(o, " "), tmp, sizeof(tmp) < cap ? sizeof(tmp) : cap);
			if (n >= 9) { /* type, fourcc, revision: what a model needs */
				memcpy(out, tmp, n);
				found = n;
			}
		}
	}
	free(buf);
	return (int)found;
}

/* 1 when dir has a file name matching glob pattern pat. */
static int has_match(const char *dir, const char *pat)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	while (d && !found && (e = readdir(d)))
		found = fnmatch(pat, e->d_name, 0) == 0;
	if (d)
		closedir(d);
	return found;
}

int pi_boot_set_missing(const char *dir, const char *family, char *out, size_t cap)
{
	static const struct {
		const char *family;
		const char *files[6]; /* glob patterns; the first names it in messages */
	} need[] = {
		{ "pi3", { "bootcode.bin", "start.elf", "fixup.dat", "kernel8.img", "bcm2710-rpi-3-b*.dtb" } },
		{ "pi4", { "start4.elf", "fixup4.dat", "kernel8.img", "bcm2711-rpi-4-b.dtb" } },
		{ "pi5", { "kernel_2712.img", "bcm2712-rpi-5-b.dtb" } },
	};
	size_t o = 0;
	int n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (strcmp(need[i].family, family) != 0)
			continue;
		for (size_t k = 0; k < 6 && need[i].files[k]; k++)
			if (!has_match(dir, need[i].files[k])) {
				o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", n ? ", " : "",
						      need[i].files[k]);
				n++;
			}
		return n;
	}
	return -EINVAL;
}
