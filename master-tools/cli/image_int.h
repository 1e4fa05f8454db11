/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What netflash image's add and finish share (cmd_image.c, image_finish.c). */
#ifndef NETFLASH_IMAGE_INT_H
#define NETFLASH_IMAGE_INT_H

#include <stdint.h>

#include "convert.h"

struct master;

/* The conversion's level and workers for this machine: at most half its
 * MemTotal (or max_memory bytes when not 0), as many workers as CPUs that
 * fit (half: as many as half the CPUs, at least one: the fast copy's
 * compressor leaves the decoder the rest; on 2 cores one worker made the
 * 1 GiB bench image flashable in 3.9 s, two in 4.3 s, xz -T2 -dc alone
 * 2.9 s), the level lowered to fit unless forced. Says what it chose in
 * one line; fills p. */
void image_plan_conversion(int level, int forced, uint64_t max_memory, int half, struct nf_convert_plan *p);

/* netflash image finish NAME: makes the manifest's finish_level copy from
 * the fast one, checks it decodes to the manifest's SHA-256, swaps it in
 * under the state lock, then removes the fast copy once no running job
 * reads it. Progress in ROOT/state/finish/NAME.json. Returns the exit
 * status (0 also when there is nothing to do). */
int image_finish(struct master *m, const char *name, uint64_t max_memory);

#endif
