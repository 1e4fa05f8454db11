/* The master's state: enrollments and their history, in SQLite (WAL), shared
 * by the CLI and netflashd. */
#ifndef NETFLASH_STORE_H
#define NETFLASH_STORE_H

#include <stdint.h>

#include "manifest.h"

#define NF_TOKEN_HEX 32
#define NF_HOSTNAME_MAX 63
#define NF_SSHKEY_MAX 8192

struct enrollment {
	char mac[18];
	char image[NF_NAME_MAX + 1];
	char hostname[NF_HOSTNAME_MAX + 1];
	char token[NF_TOKEN_HEX + 1];
	char state[16];              /* enrolled, released, failed */
	char ssh_key[NF_SSHKEY_MAX + 1];
	unsigned attempts;
	char last_error[256];
	int64_t enrolled_at, updated_at;
};

struct store;

/* Opens (creating) the database at path. Returns 0 or -errno/-EIO. */
int store_open(struct store **out, const char *path);
void store_close(struct store *s);

/* Inserts or replaces the enrollment of e->mac. Returns 0 or -EIO. */
int store_put(struct store *s, const struct enrollment *e);
/* Looks up mac. Returns 0, -ENOENT or -EIO. */
int store_get(struct store *s, const char *mac, struct enrollment *e);
/* Sets the state (and last error, may be NULL) of mac. Returns 0, -ENOENT, -EIO. */
int store_set_state(struct store *s, const char *mac, const char *state, const char *error);
/* Appends an event to mac's history. Returns 0 or -EIO. */
int store_event(struct store *s, const char *mac, const char *event, const char *detail);
/* Calls fn for each enrollment, by MAC. Returns 0 or -EIO. */
int store_each(struct store *s, int (*fn)(const struct enrollment *e, void *ctx), void *ctx);
/* Counts enrollments in state "enrolled" that use image. Returns >= 0 or -EIO. */
int store_image_users(struct store *s, const char *image);

#endif
