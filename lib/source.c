/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Must precede libnfs.h, which uses struct timeval without including it. */
#include <sys/time.h>

#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <nfsc/libnfs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "udpcast.h"

#define FILE_READ_SIZE (1u << 20)
#define NFS_MAX_DEPTH 16
/* The xz threaded decoder takes a whole block's input at once when a
 * thread frees up (about 1.7 MiB for pi-gen's 24 MiB blocks), so the reader
 * must run well ahead: 2 reads in flight left it waiting on the network
 * after each burst (worker_bench: 4.6 s vs 3.8 s with 8, 1 GiB pi-gen xz). */
#define NFS_DEFAULT_DEPTH 8
/* libnfs holds a reply buffer per read in flight and we copy each into a
 * slot: 512 KiB reads keep both small (RSS budget) and are plenty for a LAN. */
#define NFS_MAX_READ (512u << 10)
#define DETAIL_CAP 256
/* A stream (udpcast) answers positioned reads only in its first bytes,
 * kept for the engine's format and head checks. */
#define STREAM_HEAD_MAX (4u << 20)
/* udp-receiver: how long it waits for the sender to start when the URL
 * does not say (the master gathers a session's workers first and says
 * start=: docs/multicast.md), and for data once the transfer runs. */
#define UDPCAST_START_S 600
#define UDPCAST_IDLE_S 30

struct slot {
	uint8_t *buf;
	uint64_t off;
	size_t want, got;
	int state; /* SLOT_* */
	int err;
	struct nf_source *src;
	unsigned generation; /* which connection issued it */
};

enum { SLOT_FREE, SLOT_PENDING, SLOT_DONE, SLOT_ERR };

struct nf_source {
	struct nf_source_opts opts;
	uint64_t size;
	char detail[DETAIL_CAP];
	atomic_uint reconnects;
	atomic_int reconnecting;
	/* file */
	int fd;
	/* nfs */
	char *url;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	size_t readmax;
	unsigned generation;
	struct slot slots[NFS_MAX_DEPTH];
	/* stream: a child's output (udp-receiver) */
	pid_t child;
	int out_fd, err_fd;
	uint8_t *head;
	size_t head_len;        /* bytes in head (STREAM_HEAD_MAX, once made) */
	char err_tail[160];
	int stream_end;
};

