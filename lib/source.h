/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Image sources: a local file, an NFSv3 URL read with libnfs (userspace,
 * no mount), or a multicast session's stream (udpcast). A source knows its size, answers positioned reads (for probing
 * headers and indexes) and streams its bytes in order to a sink, with
 * several NFS reads in flight and, when the server goes away mid-stream,
 * reconnection with backoff that resumes at the next undelivered byte. */
#ifndef NETFLASH_SOURCE_H
#define NETFLASH_SOURCE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct nf_source_opts {
	unsigned nfs_depth;       /* NFS reads in flight; 0: default (8) */
	unsigned retry_seconds;   /* keep reconnecting this long after a failure */
	unsigned timeout_seconds; /* one NFS call's timeout; 0: default (10) */
	atomic_int *cancel;       /* set non-zero to stop a stream; may be NULL */
};

struct nf_source;

/* Called with the stream's bytes in order. Returns 0 or a negative errno,
 * which stops the stream and is returned by nf_source_stream(). */
typedef int (*nf_sink_fn)(void *ctx, const void *buf, size_t len);

/* Opens spec: "nfs://server/export/path/file?version=3&nfsport=N&mountport=M"
 * or a local path. Returns 0, or a negative errno with a description in
 * detail (capacity detail_cap): -EINVAL (bad URL), -ENOENT, -EACCES,
 * -ECONNREFUSED / -EIO (no server), -EISDIR ... */
int nf_source_open(struct nf_source **out, const char *spec,
		   const struct nf_source_opts *opts, char *detail, size_t detail_cap);

/* The size of the source in bytes. */
uint64_t nf_source_size(const struct nf_source *s);

/* True if the source is an NFS URL. */
int nf_source_is_nfs(const struct nf_source *s);

/* True if the source is a stream: "udpcast://IPV4:PORTBASE[?if=IF]", the
 * output of udp-receiver (lib/udpcast.h). A stream's size is 0 (unknown)
 * and nf_source_pread() answers only in its first 4 MiB (-ESPIPE past
 * them); nf_source_stream() ends with -EIO when the receiver did not exit
 * cleanly (dropped by the sender, timed out), with its last message in
 * nf_source_detail(). */
int nf_source_is_stream(const struct nf_source *s);

/* Reads up to len bytes at off (short only at the end). Returns the count
 * or a negative errno. Not to be used while a stream runs. */
ssize_t nf_source_pread(struct nf_source *s, void *buf, size_t len, uint64_t off);

/* Delivers the bytes from off to the end to sink, in order. Returns 0 at the
 * end, the sink's error, -ECANCELED when opts->cancel was set, or the
 * source's error once retries are exhausted (see nf_source_detail()). */
int nf_source_stream(struct nf_source *s, uint64_t off, nf_sink_fn sink, void *ctx);

/* Reconnections made so far, and whether one is under way now (for progress). */
unsigned nf_source_reconnects(const struct nf_source *s);
int nf_source_reconnecting(const struct nf_source *s);

/* Text of the last error (from libnfs or the system); never NULL. */
const char *nf_source_detail(const struct nf_source *s);

/* Closes the source; accepts NULL. */
void nf_source_close(struct nf_source *s);

#endif
