/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by client.c (the connection) and client_job.c (the job); not for
 * other callers. */
#ifndef NETFLASH_CLIENT_INTERNAL_H
#define NETFLASH_CLIENT_INTERNAL_H

#include "client.h"

/* Connects to c's master. Returns 0 or -errno (c->detail says why). */
int nf_client_connect(struct nf_client *c);
/* Sends m as one line; a failed send closes the connection. Returns 0 or -errno. */
int nf_client_send(struct nf_client *c, const struct nf_msg *m);
/* Reads one line into m. Returns 0, -EPROTO, or a connection error. */
int nf_client_recv(struct nf_client *c, struct nf_msg *m);
/* Connects if needed and starts m as verb with this worker's identity
 * (v, mac, token): the first message of a connection. Returns 0 or -errno. */
int nf_client_start(struct nf_client *c, struct nf_msg *m, const char *verb);
/* A master's answer that is not the one hoped for: NOJOB -ENOENT, ERR
 * (refused) -EACCES, anything else -EPROTO. */
int nf_client_refusal(const struct nf_msg *m);

#endif
