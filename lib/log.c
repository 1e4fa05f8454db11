/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The log target is the one global the style allows. */
static const char *log_prog = "netflash";
static enum nf_log_level log_max = NF_LOG_INFO;
static int log_journal; /* stderr is systemd's journal stream: add <N> priorities */

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected
 * stderr to (systemd.exec(5)); only then does a "<3>" prefix mean a
 * priority (sd-daemon(3)) rather than text. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void nf_log_setup(const char *prog, enum nf_log_level max)
{
	log_prog = prog;
	log_max = max;
	log_journal = stderr_is_journal();
}

void nf_log(enum nf_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>" }; /* LOG_ERR .. LOG_DEBUG */
	char line[1024];
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so concurrent writers do not interleave. */
	fprintf(stderr, "%s%s: %s%s\n", log_journal ? prio[level] : "", log_prog, prefix[level], line);
}

const char *nf_quote(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap < 8) {
		if (cap)
			out[0] = '\0';
		return out;
	}
	out[o++] = '\'';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') ? 4 : 1;

		if (need > cap - o - 5) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

const char *nf_printable(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap == 0)
		return out;
	for (; *s && o + 1 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c != 0x7f) {
			out[o++] = (char)c;
			continue;
		}
		if (o + 5 > cap)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	out[o] = '\0';
	return out;
}

const char *nf_strerror(int neg_errno)
{
	switch (-neg_errno) {
	case EBADMSG:
		return "corrupt or truncated data";
	case EPROTO:
		return "protocol error";
	case ETIMEDOUT:
		return "timed out";
	case EMSGSIZE:
		return "too long";
	default:
		return strerror(-neg_errno);
	}
}

void nf_log_tell(int warning, const char *line)
{
	nf_log(warning ? NF_LOG_WARN : NF_LOG_INFO, "%s", line);
}
