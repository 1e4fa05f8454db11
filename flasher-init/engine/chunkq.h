/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A bounded queue of pointers between two pipeline stages (the engine's
 * free and full chunks): put, take, close (no more puts: takers drain it,
 * then see the end) and fail (every waiter wakes and sees the error). */
#ifndef NETFLASH_CHUNKQ_H
#define NETFLASH_CHUNKQ_H

#include <pthread.h>

#define NF_CHUNKQ_MAX 8

struct nf_chunkq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void *items[NF_CHUNKQ_MAX];
	unsigned first, n;
	int closed;
	int err;
};

/* Initialises an empty, open queue. Returns 0 or -errno. */
int nf_chunkq_init(struct nf_chunkq *q);
void nf_chunkq_destroy(struct nf_chunkq *q);

/* Appends item. The queue never holds more than NF_CHUNKQ_MAX: the stages
 * share a pool of fewer items, so a put never waits. Returns 0, or the
 * queue's error once it failed (-EPIPE when closed). */
int nf_chunkq_put(struct nf_chunkq *q, void *item);

/* Waits for an item. Returns 1 with *item set, 0 once the queue is closed
 * and empty, or the negative errno it failed with. *waited (may be NULL)
 * gains the seconds spent waiting. */
int nf_chunkq_take(struct nf_chunkq *q, void **item, double *waited);

/* No more puts; takers get what is queued, then 0. */
void nf_chunkq_close(struct nf_chunkq *q);

/* Fails the queue with err (< 0): every take and put returns it from now
 * on. The first error stays. */
void nf_chunkq_fail(struct nf_chunkq *q, int err);

#endif
