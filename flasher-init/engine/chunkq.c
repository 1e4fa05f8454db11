/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "chunkq.h"

#include <errno.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int nf_chunkq_init(struct nf_chunkq *q)
{
	q->first = q->n = 0;
	q->closed = q->err = 0;
	if (pthread_mutex_init(&q->lock, NULL) != 0)
		return -ENOMEM;
	if (pthread_cond_init(&q->cond, NULL) != 0) {
		pthread_mutex_destroy(&q->lock);
		return -ENOMEM;
	}
	return 0;
}

void nf_chunkq_destroy(struct nf_chunkq *q)
{
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
}

int nf_chunkq_put(struct nf_chunkq *q, void *item)
{
	int r = 0;

	pthread_mutex_lock(&q->lock);
	if (q->err)
		r = q->err;
	else if (q->closed || q->n == NF_CHUNKQ_MAX)
		r = -EPIPE;
	else
		q->items[(q->first + q->n++) % NF_CHUNKQ_MAX] = item;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return r;
}

int nf_chunkq_take(struct nf_chunkq *q, void **item, double *waited)
{
	double t0 = now_s();
	int r;

	pthread_mutex_lock(&q->lock);
	while (q->n == 0 && !q->closed && !q->err)
		pthread_cond_wait(&q->cond, &q->lock);
	if (q->err) {
		r = q->err;
	} else if (q->n == 0) {
		r = 0;
	} else {
		*item = q->items[q->first];
		q->first = (q->first + 1) % NF_CHUNKQ_MAX;
		q->n--;
		r = 1;
	}
	pthread_mutex_unlock(&q->lock);
	if (waited)
		*waited += now_s() - t0;
	return r;
}

void nf_chunkq_close(struct nf_chunkq *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void nf_chunkq_fail(struct nf_chunkq *q, int err)
{
	pthread_mutex_lock(&q->lock);
	if (!q->err)
		q->err = err < 0 ? err : -ECANCELED;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}