static void set_detail(struct nf_source *s, const char *what, const char *why)
{
	snprintf(s->detail, sizeof(s->detail), "%s: %s", what, why ? why : "connection lost");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cancelled(const struct nf_source *s)
{
	return s->opts.cancel && atomic_load(s->opts.cancel);
}

/* ---- local file ---------------------------------------------------------- */

static int file_open(struct nf_source *s, const char *path)
{
	struct stat st;

	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	if (fstat(s->fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(s->fd, BLKGETSIZE64, &s->size) < 0)
			return -errno;
	} else if (S_ISREG(st.st_mode)) {
		s->size = (uint64_t)st.st_size;
	} else {
		return -EINVAL;
	}
	posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

static int file_stream(struct nf_source *s, uint64_t off, nf_sink_fn sink, void *ctx)
{
	uint8_t *buf = malloc(FILE_READ_SIZE);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (off < s->size) {
		ssize_t n = pread(s->fd, buf, FILE_READ_SIZE, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			set_detail(s, "read", n < 0 ? strerror(errno) : "file shrank while reading");
			break;
		}
		if (cancelled(s)) {
			r = -ECANCELED;
			break;
		}
		r = sink(ctx, buf, (size_t)n);
		if (r < 0)
			break;
		off += (uint64_t)n;
	}
	free(buf);
	return r;
}

/* ---- NFS ------------------------------------------------------------------ */

/* Ends the session. Closing a read-only NFSv3 handle only frees memory, so it
 * is safe on a dead session too (run under ASan after server kills); we never
 * unmount, which needs the server (DESIGN.md saw crashes there). */
static void nfs_drop(struct nf_source *s)
{
	struct nfs_context *nfs = s->nfs;

	if (nfs && s->fh)
		nfs_close(nfs, s->fh);

	/* Callbacks run from inside destroy for requests still in flight:
	 * the new generation makes read_cb ignore them. */
	s->generation++;
	s->nfs = NULL;
	s->fh = NULL;
	if (nfs)
		nfs_destroy_context(nfs);
}

static int nfs_connect(struct nf_source *s)
{
	struct nfs_url *u = NULL;
	struct nfs_stat_64 st;
	int r;

	s->nfs = nfs_init_context();
	if (!s->nfs) {
		set_detail(s, "nfs", "cannot create context");
		return -ENOMEM;
	}
	nfs_set_timeout(s->nfs, (int)s->opts.timeout_seconds * 1000);
	/* We reconnect ourselves, with a deadline, and resume where we were. */
	nfs_set_autoreconnect(s->nfs, 0);
	u = nfs_parse_url_full(s->nfs, s->url);
	if (!u || !u->server || !u->file) {
		set_detail(s, "invalid NFS URL", u ? "no file in path" : nfs_get_error(s->nfs));
		r = -EINVAL;
		goto out;
	}
	r = nfs_mount(s->nfs, u->server, u->path && *u->path ? u->path : "/");
	if (r < 0) {
		set_detail(s, "mount", nfs_get_error(s->nfs));
		goto out;
	}
	r = nfs_open(s->nfs, u->file, O_RDONLY, &s->fh);
	if (r < 0) {
		set_detail(s, "open", nfs_get_error(s->nfs));
		goto out;
	}
	r = nfs_fstat64(s->nfs, s->fh, &st);
	if (r < 0) {
		set_detail(s, "stat", nfs_get_error(s->nfs));
		goto out;
	}
	if ((st.nfs_mode & S_IFMT) == S_IFDIR) {
		r = -EISDIR;
		set_detail(s, "open", "is a directory");
		goto out;
	}
	s->size = st.nfs_size;
	s->readmax = nfs_get_readmax(s->nfs);
	if (s->readmax > NFS_MAX_READ)
		s->readmax = NFS_MAX_READ;
	if (s->readmax < 4096)
		s->readmax = 4096;
out:
	if (u)
		nfs_destroy_url(u);
	if (r < 0)
		nfs_drop(s);
	return r < 0 ? r : 0;
}

/* Reconnects with exponential backoff until opts.retry_seconds have passed.
 * The file must still have the same size: a changed image is not resumed. */
static int nfs_reconnect(struct nf_source *s)
{
	double deadline = now_s() + s->opts.retry_seconds;
	unsigned delay_ms = 250;
	uint64_t old_size = s->size;
	int r = -EIO;

	nfs_drop(s);
	atomic_store(&s->reconnecting, 1);
	while (!cancelled(s)) {
		r = nfs_connect(s);
		if (r == 0) {
			if (s->size != old_size) {
				set_detail(s, "reconnect", "the image changed size on the server");
				nfs_drop(s);
				r = -ESTALE;
			}
			break;
		}
		if (r == -ENOENT || r == -EINVAL || now_s() + delay_ms / 1000.0 > deadline)
			break;
		usleep(delay_ms * 1000);
		if (delay_ms < 4000)
			delay_ms *= 2;
	}
	if (cancelled(s))
		r = -ECANCELED;
	atomic_store(&s->reconnecting, 0);
	if (r == 0)
		atomic_fetch_add(&s->reconnects, 1);
	return r;
}

static void read_cb(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct slot *sl = priv;

	(void)nfs;
	if (sl->state != SLOT_PENDING || sl->generation != sl->src->generation)
		return; /* a request of a dropped connection */
	if (err < 0) {
		sl->err = err;
		sl->state = SLOT_ERR;
		if (data)
			set_detail(sl->src, "read", data);
		return;
	}
	if ((size_t)err > sl->want)
		err = (int)sl->want;
	memcpy(sl->buf, data, (size_t)err);
	sl->got = (size_t)err;
	sl->state = SLOT_DONE;
}

struct nfs_stream {
	uint64_t pos;      /* next byte to deliver */
	uint64_t issue;    /* next byte to request */
	unsigned first, n; /* slot ring: oldest in-flight index, count */
	int draining;      /* after a short read: let requests finish, discard them */
	int sink_err;      /* the sink's error: ends the stream, never retried */
};

static int issue_reads(struct nf_source *s, struct nfs_stream *st, unsigned depth)
{
	while (!st->draining && st->n < depth && st->issue < s->size) {
		struct slot *sl = &s->slots[(st->first + st->n) % depth];
		uint64_t left = s->size - st->issue;

		sl->off = st->issue;
		sl->want = left < s->readmax ? (size_t)left : s->readmax;
		sl->got = 0;
		sl->state = SLOT_PENDING;
		sl->generation = s->generation;
		if (nfs_pread_async(s->nfs, s->fh, sl->off, sl->want, read_cb, sl) < 0) {
			sl->state = SLOT_FREE;
			set_detail(s, "read", nfs_get_error(s->nfs));
			return -EIO;
		}
		st->issue += sl->want;
		st->n++;
	}
	return 0;
}

/* Hands the oldest completed read to the sink. Returns 1 if one was
 * delivered, 0 if it is still pending, or a negative errno. */
static int deliver(struct nf_source *s, struct nfs_stream *st, unsigned depth,
		   nf_sink_fn sink, void *ctx)
{
	struct slot *sl = &s->slots[st->first];
	int r = 0;

	if (st->n == 0 || sl->state == SLOT_PENDING)
		return 0;
	if (sl->state == SLOT_ERR)
		return sl->err;
	if (!st->draining) {
		if (sl->got == 0) {
			set_detail(s, "read", "file shrank on the server");
			return -EIO;
		}
		r = sink(ctx, sl->buf, sl->got);
		if (r < 0) {
			st->sink_err = r;
			return r;
		}
		st->pos += sl->got;
		/* A short read is legal NFS: re-request the rest once the
		 * requests after it have drained. */
		if (sl->got < sl->want)
			st->draining = 1;
	}
	sl->state = SLOT_FREE;
	st->first = (st->first + 1) % depth;
	st->n--;
	if (st->draining && st->n == 0) {
		st->draining = 0;
		st->issue = st->pos;
	}
	return 1;
}

static int nfs_wait(struct nf_source *s)
{
	struct pollfd pfd = { .fd = nfs_get_fd(s->nfs), .events = (short)nfs_which_events(s->nfs) };
	int n = poll(&pfd, 1, 100);

	if (n < 0 && errno != EINTR)
		return -errno;
	/* Called with no events too: libnfs checks its timeouts here. */
	if (nfs_service(s->nfs, n > 0 ? pfd.revents : 0) < 0) {
		set_detail(s, "connection", nfs_get_error(s->nfs));
		return -EIO;
	}
	return 0;
}

static int nfs_stream(struct nf_source *s, uint64_t off, nf_sink_fn sink, void *ctx)
{
	unsigned depth = s->opts.nfs_depth;
	struct nfs_stream st = { .pos = off, .issue = off };
	int r = 0;

	for (unsigned i = 0; i < depth; i++) {
		s->slots[i].src = s;
		s->slots[i].buf = malloc(NFS_MAX_READ);
		if (!s->slots[i].buf)
			return -ENOMEM;
	}
	while (st.pos < s->size) {
		if (cancelled(s))
			return -ECANCELED;
		r = s->nfs ? issue_reads(s, &st, depth) : -EIO;
		if (r == 0) {
			while ((r = deliver(s, &st, depth, sink, ctx)) == 1)
				;
		}
		if (r == 0)
			r = nfs_wait(s);
		if (r == 0)
			continue;
		if (st.sink_err || r == -ENOMEM)
			return r;
		/* The session is broken (server gone, timeout, stale handle):
		 * start over at the first undelivered byte. */
		r = nfs_reconnect(s);
		if (r < 0)
			return r;
		for (unsigned i = 0; i < depth; i++)
			s->slots[i].state = SLOT_FREE;
		st.first = st.n = 0;
		st.draining = 0;
		st.issue = st.pos;
	}
	return 0;
}

/* ---- stream: udp-receiver's output ------------------------------------------ */

static int stream_open(struct nf_source *s, const char *url)
{
	struct nf_udpcast_url u;
	char why[200];
	int r;

	if ((r = nf_udpcast_parse(url, &u, why, sizeof(why))) < 0 ||
	    (r = nf_udpcast_pick_interface(&u, why, sizeof(why))) < 0) {
		set_detail(s, url, why);
		return r;
	}
	pid_t pid = nf_udpcast_receive(&u, u.start_s ? u.start_s : UDPCAST_START_S, UDPCAST_IDLE_S, &s->out_fd,
				       &s->err_fd, why, sizeof(why));
	if (pid < 0) {
		set_detail(s, url, why);
		return (int)pid;
	}
	s->child = pid;
	return 0;
}

/* Keeps the last line udp-receiver wrote on its standard error. */
static void stream_drain_err(struct nf_source *s)
{
	char buf[512];
	ssize_t n;

	while (s->err_fd >= 0 && (n = read(s->err_fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		char *save = NULL;

		for (char *line = strtok_r(buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
			if (strspn(line, " \t") != strlen(line))
				snprintf(s->err_tail, sizeof(s->err_tail), "%s", line);
	}
}

/* The child's end: 0 when it exited 0, else -EIO with what it said in
 * s->detail. */
static int stream_reap(struct nf_source *s)
{
	char why[240];
	int st = 0;

	if (s->child <= 0)
		return 0;
	while (waitpid(s->child, &st, 0) < 0 && errno == EINTR)
		;
	s->child = 0;
	stream_drain_err(s);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st))
		snprintf(why, sizeof(why), "exited with status %d (%s)", WEXITSTATUS(st),
			 s->err_tail[0] ? s->err_tail : "dropped by the sender, or no sender");
	else
		snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(st));
	set_detail(s, "udp-receiver", why);
	return -EIO;
}

/* Reads up to len bytes of the child's output, waiting for them. Returns
 * the count, 0 at its end (after a clean exit), or -errno. */
static ssize_t stream_read(struct nf_source *s, void *buf, size_t len)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = s->out_fd, .events = POLLIN }, { .fd = s->err_fd, .events = POLLIN } };
		ssize_t n;

		if (s->stream_end)
			return 0;
		if (cancelled(s))
			return -ECANCELED;
		n = read(s->out_fd, buf, len);
		if (n > 0)
			return n;
		if (n == 0) {
			int r = stream_reap(s);

			s->stream_end = 1;
			return r;
		}
		if (errno != EAGAIN && errno != EINTR) {
			set_detail(s, "udp-receiver", strerror(errno));
			return -errno;
		}
		if (poll(p, s->err_fd >= 0 ? 2 : 1, 500) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents & POLLIN)
			stream_drain_err(s);
		else if (p[1].revents & (POLLHUP | POLLERR)) {
			close(s->err_fd);
			s->err_fd = -1;
		}
	}
}

