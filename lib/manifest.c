/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileutil.h"
#include "parse.h"

#define ORIGIN_CHARS "abcdefghijklmnopqrstuvwxyz0123456789.+-"

int nf_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NF_NAME_MAX || name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

int nf_manifest_write(const char *path, const struct nf_manifest *m)
{
	char sha[65], body[NF_MANIFEST_MAX];
	int n;

	/* Never write what nf_manifest_read() would refuse. */
	if (strspn(m->origin, ORIGIN_CHARS) != strlen(m->origin))
		return -EINVAL;
	nf_format_hex(m->sha256, 32, sha);
	n = snprintf(body, sizeof(body),
		     "# netflash image manifest\n"
		     "name=%s\nfile=%s\nformat=%s\ncompressed_size=%llu\nimage_size=%llu\n"
		     "sha256=%s\nxz_blocks=%llu\nblocks=%llu\nzero_blocks=%llu\ndisk=%d\n",
		     m->name, m->file, nf_format_name(m->format),
		     (unsigned long long)m->compressed_size, (unsigned long long)m->image_size, sha,
		     (unsigned long long)m->xz_blocks, (unsigned long long)m->blocks,
		     (unsigned long long)m->zero_blocks, m->disk ? 1 : 0);
	if (n > 0 && (size_t)n < sizeof(body) && m->origin[0])
		n += snprintf(body + n, sizeof(body) - (size_t)n, "origin=%s\norigin_size=%llu\n", m->origin,
			      (unsigned long long)m->origin_size);
	if (n > 0 && (size_t)n < sizeof(body) && m->zstd_level)
		n += snprintf(body + n, sizeof(body) - (size_t)n, "zstd_level=%d\n", m->zstd_level);
	if (n > 0 && (size_t)n < sizeof(body) && m->finish_level)
		n += snprintf(body + n, sizeof(body) - (size_t)n, "finish_level=%d\n", m->finish_level);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -EMSGSIZE;
	return nf_write_file_atomic(path, body, (size_t)n, 0644);
}

static int set_field(struct nf_manifest *m, const char *key, const char *val, unsigned *seen)
{
	static const char *const keys[] = {
		"name", "file", "format", "compressed_size", "image_size", "sha256",
		"xz_blocks", "blocks", "zero_blocks", "bmap", "disk", "origin", "origin_size",
		"zstd_level", "finish_level",
	};
	uint64_t v = 0;
	size_t k;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if (strcmp(key, keys[k]) == 0)
			break;
	}
	if (k == sizeof(keys) / sizeof(keys[0]) || (*seen & (1u << k)))
		return -EBADMSG; /* unknown or repeated key */
	*seen |= 1u << k;
	switch (k) {
	case 0:
		if (nf_name_valid(val) < 0)
			return -EBADMSG;
		strcpy(m->name, val);
		return 0;
	case 1:
		if (strlen(val) >= sizeof(m->file) || val[0] == '.' || strchr(val, '/'))
			return -EBADMSG;
		strcpy(m->file, val);
		return 0;
	case 2:
		m->format = nf_format_parse(val);
		return m->format == NF_FMT_UNKNOWN ? -EBADMSG : 0;
	case 5:
		return nf_parse_hex(val, m->sha256, 32) < 0 ? -EBADMSG : 0;
	case 11:
		if (strlen(val) >= sizeof(m->origin) || strspn(val, ORIGIN_CHARS) != strlen(val))
			return -EBADMSG;
		strcpy(m->origin, val);
		return 0;
	default:
		if (nf_parse_u64(val, 0, UINT64_MAX, &v) < 0)
			return -EBADMSG;
		if (k == 3)
			m->compressed_size = v;
		else if (k == 4)
			m->image_size = v;
		else if (k == 6)
			m->xz_blocks = v;
		else if (k == 7)
			m->blocks = v;
		else if (k == 8)
			m->zero_blocks = v;
		else if (k == 12)
			m->origin_size = v;
		else if (k == 13 || k == 14) {
			if (v > 22)
				return -EBADMSG;
			*(k == 13 ? &m->zstd_level : &m->finish_level) = (int)v;
		}
		else if (v > 1)
			return -EBADMSG;
		else if (k == 9)
			m->has_bmap = (int)v;
		else
			m->disk = (int)v;
		return 0;
	}
}

int nf_manifest_read(const char *path, struct nf_manifest *m)
{
	char body[NF_MANIFEST_MAX + 1], *line, *save = NULL;
	unsigned seen = 0;
	ssize_t n = nf_read_file(path, body, NF_MANIFEST_MAX);

	if (n == -EFBIG)
		return -EBADMSG;
	if (n < 0)
		return (int)n;
	if (memchr(body, '\0', (size_t)n))
		return -EBADMSG;
	memset(m, 0, sizeof(*m));
	m->disk = 1; /* manifests from before the disk check */
	for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq;

		if (line[0] == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq)
			return -EBADMSG;
		*eq = '\0';
		if (set_field(m, line, eq + 1, &seen) < 0)
			return -EBADMSG;
	}
	/* name .. zero_blocks are required; bmap (old), disk, origin(_size) are not. */
	if ((seen & ((1u << 9) - 1)) != (1u << 9) - 1)
		return -EBADMSG;
	if (m->zero_blocks > m->blocks)
		return -EBADMSG;
	return 0;
}
