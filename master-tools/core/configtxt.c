/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "configtxt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void nf_config_key(const char *line, char *key, size_t cap)
{
	size_t i = strspn(line, " \t"), n = 0;

	key[0] = '\0';
	if (line[i] == '#' || line[i] == '[' || line[i] == '\0')
		return;
	while (line[i] && line[i] != '=' && line[i] != ' ' && line[i] != '\t' && n + 1 < cap)
		key[n++] = line[i++];
	key[n] = '\0';
}

/* Appends len bytes of s and a newline to out. Returns 0 or -EMSGSIZE. */
static int put(char *out, size_t cap, size_t *o, const char *s, size_t len)
{
	if (*o + len + 1 >= cap)
		return -EMSGSIZE;
	memcpy(out + *o, s, len);
	*o += len;
	out[(*o)++] = '\n';
	out[*o] = '\0';
	return 0;
}

long nf_config_compact(const char *in, const char *head, nf_config_skip_fn skip, nf_config_said_fn said, void *ctx,
		       char *out, size_t cap)
{
	size_t o = 0;
	unsigned no = 0;

	if (cap == 0)
		return -EMSGSIZE;
	out[0] = '\0';
	if (head) {
		size_t hl = strlen(head);

		if (hl + 1 > cap)
			return -EMSGSIZE;
		memcpy(out, head, hl + 1);
		o = hl;
	}
	for (const char *p = in ? in : ""; *p;) {
		size_t len = strcspn(p, "\n"), start = strspn(p, " \t"), end = len;
		char key[32], line[512];
		const char *why = NULL;

		no++;
		while (end > start && (p[end - 1] == '\r' || p[end - 1] == ' ' || p[end - 1] == '\t'))
			end--;
		if (end > start && p[start] != '#') {
			snprintf(line, sizeof(line), "%.*s", (int)(end - start), p + start);
			nf_config_key(line, key, sizeof(key));
			if (skip && key[0])
				why = skip(key);
			if (why) {
				if (said)
					said(no, line, why, ctx);
			} else if (put(out, cap, &o, p + start, end - start) < 0) {
				return -EMSGSIZE;
			}
		}
		p += len + (p[len] == '\n');
	}
	return (long)o;
}