/* Makes the first want bytes (at most STREAM_HEAD_MAX) readable by
 * position. Returns 0 (fewer only at the stream's end) or -errno. */
static int stream_head(struct nf_source *s, size_t want)
{
	if (want > STREAM_HEAD_MAX)
		want = STREAM_HEAD_MAX;
	if (!s->head && !(s->head = malloc(STREAM_HEAD_MAX)))
		return -ENOMEM;
	while (s->head_len < want) {
		ssize_t n = stream_read(s, s->head + s->head_len, want - s->head_len);

		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		s->head_len += (size_t)n;
	}
	return 0;
}

static ssize_t stream_pread(struct nf_source *s, void *buf, size_t len, uint64_t off)
{
	int r;

	if (off >= STREAM_HEAD_MAX) {
		set_detail(s, "read", "a stream answers reads by position only in its first 4 MiB");
		return -ESPIPE;
	}
	if ((r = stream_head(s, (size_t)off + len)) < 0)
		return r;
	if (off >= s->head_len)
		return 0;
	if (len > s->head_len - off)
		len = s->head_len - (size_t)off;
	memcpy(buf, s->head + off, len);
	return (ssize_t)len;
}

static int stream_stream(struct nf_source *s, uint64_t off, nf_sink_fn sink, void *ctx)
{
	uint8_t *buf;
	int r = 0;

	if (off > s->head_len) {
		set_detail(s, "stream", "cannot start a stream past the bytes it has read");
		return -ESPIPE;
	}
	if (off < s->head_len && (r = sink(ctx, s->head + off, s->head_len - (size_t)off)) < 0)
		return r;
	if (!(buf = malloc(FILE_READ_SIZE)))
		return -ENOMEM;
	for (;;) {
		ssize_t n = stream_read(s, buf, FILE_READ_SIZE);

		if (n <= 0) {
			r = (int)n;
			break;
		}
		if ((r = sink(ctx, buf, (size_t)n)) < 0)
			break;
	}
	free(buf);
	return r;
}

