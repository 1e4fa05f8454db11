/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An nf_input over a memory buffer, handing out at most `piece` bytes per
 * peek (to exercise every boundary), optionally failing with `err` at the end. */
#ifndef NETFLASH_MEMINPUT_H
#define NETFLASH_MEMINPUT_H

#include <stdint.h>
#include <sys/types.h>

#include "decode.h"

struct meminput {
	const uint8_t *data;
	size_t len, pos, piece;
	int err;
};

static ssize_t mem_peek(void *ctx, const uint8_t **p)
{
	struct meminput *m = ctx;
	size_t n = m->len - m->pos;

	if (n == 0)
		return m->err;
	if (m->piece && n > m->piece)
		n = m->piece;
	*p = m->data + m->pos;
	return (ssize_t)n;
}

static void mem_consume(void *ctx, size_t n)
{
	struct meminput *m = ctx;

	m->pos += n;
}

#endif
