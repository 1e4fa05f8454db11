/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "initramfs.h"

#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decode.h"
#include "fileutil.h"
#include "format.h"

#define INITRAMFS_MAX (256u << 20) /* decoded bytes looked at, at most */
#define EM_AARCH64_ 183            /* <elf.h> e_machine */
#define PT_INTERP_ 3

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A newc header field: 8 hex digits. Returns 0 or -1. */
static int hex8(const uint8_t *p, uint64_t *out)
{
	*out = 0;
	for (int i = 0; i < 8; i++) {
		int c = p[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
				 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (d < 0)
			return -1;
		*out = *out << 4 | (uint64_t)d;
	}
	return 0;
}

/* Finds /init in a newc archive (buf, len): its mode and data. Returns 0,
 * -ENOENT (no /init), -EBADMSG (not newc, or cut short). */
static int find_init(const uint8_t *buf, size_t len, uint64_t *mode, const uint8_t **data, uint64_t *size)
{
	size_t pos = 0;

	for (;;) {
		uint64_t f[13], name_len, name_at, data_at;
		const char *name;

		if (len - pos < 110 || (memcmp(buf + pos, "070701", 6) != 0 && memcmp(buf + pos, "070702", 6) != 0))
			return pos == 0 ? -EBADMSG : -EBADMSG;
		for (int i = 0; i < 13; i++)
			if (hex8(buf + pos + 6 + 8 * i, &f[i]) < 0)
				return -EBADMSG;
		name_len = f[11];
		name_at = pos + 110;
		if (name_len == 0 || name_len > len - name_at)
			return -EBADMSG;
		name = (const char *)buf + name_at;
		if (name[name_len - 1] != '\0')
			return -EBADMSG;
		data_at = (name_at + name_len + 3) & ~3ull;
		if (data_at > len || f[6] > len - data_at)
			return -EBADMSG;
		if (strcmp(name, "TRAILER!!!") == 0)
			return -ENOENT;
		if (strcmp(name, "init") == 0 || strcmp(name, "./init") == 0 || strcmp(name, "/init") == 0) {
			*mode = f[1];
			*data = buf + data_at;
			*size = f[6];
			return 0;
		}
		pos = (size_t)((data_at + f[6] + 3) & ~3ull);
	}
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case 3: return "x86 (32-bit)";
	case 40: return "32-bit ARM";
	case 62: return "x86-64";
	case 183: return "aarch64";
	case 243: return "RISC-V";
	default: return "non-aarch64";
	}
}

/* Checks /init's bytes: a 64-bit little-endian aarch64 ELF without an
 * interpreter (static). Returns 0 or -EBADMSG with why. */
static int check_elf(const uint8_t *p, uint64_t n, char *why, size_t cap)
{
	uint64_t phoff, phent, phnum;

	if (n < 64 || memcmp(p, "\177ELF", 4) != 0) {
		snprintf(why, cap, "its /init is not an ELF program (a script or a link?); the flasher's is a static aarch64 binary");
		return -EBADMSG;
	}
	if (p[4] != 2 || p[5] != 1 || le(p + 18, 2) != EM_AARCH64_) {
		snprintf(why, cap, "its /init is a%s %s ELF; a Raspberry Pi runs the aarch64 flasher (the test command's "
			 "build-aarch64, or the netflash package)", p[4] == 2 ? "" : " 32-bit", machine_name((unsigned)le(p + 18, 2)));
		return -EBADMSG;
	}
	phoff = le(p + 32, 8);
	phent = le(p + 54, 2);
	phnum = le(p + 56, 2);
	if (phent < 56 || phoff > n || phnum > (n - phoff) / phent) {
		snprintf(why, cap, "its /init is a damaged ELF (program headers out of the file)");
		return -EBADMSG;
	}
	for (uint64_t i = 0; i < phnum; i++) {
		if (le(p + phoff + i * phent, 4) == PT_INTERP_) {
			snprintf(why, cap, "its /init is dynamically linked; the initramfs has no libc, so it must be static");
			return -EBADMSG;
		}
	}
	return 0;
}

int initramfs_check(const char *path, char *why, size_t cap)
{
	uint8_t head[NF_FORMAT_PROBE_LEN], *buf = NULL;
	const uint8_t *init = NULL;
	uint64_t mode = 0, size = 0;
	struct nf_sniff sn;
	struct stat st;
	char detail[200];
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;
	ssize_t n;

	if (fd < 0) {
		r = -errno;
		snprintf(why, cap, "%s", strerror(errno));
		return r;
	}
	n = nf_pread_fd(&fd, head, sizeof(head), 0);
	if (n <= 0) {
		snprintf(why, cap, "%s", n == 0 ? "it is empty" : strerror((int)-n));
		r = n == 0 ? -EBADMSG : (int)n;
		goto out;
	}
	/* The Pi's TFTP client counts 1024-byte blocks in 16 bits and does not
	 * roll over: a file over 65535 blocks is cut (rpi-eeprom#375, #720;
	 * ../shared/DESIGN.md). Said first, whatever else is wrong with it. */
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > NF_PI_TFTP_MAX) {
		snprintf(why, cap, "it is %llu bytes; the Pi's network boot fetches at most %llu over TFTP (65535 "
			 "blocks of 1024 bytes: rpi-eeprom#375): leave out modules or compress it harder",
			 (unsigned long long)st.st_size, (unsigned long long)NF_PI_TFTP_MAX);
		r = -EFBIG;
		goto out;
	}
	nf_format_sniff(head, (size_t)n, (size_t)n < sizeof(head), &sn);
	if (sn.format == NF_FMT_UNKNOWN) {
		snprintf(why, cap, "it is %s, not a (gzip, xz, zstd) cpio archive", sn.why);
		r = -EBADMSG;
		goto out;
	}
	if (!(buf = malloc(INITRAMFS_MAX))) {
		r = -ENOMEM;
		snprintf(why, cap, "out of memory");
		goto out;
	}
	n = nf_decode_head(sn.format, nf_pread_fd, &fd, 0, buf, INITRAMFS_MAX, detail, sizeof(detail));
	if (n < 0) {
		snprintf(why, cap, "it does not decode: %s", detail);
		r = -EBADMSG;
		goto out;
	}
	r = find_init(buf, (size_t)n, &mode, &init, &size);
	if (r == -EBADMSG) {
		snprintf(why, cap, "it is not a newc cpio archive (the kernel's initramfs format: 'cpio -H newc')");
	} else if (r == -ENOENT) {
		snprintf(why, cap, "it has no /init, the program the kernel starts");
	} else if ((mode & 0170000) != 0100000) {
		snprintf(why, cap, "its /init is not a regular file");
		r = -EBADMSG;
	} else {
		r = check_elf(init, size, why, cap);
	}
	if (r == -ENOENT)
		r = -EBADMSG;
out:
	free(buf);
	close(fd);
	return r;
}