/* ---- public --------------------------------------------------------------- */

int nf_source_open(struct nf_source **out, const char *spec,
		   const struct nf_source_opts *opts, char *detail, size_t detail_cap)
{
	struct nf_source *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->opts = *opts;
	if (s->opts.nfs_depth == 0)
		s->opts.nfs_depth = NFS_DEFAULT_DEPTH;
	if (s->opts.nfs_depth > NFS_MAX_DEPTH)
		s->opts.nfs_depth = NFS_MAX_DEPTH;
	if (s->opts.timeout_seconds == 0)
		s->opts.timeout_seconds = 10;
	s->out_fd = s->err_fd = -1;
	if (strncmp(spec, "nfs://", 6) == 0) {
		s->url = strdup(spec);
		r = s->url ? nfs_connect(s) : -ENOMEM;
	} else if (strncmp(spec, NF_UDPCAST_SCHEME, strlen(NF_UDPCAST_SCHEME)) == 0) {
		r = stream_open(s, spec);
	} else {
		r = file_open(s, spec);
		if (r < 0)
			set_detail(s, "open", strerror(-r));
	}
	if (r < 0) {
		snprintf(detail, detail_cap, "%s", s->detail);
		nf_source_close(s);
		return r;
	}
	*out = s;
	return 0;
}

