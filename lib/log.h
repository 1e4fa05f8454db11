/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging for netflash programs: one target (stderr by default), levels,
 * and a quoting helper for untrusted strings. Only top-level code logs. */
#ifndef NETFLASH_LOG_H
#define NETFLASH_LOG_H

#include <stddef.h>

enum nf_log_level { NF_LOG_ERR, NF_LOG_WARN, NF_LOG_INFO, NF_LOG_DEBUG };

/* Sets the program name printed before each line and the highest level shown. */
void nf_log_setup(const char *prog, enum nf_log_level max);

/* Prints one line "prog: [level: ]message" to stderr. */
void nf_log(enum nf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define nf_err(...)  nf_log(NF_LOG_ERR, __VA_ARGS__)
#define nf_warn(...) nf_log(NF_LOG_WARN, __VA_ARGS__)
#define nf_info(...) nf_log(NF_LOG_INFO, __VA_ARGS__)

/* Logs a line a library handed over (struct master's tell): as a
 * warning, or as information. */
void nf_log_tell(int warning, const char *line);
#define nf_dbg(...)  nf_log(NF_LOG_DEBUG, __VA_ARGS__)

/* Writes s into out (capacity cap, always NUL-terminated) with non-printable
 * bytes, quotes and backslashes escaped as \xNN; cut with "..." if too long.
 * Returns out, so it can be used inline in a log call. */
const char *nf_quote(char *out, size_t cap, const char *s);

/* s with control bytes (below 0x20, and 0x7f) as \xNN, cut to fit cap, for
 * table cells: a string from a worker or the database can carry no terminal
 * escape to the screen. Everything else (quotes, UTF-8) is kept. */
const char *nf_printable(char *out, size_t cap, const char *s);

/* Like strerror() for a negative errno, with project-specific wording for
 * the errno values the project reuses (EBADMSG: corrupt data, ...). Not
 * for ENOSPC: a full disk is a full disk; the engine says "the image does
 * not fit" itself where it means that. */
const char *nf_strerror(int neg_errno);

#endif
