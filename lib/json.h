/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Minimal JSON output helpers (we only ever write JSON, never parse it). */
#ifndef NETFLASH_JSON_H
#define NETFLASH_JSON_H

#include <stddef.h>

/* Writes s as a JSON string literal (with quotes) into out, escaping quotes,
 * backslashes and control bytes; bytes >= 0x80 are escaped as \u00XX so the
 * output is ASCII whatever s holds. Cut to fit cap. Returns out. */
const char *nf_json_str(char *out, size_t cap, const char *s);

#endif
