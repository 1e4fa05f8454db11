/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Edge cases of the wire format: framing, limits, escapes, round trips. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "proto.h"

static void test_parse_table(void)
{
	static const struct { const char *line; int ret; const char *verb; unsigned nfields; } t[] = {
		{ "HELLO", 0, "HELLO", 0 },
		{ "HELLO v=1 mac=b8:27:eb:d3:85:78", 0, "HELLO", 2 },
		{ "HELLO v=1\r", 0, "HELLO", 1 },
		{ "", -EPROTO, NULL, 0 },
		{ "hello v=1", -EPROTO, NULL, 0 },
		{ "HELLO  v=1", -EPROTO, NULL, 0 },      /* two spaces */
		{ "HELLO v=1 ", -EPROTO, NULL, 0 },      /* trailing space */
		{ " HELLO", -EPROTO, NULL, 0 },
		{ "HELLO v", -EPROTO, NULL, 0 },         /* no '=' */
		{ "HELLO =1", -EPROTO, NULL, 0 },        /* empty key */
		{ "HELLO v=", 0, "HELLO", 1 },           /* empty value is a value */
		{ "HELLO V=1", -EPROTO, NULL, 0 },       /* upper-case key */
		{ "HELLO v=1 v=2", -EPROTO, NULL, 0 },   /* repeated key */
		{ "HELLO v=a%20b", 0, "HELLO", 1 },
		{ "HELLO v=a%2", -EPROTO, NULL, 0 },     /* short escape */
		{ "HELLO v=%zz", -EPROTO, NULL, 0 },
		{ "HELLO v=%00", -EPROTO, NULL, 0 },     /* NUL */
		{ "HELLO v=\x01", -EPROTO, NULL, 0 },    /* raw control byte */
		{ "HELLO v=\xc3\xa9", -EPROTO, NULL, 0 },/* raw non-ASCII */
		{ "HELLO v=a\tb", -EPROTO, NULL, 0 },
		{ "ABCDEFGHIJKLMNO", 0, "ABCDEFGHIJKLMNO", 0 },   /* 15: the longest verb */
		{ "ABCDEFGHIJKLMNOP", -EPROTO, NULL, 0 },         /* 16 */
		{ "X abcdefghijklmno=1", 0, "X", 1 },             /* 15: the longest key */
		{ "X abcdefghijklmnop=1", -EPROTO, NULL, 0 },
		{ "HELLO1 v=1", -EPROTO, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nf_msg m;
		int r = nf_msg_parse(t[i].line, strlen(t[i].line), &m);

		CHECK(r == t[i].ret, "parse #%zu '%s': got %d want %d", i, t[i].line, r, t[i].ret);
		if (r == 0 && t[i].verb)
			CHECK(strcmp(m.verb, t[i].verb) == 0 && m.nfields == t[i].nfields, "parse #%zu: verb %s fields %u",
			      i, m.verb, m.nfields);
	}
}

static void test_limits(void)
{
	char line[2 * NF_PROTO_LINE_MAX];
	struct nf_msg m;
	size_t n;

	/* 16 fields parse, 17 do not. */
	n = (size_t)sprintf(line, "X");
	for (int i = 0; i < 16; i++)
		n += (size_t)sprintf(line + n, " k%d=v", i);
	CHECK(nf_msg_parse(line, n, &m) == 0 && m.nfields == 16, "16 fields");
	n += (size_t)sprintf(line + n, " k16=v");
	CHECK(nf_msg_parse(line, n, &m) == -EMSGSIZE, "17 fields");
	/* A value of 512 bytes parses; 513 does not. */
	n = (size_t)sprintf(line, "X v=");
	memset(line + n, 'a', 512);
	CHECK(nf_msg_parse(line, n + 512, &m) == 0 && strlen(nf_msg_get(&m, "v")) == 512, "512-byte value");
	line[n + 512] = 'a';
	CHECK(nf_msg_parse(line, n + 513, &m) == -EMSGSIZE, "513-byte value");
	/* Line length: 1023 bytes (+ newline) is the maximum. */
	memset(line, 'A', sizeof(line));
	CHECK(nf_msg_parse(line, NF_PROTO_LINE_MAX, &m) == -EMSGSIZE, "1024-byte line");
}

static void test_roundtrip(void)
{
	struct nf_msg m, back;
	char line[NF_PROTO_LINE_MAX + 1];
	uint64_t v;
	int n;

	nf_msg_init(&m, "FAIL");
	nf_msg_add(&m, "reason", "cannot open '/dev/mmcblk0': 100% busy\nnext line");
	nf_msg_addf(&m, "id", "%d", 42);
	n = nf_msg_format(&m, line, sizeof(line));
	CHECK(n > 0 && line[n - 1] == '\n' && strchr(line, ' ') != NULL, "format");
	CHECK(memchr(line, '\n', (size_t)n - 1) == NULL, "one line: %s", line);
	CHECK(nf_msg_parse(line, (size_t)n - 1, &back) == 0, "reparse %s", line);
	CHECK(strcmp(nf_msg_get(&back, "reason"), "cannot open '/dev/mmcblk0': 100% busy\nnext line") == 0, "value back");
	CHECK(nf_msg_get_u64(&back, "id", 1, 100, &v) == 0 && v == 42, "number back");
	CHECK(nf_msg_get_u64(&back, "id", 50, 100, &v) == -ERANGE, "number range");
	CHECK(nf_msg_get_u64(&back, "nope", 0, 1, &v) == -ENOENT, "missing key");
	CHECK(nf_msg_get_u64(&back, "reason", 0, 1, &v) == -EINVAL, "not a number");
	/* A message too long to format is refused, not cut. */
	nf_msg_init(&m, "X");
	for (int i = 0; i < 4; i++) {
		char k[8], big[400];

		memset(big, ' ', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		snprintf(k, sizeof(k), "k%d", i);
		nf_msg_add(&m, k, big); /* spaces triple in size when escaped */
	}
	CHECK(nf_msg_format(&m, line, sizeof(line)) == -EMSGSIZE, "oversized format refused");
}

/* Every stage and card finding has one wire name that parses back to it;
 * names the protocol does not list, other spellings and "" (outside
 * progress) do not. */
static void test_names(void)
{
	static const char *const bad[] = { "=1+1", "Write", "write ", "read_only", "probe\n", "identity2" };
	enum nf_stage s;
	enum nf_card_finding f;

	for (int i = NF_STAGE_NONE; i <= NF_STAGE_FLASH; i++)
		CHECK(nf_stage_parse(nf_stage_name((enum nf_stage)i), &s) == 0 && s == (enum nf_stage)i,
		      "stage %d round trip (%s)", i, nf_stage_name((enum nf_stage)i));
	for (int i = NF_CARD_IDENTITY; i <= NF_CARD_SLOW; i++)
		CHECK(nf_card_finding_parse(nf_card_finding_name((enum nf_card_finding)i), &f) == 0 &&
		      f == (enum nf_card_finding)i, "finding %d round trip", i);
	CHECK(strcmp(nf_stage_name(NF_STAGE_READ_ONLY), "read-only") == 0, "read-only's wire name");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(nf_stage_parse(bad[i], &s) == -EINVAL, "stage '%s' refused", bad[i]);
		CHECK(nf_card_finding_parse(bad[i], &f) == -EINVAL, "finding '%s' refused", bad[i]);
	}
	CHECK(nf_card_finding_parse("", &f) == -EINVAL, "empty finding refused");
}

#define SHA "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* JOB by its table: what each side accepts, one line per case. */
static void test_job_table(void)
{
	static const struct { const char *line; int ret; int disk; unsigned long long patch; } t[] = {
		{ "JOB id=1 url=nfs://h/e/f format=zstd size=5 sha256=" SHA, 0, 1, 0 },
		{ "JOB id=1 url=nfs://h/e/f format=zstd size=5 sha256=" SHA " image=pios disk=0", 0, 0, 0 },
		{ "JOB id=1 url=nfs://h/e/f format=zstd size=5 sha256=" SHA " disk=1", 0, 1, 0 },
		{ "JOB id=1 url=u format=raw size=5 sha256=" SHA " patch=1 patch_sha256=" SHA, 0, 1, 1 },
		{ "JOB id=1 url=u format=raw size=5 sha256=" SHA " later=ignored", 0, 1, 0 },
		{ "JOB id=18446744073709551615 url=u format=raw size=1 sha256=" SHA, 0, 1, 0 },
		{ "JOB id=18446744073709551616 url=u format=raw size=1 sha256=" SHA, -EPROTO, 0, 0 },
		{ "JOB id=0 url=u format=raw size=5 sha256=" SHA, -EPROTO, 0, 0 },
		{ "JOB url=u format=raw size=5 sha256=" SHA, -EPROTO, 0, 0 },
		{ "JOB id=1 format=raw size=5 sha256=" SHA, -EPROTO, 0, 0 },
		{ "JOB id=1 url=u format=raw size=0 sha256=" SHA, -EPROTO, 0, 0 },
		{ "JOB id=1 url=u format=raw size=5 sha256=00", -EPROTO, 0, 0 },
		{ "JOB id=1 url=u format=raw size=5 sha256=" SHA "0", -EPROTO, 0, 0 },
		{ "JOB id=1 url=u format=raw size=5 sha256=" SHA " disk=2", -EPROTO, 0, 0 },
		{ "JOB id=1 url=u format=raw size=5 sha256=" SHA " disk=", -EPROTO, 0, 0 },
		{ "JOB id=1 url=u format=0123456789abcdef size=5 sha256=" SHA, -EPROTO, 0, 0 }, /* 16 > 15 */
		{ "JOB id=1 url=u format=0123456789abcde size=5 sha256=" SHA, 0, 1, 0 },
		{ "JOB id=1 url=u format=raw size=5 sha256=" SHA " patch=131073 patch_sha256=" SHA, -EPROTO, 0, 0 },
		{ "JOB id=1 url=u format=raw size=5 sha256=" SHA " patch=0", -EPROTO, 0, 0 },
		{ "NOJOB id=1 url=u format=raw size=5 sha256=" SHA, -EPROTO, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nf_job_msg j;
		struct nf_msg m;
		int r = nf_msg_parse(t[i].line, strlen(t[i].line), &m);

		if (r == 0)
			r = nf_msg_read(&m, &nf_job_vspec, &j);
		CHECK(r == t[i].ret, "job #%zu: got %d want %d", i, r, t[i].ret);
		if (r == 0)
			CHECK(j.disk == t[i].disk && j.patch == t[i].patch && j.sha256[1] == 0x11,
			      "job #%zu: disk %d patch %llu", i, j.disk, (unsigned long long)j.patch);
	}
}

/* What the master writes the worker reads back the same; empty optional
 * fields are left out of the line. */
static void test_job_roundtrip(void)
{
	struct nf_job_msg a, b;
	char line[NF_PROTO_LINE_MAX + 1];
	struct nf_msg m;
	int n;

	memset(&a, 0, sizeof(a)); /* padding too: the structs are compared whole */
	a.id = 42;
	a.size = 1 << 20;
	a.disk = 1;
	snprintf(a.url, sizeof(a.url), "nfs://10.0.0.1/export/a b%%c?version=3");
	snprintf(a.format, sizeof(a.format), "xz");
	memset(a.sha256, 0xab, sizeof(a.sha256));
	CHECK(nf_msg_write(&m, &nf_job_vspec, &a) == 0 && (n = nf_msg_format(&m, line, sizeof(line))) > 0,
	      "job write");
	CHECK(strstr(line, " image=") == NULL && strstr(line, " disk=") == NULL && strstr(line, " patch") == NULL,
	      "empty optional fields left out: %s", line);
	CHECK(nf_msg_parse(line, strlen(line) - 1, &m) == 0 && nf_msg_read(&m, &nf_job_vspec, &b) == 0 &&
		      memcmp(&a, &b, sizeof(a)) == 0, "job round trip: %s", line);
	a.disk = 0;
	a.patch = 512;
	memset(a.patch_sha256, 0x01, sizeof(a.patch_sha256));
	snprintf(a.image, sizeof(a.image), "pi os");
	CHECK(nf_msg_write(&m, &nf_job_vspec, &a) == 0 && nf_msg_format(&m, line, sizeof(line)) > 0 &&
		      strstr(line, " disk=0") && strstr(line, " image=pi%20os"), "job with options: %s", line);
	CHECK(nf_msg_parse(line, strlen(line) - 1, &m) == 0 && nf_msg_read(&m, &nf_job_vspec, &b) == 0 &&
		      memcmp(&a, &b, sizeof(a)) == 0, "job round trip with options: %s", line);
}

/* DONE's patch= is told apart from a zero digest: present or not. */
static void test_done_patch(void)
{
	static const struct { const char *line; int ret, has; } t[] = {
		{ "DONE id=3 sha256=" SHA " bytes=5 seconds=1.0", 0, 0 },
		{ "DONE id=3 sha256=" SHA " bytes=5 seconds=1.0 patch=" SHA, 0, 1 },
		{ "DONE id=3 sha256=" SHA " bytes=5 seconds=1.0 patch="
		  "0000000000000000000000000000000000000000000000000000000000000000", 0, 1 },
		{ "DONE id=3 sha256=" SHA " bytes=5 seconds=1e3", -EPROTO, 0 },
		{ "DONE id=3 sha256=" SHA " bytes=5 seconds=-1", -EPROTO, 0 },
		{ "DONE id=3 sha256=" SHA " bytes=5 seconds=10000000.1", -EPROTO, 0 },
		{ "DONE id=3 sha256=" SHA " bytes=5", -EPROTO, 0 },
	};
	char line[NF_PROTO_LINE_MAX + 1];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nf_done_msg d;
		struct nf_msg m;
		int r = nf_msg_parse(t[i].line, strlen(t[i].line), &m);

		if (r == 0)
			r = nf_msg_read(&m, &nf_done_vspec, &d);
		CHECK(r == t[i].ret && (r < 0 || d.has_patch == t[i].has), "done #%zu: got %d", i, r);
		if (r == 0) {
			CHECK(nf_msg_write(&m, &nf_done_vspec, &d) == 0 && nf_msg_format(&m, line, sizeof(line)) > 0 &&
				      (strstr(line, " patch=") != NULL) == t[i].has, "done #%zu written: %s", i, line);
		}
	}
}

int main(void)
{
	test_names();
	test_parse_table();
	test_limits();
	test_roundtrip();
	test_job_table();
	test_job_roundtrip();
	test_done_patch();
	return CHECK_DONE();
}
