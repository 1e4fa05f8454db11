/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflashd's background job for the catalog (core/imgfinish.h): it runs
 * `netflash image finish NAME` for each image whose best copy is still to
 * be made, one at a time, its output in ROOT/log/image-finish.log. */
#ifndef NETFLASH_FINISHER_H
#define NETFLASH_FINISHER_H

struct daemon;

/* Called on every loop wake: reaps the running finisher, and at most every
 * FINISH_SCAN_S seconds, when none runs (in this daemon or, by its run
 * lock, another process), starts one for the first image by name that has
 * work (nf_finish_pending()). Needs d->netflash_bin; never blocks. */
void finisher_tick(struct daemon *d);

/* Stops the running finisher (SIGTERM, then reaped): the next netflashd
 * starts over from the fast copy. */
void finisher_stop(struct daemon *d);

#endif
