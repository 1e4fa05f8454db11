/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Names of an enum's values, defined once (systemd's
 * DEFINE_STRING_TABLE_LOOKUP is the model): a table of names indexed by
 * the enum (designated initialisers; a value may have no name: NULL), and
 * the two lookups generated from it by NF_DEFINE_STRING_TABLE. */
#ifndef NETFLASH_STRTABLE_H
#define NETFLASH_STRTABLE_H

#include <errno.h>
#include <stddef.h>

/* The index of name in names (n entries; NULL entries never match), or -1. */
int nf_string_table_index(const char *const *names, size_t n, const char *name);

/* Defines, for enum type T and its table (an array of n names):
 *   const char *NAME_FN(T v)   the name of v; fallback (a string literal)
 *                              for a value out of range or without a name.
 *                              Never NULL.
 *   int PARSE_FN(const char *name, T *out)
 *                              0 with *out set, or -EINVAL for a name the
 *                              table does not have. */
#define NF_DEFINE_STRING_TABLE(NAME_FN, PARSE_FN, T, table, fallback)                                  \
	const char *NAME_FN(T v)                                                                          \
	{                                                                                                  \
		size_t i_ = (size_t)v;                                                                     \
		return i_ < sizeof(table) / sizeof((table)[0]) && (table)[i_] ? (table)[i_] : (fallback); \
	}                                                                                                  \
	int PARSE_FN(const char *name, T *out)                                                            \
	{                                                                                                  \
		int i_ = nf_string_table_index(table, sizeof(table) / sizeof((table)[0]), name);          \
		if (i_ < 0)                                                                                \
			return -EINVAL;                                                                    \
		*out = (T)i_;                                                                              \
		return 0;                                                                                  \
	}

#endif
