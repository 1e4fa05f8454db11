/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

int nf_ring_init(struct nf_ring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->buf = malloc(cap);
	if (!r->buf)
		return -ENOMEM;
	r->cap = cap;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	return 0;
}

void nf_ring_destroy(struct nf_ring *r)
{
	if (!r->buf)
		return;
	free(r->buf);
	r->buf = NULL;
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
}

int nf_ring_write(struct nf_ring *r, const void *buf, size_t len)
{
	const uint8_t *src = buf;
	int err = 0;

	pthread_mutex_lock(&r->lock);
	while (len > 0) {
		size_t tail, n;

		while (r->used == r->cap && !r->error)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->error) {
			err = r->error;
			break;
		}
		tail = (r->head + r->used) % r->cap;
		n = r->cap - r->used;
		if (n > r->cap - tail)
			n = r->cap - tail;
		if (n > len)
			n = len;
		memcpy(r->buf + tail, src, n);
		r->used += n;
		src += n;
		len -= n;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

void nf_ring_finish(struct nf_ring *r, int err)
{
	pthread_mutex_lock(&r->lock);
	r->finished = 1;
	if (err && !r->error)
		r->error = err;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void nf_ring_fail(struct nf_ring *r, int err)
{
	pthread_mutex_lock(&r->lock);
	if (!r->error)
		r->error = err;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

ssize_t nf_ring_peek(struct nf_ring *r, const uint8_t **p)
{
	ssize_t n;

	pthread_mutex_lock(&r->lock);
	while (r->used == 0 && !r->finished && !r->error)
		pthread_cond_wait(&r->cond, &r->lock);
	if (r->error) {
		n = r->error;
	} else {
		/* Data still buffered is delivered before the clean end. */
		n = (ssize_t)(r->used < r->cap - r->head ? r->used : r->cap - r->head);
		*p = r->buf + r->head;
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}

void nf_ring_consume(struct nf_ring *r, size_t n)
{
	pthread_mutex_lock(&r->lock);
	r->head = (r->head + n) % r->cap;
	r->used -= n;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}
