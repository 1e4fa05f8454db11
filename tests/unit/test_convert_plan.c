/* SPDX-License-Identifier: GPL-2.0-or-later */
/* image add's conversion plan (core/convert.h): the machines a master runs
 * on, from a Pi Zero 2 W to a PC. Budgets are half of each one's MemTotal as
 * Raspberry Pi OS reports it (the GPU's share already taken). */
#include "check.h"
#include "convert.h"

int main(void)
{
	static const struct {
		const char *what;
		uint64_t budget;
		unsigned cores;
		int level, forced;
		int want_level;        /* 0: lower than asked */
		unsigned want_threads;
	} t[] = {
		{ "Pi 3B+ (1 GiB, 906 MiB MemTotal)", 453ull << 20, 4, 19, 0, 19, 1 },
		{ "Pi 4 (4 GiB)", 1900ull << 20, 4, 19, 0, 19, 4 },
		{ "Pi Zero 2 W (512 MiB)", 213ull << 20, 4, 19, 0, 19, 0 },
		{ "a 256 MiB board", 120ull << 20, 4, 19, 0, 0, 0 },
		{ "this machine (24 GiB, 2 CPUs)", 12ull << 30, 2, 19, 0, 19, 2 },
		{ "level 3 on a Pi 3B+", 453ull << 20, 4, 3, 0, 3, 2 },
	};
	struct nf_convert_plan p;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		nf_convert_plan(t[i].budget, t[i].cores, t[i].level, t[i].forced, &p);
		CHECK(t[i].want_level ? p.level == t[i].want_level : p.level < t[i].level && p.lowered, "%s: level %d",
		      t[i].what, p.level);
		CHECK(p.threads == t[i].want_threads, "%s: %u threads", t[i].what, p.threads);
		CHECK(t[i].forced || (p.bytes <= t[i].budget && !p.over), "%s: %llu bytes over %llu", t[i].what,
		      (unsigned long long)p.bytes, (unsigned long long)t[i].budget);
		CHECK(p.bytes == nf_convert_memory(p.level, p.threads), "%s: bytes not the estimate", t[i].what);
	}
	nf_convert_plan(120ull << 20, 4, 19, 1, &p);
	CHECK(p.over && p.level == 19, "a forced level over budget says so");
	CHECK(nf_convert_memory(19, 2) > nf_convert_memory(19, 1) && nf_convert_memory(19, 1) > nf_convert_memory(19, 0),
	      "a worker thread costs nothing");
	CHECK(nf_convert_memory(19, 1) > nf_convert_memory(3, 1), "level 19 costs no more than level 3");
	return CHECK_DONE();
}
