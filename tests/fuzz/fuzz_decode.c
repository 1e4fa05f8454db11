/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the decoder stage: the first byte picks the format,
 * the second the input piece size, the rest is the stream. The decoder must
 * return bytes, 0 or a negative errno, never crash, and stay within memory.
 * The same stream goes through the format sniffer and the disk check, and
 * the decoded head through the disk check (lib/format.c reads hostile
 * headers: skippable frame lengths, partition entries). */
#include <stdint.h>
#include <stdlib.h>

#include "decode.h"
#include "../unit/meminput.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	static uint8_t out[1 << 16];
	struct meminput m;
	struct nf_input input = { mem_peek, mem_consume, &m };
	struct nf_decoder_opts o = { .threads = 1, .memlimit = 32 << 20 };
	struct nf_decoder *d = NULL;
	uint64_t total = 0;
	ssize_t n;

	if (len < 2)
		return 0;
	{
		struct nf_sniff s;
		char why[160];
		const char *inner;

		nf_format_sniff(buf + 2, len - 2, buf[1] & 1, &s);
		nf_head_check(buf + 2, len - 2, buf[1] & 1, &inner, why, sizeof(why));
	}
	o.format = (enum nf_format)(buf[0] % 4);
	m = (struct meminput){ buf + 2, len - 2, 0, (size_t)buf[1] + 1, 0 };
	if (nf_decoder_new(&d, &o, &input) < 0)
		return 0;
	/* Bound the output so a tiny bomb cannot run for minutes. */
	while (total < (64u << 20) && (n = nf_decoder_read(d, out, sizeof(out))) > 0) {
		if (total == 0) {
			char why[160];
			const char *inner;

			nf_head_check(out, (size_t)n, 1, &inner, why, sizeof(why));
		}
		total += (uint64_t)n;
	}
	nf_decoder_free(d);
	return 0;
}
