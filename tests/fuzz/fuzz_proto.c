/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the wire format parser: any bytes must parse or be
 * refused cleanly; whatever parses must format and parse back the same;
 * whatever a verb's table reads, it writes and reads back the same (after
 * one round, which rounds decimals to the digits written). */
#include <stdint.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

static const struct nf_vspec *const specs[] = {
	&nf_job_vspec, &nf_patch_vspec, &nf_progress_vspec, &nf_done_vspec, &nf_fail_vspec, &nf_log_vspec,
	&nf_card_vspec,
};

/* Reads m by v into a, writes a and reads that back into b. 1 if both
 * reads took the message. */
static int round_trip(const struct nf_msg *m, const struct nf_vspec *v, void *a, void *b)
{
	struct nf_msg w;

	if (nf_msg_read(m, v, a) < 0)
		return 0;
	if (nf_msg_write(&w, v, a) < 0 || nf_msg_read(&w, v, b) < 0)
		__builtin_trap();
	return 1;
}

static void check_tables(const struct nf_msg *m)
{
	static union {
		struct nf_job_msg job;
		struct nf_patch_msg patch;
		struct nf_progress_msg progress;
		struct nf_done_msg done;
		struct nf_fail_msg fail;
		struct nf_log_msg log;
		struct nf_card_msg card;
	} a, b, c;

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		if (!round_trip(m, specs[i], &a, &b))
			continue;
		struct nf_msg w;

		if (nf_msg_write(&w, specs[i], &b) < 0 || nf_msg_read(&w, specs[i], &c) < 0 ||
		    memcmp(&b, &c, specs[i]->size) != 0)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct nf_msg m, back;
	char line[NF_PROTO_LINE_MAX + 1];
	int n;

	if (nf_msg_parse((const char *)buf, len, &m) < 0)
		return 0;
	check_tables(&m);
	n = nf_msg_format(&m, line, sizeof(line));
	if (n < 0)
		return 0; /* escaping can make a valid line too long to send back */
	if (nf_msg_parse(line, (size_t)n - 1, &back) != 0 || strcmp(back.verb, m.verb) != 0 ||
	    back.nfields != m.nfields)
		__builtin_trap();
	for (unsigned i = 0; i < m.nfields; i++) {
		if (strcmp(back.fields[i].key, m.fields[i].key) || strcmp(back.fields[i].value, m.fields[i].value))
			__builtin_trap();
	}
	return 0;
}