uint64_t nf_source_size(const struct nf_source *s)
{
	return s->size;
}

int nf_source_is_nfs(const struct nf_source *s)
{
	return s->url != NULL;
}

int nf_source_is_stream(const struct nf_source *s)
{
	return s->out_fd >= 0 || s->child > 0 || s->stream_end;
}

ssize_t nf_source_pread(struct nf_source *s, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	if (nf_source_is_stream(s))
		return stream_pread(s, buf, len, off);
	if (off >= s->size)
		return 0;
	if (len > s->size - off)
		len = (size_t)(s->size - off);
	while (done < len) {
		ssize_t n;
		int r;

		if (s->url) {
			size_t want = len - done < s->readmax ? len - done : s->readmax;

			n = s->nfs ? nfs_pread(s->nfs, s->fh, off + done, want, (uint8_t *)buf + done) : -EIO;
			if (n < 0) {
				set_detail(s, "read", s->nfs ? nfs_get_error(s->nfs) : "not connected");
				r = nfs_reconnect(s);
				if (r < 0)
					return r;
				continue;
			}
		} else {
			n = pread(s->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int nf_source_stream(struct nf_source *s, uint64_t off, nf_sink_fn sink, void *ctx)
{
	if (nf_source_is_stream(s))
		return stream_stream(s, off, sink, ctx);
	return s->url ? nfs_stream(s, off, sink, ctx) : file_stream(s, off, sink, ctx);
}

unsigned nf_source_reconnects(const struct nf_source *s)
{
	return atomic_load(&s->reconnects);
}

int nf_source_reconnecting(const struct nf_source *s)
{
	return atomic_load(&s->reconnecting);
}

const char *nf_source_detail(const struct nf_source *s)
{
	return s->detail[0] ? s->detail : "no error";
}

void nf_source_close(struct nf_source *s)
{
	if (!s)
		return;
	nfs_drop(s);
	for (unsigned i = 0; i < NFS_MAX_DEPTH; i++)
		free(s->slots[i].buf);
	if (s->fd >= 0)
		close(s->fd);
	if (s->child > 0) {
		kill(s->child, SIGTERM);
		while (waitpid(s->child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (s->out_fd >= 0)
		close(s->out_fd);
	if (s->err_fd >= 0)
		close(s->err_fd);
	free(s->head);
	free(s->url);
	free(s);
}
