/* The FAT boot partition of a catalog image, as the master reads it with
 * mtools (nothing is mounted), and the child processes that reading needs. */
#ifndef NETFLASH_BOOTPART_H
#define NETFLASH_BOOTPART_H

#include <stddef.h>
#include <stdint.h>

struct master;
struct nf_manifest;

/* Runs argv (PATH lookup) and waits. out_path: its stdout goes there (NULL:
 * inherited); stderr is inherited unless quiet. Returns 0 when it exited
 * 0, -EIO when it failed, or -errno when it could not start. */
int master_run(char *const argv[], const char *out_path, int quiet);

/* master_run() with input (a NUL-terminated text, at most 4 KiB, so it fits
 * a pipe's buffer) on the program's stdin: for secrets that must not be on
 * its command line, where every local user sees them in ps. */
int master_run_input(char *const argv[], const char *out_path, int quiet, const char *input);

/* Finds the first FAT partition of the image and writes its bytes to
 * out_path (sparse: zero blocks become holes; mode 0600), with its byte
 * offset and length in the image. Returns 0, or -errno with a one-line
 * reason in detail: -EBADMSG (no MBR with a FAT partition), the decoder's
 * errors. */
int master_boot_partition(const struct master *m, const struct nf_manifest *man, const char *out_path,
			  uint64_t *off, uint64_t *len, char *detail, size_t cap);

#endif
