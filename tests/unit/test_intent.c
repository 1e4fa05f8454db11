/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Intent lines (recover.h): what intent_format() writes, intent_parse()
 * reads back; anything else is unreadable. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "recover.h"

#define GEN "0123456789abcdef"

static void test_parse(void)
{
	static const struct {
		const char *line;
		int ret;
		enum intent_kind kind;
		uint64_t job;
		int patch;
		const char *nfsroot;
	} t[] = {
		{ "release 0", 0, INTENT_RELEASE, 0, 0, "" },
		{ "release 42\n", 0, INTENT_RELEASE, 42, 0, "" },
		{ "release 18446744073709551615", 0, INTENT_RELEASE, UINT64_MAX, 0, "" },
		{ "release 18446744073709551616", -EBADMSG, 0, 0, 0, "" },     /* UINT64_MAX + 1 */
		{ "release 123456789012345678901", -EBADMSG, 0, 0, 0, "" },    /* 21 digits */
		{ "release ", -EBADMSG, 0, 0, 0, "" },
		{ "release -1", -EBADMSG, 0, 0, 0, "" },
		{ "release 5 x", -EBADMSG, 0, 0, 0, "" },                      /* trailing junk */
		{ "release 5\n\n", -EBADMSG, 0, 0, 0, "" },                    /* a second line */
		{ "release 5\nrelease 6", -EBADMSG, 0, 0, 0, "" },
		{ "enroll " GEN " patch=0", 0, INTENT_ENROLL, 0, 0, "" },
		{ "enroll " GEN " patch=1\n", 0, INTENT_ENROLL, 0, 1, "" },
		{ "enroll " GEN " patch=1 nfsroot=/srv/pi", 0, INTENT_ENROLL, 0, 1, "/srv/pi" },
		{ "enroll " GEN " patch=2", -EBADMSG, 0, 0, 0, "" },
		{ "enroll " GEN, -EBADMSG, 0, 0, 0, "" },                       /* no patch= */
		{ "enroll 0123456789abcdeg patch=0", -EBADMSG, 0, 0, 0, "" },   /* not hex */
		{ "enroll 0123456789ABCDEF patch=0", -EBADMSG, 0, 0, 0, "" },   /* not as written */
		{ "enroll 0123456789abcde patch=0", -EBADMSG, 0, 0, 0, "" },    /* 15 digits */
		{ "enroll " GEN "0 patch=0", -EBADMSG, 0, 0, 0, "" },           /* 17 digits */
		{ "enroll " GEN " patch=0 nfsroot=", -EBADMSG, 0, 0, 0, "" },
		{ "enroll " GEN " patch=0 x", -EBADMSG, 0, 0, 0, "" },
		{ "", -EBADMSG, 0, 0, 0, "" },
		{ "\n", -EBADMSG, 0, 0, 0, "" },
		{ "reimage 5", -EBADMSG, 0, 0, 0, "" },
		{ "Release 5", -EBADMSG, 0, 0, 0, "" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct intent in;
		int r = intent_parse(t[i].line, &in);

		CHECK(r == t[i].ret, "'%s': ret %d", t[i].line, r);
		if (r < 0 || t[i].ret < 0)
			continue;
		CHECK(in.kind == t[i].kind && in.job == t[i].job && in.patch_aside == t[i].patch &&
		      strcmp(in.nfsroot, t[i].nfsroot) == 0, "'%s': kind %d job %llu patch %d nfsroot '%s'", t[i].line,
		      in.kind, (unsigned long long)in.job, in.patch_aside, in.nfsroot);
	}
}

static void test_nfsroot_bound(void)
{
	char line[NFSROOT_DIR_MAX + 64], dir[NFSROOT_DIR_MAX + 3];
	struct intent in;

	memset(dir, 'a', sizeof(dir) - 1);
	dir[0] = '/';
	dir[NFSROOT_DIR_MAX + 1] = '\0'; /* the longest a field holds */
	snprintf(line, sizeof(line), "enroll %s patch=0 nfsroot=%s", GEN, dir);
	CHECK(intent_parse(line, &in) == 0 && strcmp(in.nfsroot, dir) == 0, "longest nfsroot refused");
	dir[NFSROOT_DIR_MAX + 1] = 'a';
	dir[NFSROOT_DIR_MAX + 2] = '\0';
	snprintf(line, sizeof(line), "enroll %s patch=0 nfsroot=%s", GEN, dir);
	CHECK(intent_parse(line, &in) == -EBADMSG, "nfsroot one longer than the field accepted");
}

/* What intent_format() writes, intent_parse() reads back as it was. */
static void test_roundtrip(void)
{
	static const struct intent t[] = {
		{ .kind = INTENT_RELEASE, .job = 0 },
		{ .kind = INTENT_RELEASE, .job = UINT64_MAX },
		{ .kind = INTENT_ENROLL, .gen = GEN, .patch_aside = 0 },
		{ .kind = INTENT_ENROLL, .gen = GEN, .patch_aside = 1, .nfsroot = "/srv/nfs/pi os" },
	};
	char line[512];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct intent back;
		int n = intent_format(&t[i], line, sizeof(line));

		CHECK(n > 0 && (size_t)n == strlen(line), "%zu: format %d", i, n);
		CHECK(intent_parse(line, &back) == 0 && memcmp(&back, &t[i], sizeof(back)) == 0, "%zu: '%s' read back "
		      "otherwise", i, line);
	}
	CHECK(intent_format(&t[0], line, 9) == -EMSGSIZE, "'release 0' fits 9 bytes");
	CHECK(intent_format(&t[0], line, 10) == 9, "'release 0' does not fit 10 bytes");
	CHECK(intent_format(&(struct intent){ .kind = INTENT_ENROLL, .gen = "xyz" }, line, sizeof(line)) == -EINVAL,
	      "a generation that is not 16 hex digits formatted");
}

int main(void)
{
	test_parse();
	test_nfsroot_bound();
	test_roundtrip();
	return CHECK_DONE();
}
