/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A single-producer single-consumer byte ring between two pipeline threads.
 * The producer blocks when it is full, the consumer when it is empty; either
 * side can end the stream with an error that the other side then sees. */
#ifndef NETFLASH_RING_H
#define NETFLASH_RING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct nf_ring {
	uint8_t *buf;
	size_t cap, head, used; /* head: next byte to read */
	int finished;           /* producer called nf_ring_finish() */
	int error;              /* negative errno from either side, 0 if none */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* Allocates a ring of cap bytes. Returns 0 or -ENOMEM. */
int nf_ring_init(struct nf_ring *r, size_t cap);
/* Frees the ring's buffer; accepts a zeroed, never-initialised ring. */
void nf_ring_destroy(struct nf_ring *r);

/* Copies len bytes in, blocking for space. Returns 0, or the error the ring
 * was failed with (the consumer gave up). */
int nf_ring_write(struct nf_ring *r, const void *buf, size_t len);

/* Producer: ends the stream; err 0 is a clean end, negative a failure. */
void nf_ring_finish(struct nf_ring *r, int err);

/* Consumer: waits for data and points *p at the longest contiguous readable
 * run. Returns its length, 0 at a clean end, or the producer's error. */
ssize_t nf_ring_peek(struct nf_ring *r, const uint8_t **p);
/* Consumer: marks n bytes (at most what nf_ring_peek returned) as read. */
void nf_ring_consume(struct nf_ring *r, size_t n);

/* Either side: fails the ring with err (negative) and wakes the other side. */
void nf_ring_fail(struct nf_ring *r, int err);

#endif
