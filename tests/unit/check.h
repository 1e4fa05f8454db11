/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tiny test harness: CHECK records a failure and goes on; main returns the count. */
#ifndef NETFLASH_CHECK_H
#define NETFLASH_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			check_failures++;                                       \
			fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

#define CHECK_DONE()                                                            \
	(check_failures ? (fprintf(stderr, "%d check(s) failed\n", check_failures), 1) \
			: (printf("all checks passed\n"), 0))

#endif
