/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "known.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ZONEINFO "/usr/share/zoneinfo"

struct best {
	const char *value;
	char near[96];
	unsigned dist;
	int found;
};

/* Levenshtein distance, case-insensitive, of short strings (<= 95). */
static unsigned distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[96];

	if (la > 95 || lb > 95)
		return 1000;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0], up;

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = (a[i - 1] | 32) == (b[j - 1] | 32) ? 0 : 1;

			up = row[j];
			row[j] = diag + cost;
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return row[lb];
}

static void consider(struct best *b, const char *entry)
{
	unsigned d;

	if (strcmp(entry, b->value) == 0) {
		b->found = 1;
		return;
	}
	d = distance(entry, b->value);
	if (d < b->dist) {
		b->dist = d;
		snprintf(b->near, sizeof(b->near), "%s", entry);
	}
}

/* Runs consider() on field `field` (0-based, blank- or tab-separated) of
 * every line of path that does not start with '#'; in_section: only lines
 * after a line equal to it, up to the next line starting with '!'. */
static int scan(const char *path, int field, const char *in_section, struct best *b)
{
	FILE *f = fopen(path, "re");
	char line[512];
	int on = in_section == NULL;

	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		char *tok, *save = NULL;
		int i = 0;

		line[strcspn(line, "\n")] = '\0';
		if (in_section && line[0] == '!') {
			on = strcmp(line, in_section) == 0;
			continue;
		}
		if (!on || line[0] == '#' || !line[0])
			continue;
		for (tok = strtok_r(line, " \t", &save); tok && i < field; tok = strtok_r(NULL, " \t", &save))
			i++;
		if (tok)
			consider(b, tok);
	}
	fclose(f);
	return 0;
}

const char *known_package(enum known_list list)
{
	return list == KNOWN_KEYMAP ? "xkb-data" : list == KNOWN_LOCALE ? "locales" : "tzdata";
}

int known_value(enum known_list list, const char *value, char *near, size_t cap)
{
	struct best b = { .value = value, .dist = 1000 };
	const char *path = NULL;
	int r = 0;

	switch (list) {
	case KNOWN_TIMEZONE: {
		char zf[512];
		struct stat st;

		path = ZONEINFO "/zone1970.tab";
		/* Any zone file counts (Etc/UTC, links like Europe/Belfast). */
		if (snprintf(zf, sizeof(zf), ZONEINFO "/%s", value) < (int)sizeof(zf) && stat(zf, &st) == 0 &&
		    S_ISREG(st.st_mode) && strcmp(value, "posixrules") != 0 && !strstr(value, ".tab"))
			return 1;
		r = scan(path, 2, NULL, &b);
		if (r == 0)
			scan(ZONEINFO "/zone.tab", 2, NULL, &b);
		consider(&b, "Etc/UTC");
		break;
	}
	case KNOWN_COUNTRY:
		path = ZONEINFO "/iso3166.tab";
		r = scan(path, 0, NULL, &b);
		/* The United Kingdom's code is GB, whatever people type. */
		if (r == 0 && !b.found && strcasecmp(value, "UK") == 0)
			snprintf(b.near, sizeof(b.near), "GB"), b.dist = 0;
		break;
	case KNOWN_KEYMAP:
		path = "/usr/share/X11/xkb/rules/evdev.lst";
		r = scan(path, 0, "! layout", &b);
		break;
	case KNOWN_LOCALE:
		path = "/usr/share/i18n/SUPPORTED";
		r = scan(path, 0, NULL, &b);
		break;
	}
	if (r < 0) {
		snprintf(near, cap, "%s", path);
		return -ENOENT;
	}
	if (b.found)
		return 1;
	/* Only suggest what is close: at most a third of the value wrong. */
	snprintf(near, cap, "%s", b.dist <= 1 + strlen(value) / 3 ? b.near : "");
	return 0;
}
