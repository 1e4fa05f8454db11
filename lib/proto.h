/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker <-> master wire format (docs/protocol.md): one message a line,
 * "VERB key=value ...", at most NF_PROTO_LINE_MAX bytes with the newline.
 * Values are percent-encoded: bytes outside printable ASCII, space and '%'
 * travel as %XX. Parsing is strict: anything off is -EPROTO (or -EMSGSIZE). */
#ifndef NETFLASH_PROTO_H
#define NETFLASH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define NF_PROTO_LINE_MAX 1024   /* bytes, newline included */
#define NF_PROTO_FIELDS_MAX 16
#define NF_PROTO_VERB_MAX 15
#define NF_PROTO_KEY_MAX 15
#define NF_PROTO_VALUE_MAX 512   /* decoded bytes */

struct nf_field {
	char key[NF_PROTO_KEY_MAX + 1];
	char value[NF_PROTO_VALUE_MAX + 1]; /* decoded; may not hold NUL bytes */
};

struct nf_msg {
	char verb[NF_PROTO_VERB_MAX + 1];
	unsigned nfields;
	struct nf_field fields[NF_PROTO_FIELDS_MAX];
};

/* Parses one line (without its newline; len bytes, no NUL needed). Verbs are
 * A-Z, keys a-z0-9_, each key at most once. Returns 0, -EPROTO or -EMSGSIZE. */
int nf_msg_parse(const char *line, size_t len, struct nf_msg *m);

/* The value of key, or NULL. */
const char *nf_msg_get(const struct nf_msg *m, const char *key);

/* The value of key as a number in [min, max] (the project's number parser).
 * Returns 0, -ENOENT (missing), -EINVAL or -ERANGE. */
int nf_msg_get_u64(const struct nf_msg *m, const char *key, uint64_t min, uint64_t max, uint64_t *out);

/* Starts a message in out. */
void nf_msg_init(struct nf_msg *m, const char *verb);
/* Adds key=value (value copied, cut at NF_PROTO_VALUE_MAX). Returns 0 or -EMSGSIZE. */
int nf_msg_add(struct nf_msg *m, const char *key, const char *value);
int nf_msg_addf(struct nf_msg *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Formats m as one line with its newline into out (capacity >= NF_PROTO_LINE_MAX + 1).
 * Returns the length, or -EMSGSIZE when it would exceed NF_PROTO_LINE_MAX. */
int nf_msg_format(const struct nf_msg *m, char *out, size_t cap);

/* ---- messages described once -------------------------------------------
 * A verb's fields as a table that both sides use: the sender fills a
 * struct and nf_msg_write() makes the message, the receiver gets the same
 * struct back from nf_msg_read(). Keys not in the table are ignored when
 * reading (an older peer meets a newer one). */
enum nf_ftype {
	NF_FT_U64,  /* uint64_t, decimal in [min, max]; optional: 0 when absent,
		     * not written when 0 */
	NF_FT_STR,  /* char[cap], any text up to cap - 1 bytes (longer is
		     * -EPROTO); optional: "" when absent, not written when "" */
	NF_FT_HEX,  /* uint8_t[cap], exactly 2 * cap hex digits; optional:
		     * zeros when absent, not written when all zero */
	NF_FT_FLAG, /* int, "0" or "1"; absent means min (its default), and
		     * it is written only when it differs from it */
	NF_FT_DEC,  /* double, a decimal in [0, max] (nf_parse_decimal), written
		     * with min digits after the point; optional: 0 when
		     * absent, not written when 0 */
};

struct nf_fspec {
	const char *key;
	enum nf_ftype type;
	int required;      /* reading: missing is -EPROTO */
	uint64_t min, max; /* NF_FT_U64 bounds; NF_FT_FLAG: min is the default */
	size_t off, cap;   /* the field in the struct: offsetof, sizeof */
	size_t has;        /* optional NF_FT_HEX: 1 + offsetof an int that says
			    * whether it is there (read) and is to be written
			    * (write), zeros or not; 0: none, all zeros mean
			    * absent */
};

struct nf_vspec {
	const char *verb;
	const struct nf_fspec *fields;
	size_t n;
	size_t size;       /* of the struct */
};

/* Reads m (whose verb must be v's) into out, the struct v describes:
 * zeroed first, then each field of the table. Returns 0, or -EPROTO for a
 * wrong verb, a missing required field or a value out of its type or
 * bounds. */
int nf_msg_read(const struct nf_msg *m, const struct nf_vspec *v, void *out);

/* Makes m (verb and fields, in table order) from in, the struct v
 * describes; optional fields at their empty value are left out. Returns 0
 * or -EMSGSIZE. */
int nf_msg_write(struct nf_msg *m, const struct nf_vspec *v, const void *in);

/* JOB: the master's answer to a HELLO it has a job for. */
struct nf_job_msg {
	uint64_t id;                          /* the job, >= 1 */
	char url[NF_PROTO_VALUE_MAX + 1];     /* nfs://SERVER/EXPORT/FILE?... */
	char format[16];                      /* raw, gzip, xz, zstd */
	uint64_t size;                        /* the decoded image, bytes */
	uint8_t sha256[32];                   /* of the decoded image */
	char image[NF_PROTO_VALUE_MAX + 1];   /* its catalog name; optional */
	int disk;                             /* 0: added with --not-a-disk (1 when absent) */
	uint64_t patch;                       /* provisioning patch bytes; 0: none */
	uint8_t patch_sha256[32];             /* its digest (nf_patch_digest), with patch */
};
extern const struct nf_vspec nf_job_vspec;

/* PATCH: one line of a JOB's provisioning patch. */
struct nf_patch_msg {
	uint64_t id;                          /* the JOB's id */
	uint64_t off;                         /* card offset of these bytes */
	char data[NF_PROTO_VALUE_MAX + 1];    /* hex, at most NF_PATCH_LINE bytes */
};
extern const struct nf_vspec nf_patch_vspec;

/* The worker's messages about its job: each starts with the JOB's id,
 * which the master checks against the connection's job in one place. */

/* PROGRESS: how far the flash is. */
struct nf_progress_msg {
	uint64_t id;
	char stage[16];                       /* write, verify, finalize */
	uint64_t done, total;                 /* bytes */
	double mbps;                          /* optional */
};
extern const struct nf_vspec nf_progress_vspec;

/* DONE: the image is on the card and verified. */
struct nf_done_msg {
	uint64_t id;
	uint8_t sha256[32];                   /* of what the worker decoded and wrote */
	uint64_t bytes;
	double seconds;
	uint8_t patch[32];                    /* the provisioning patch's digest */
	int has_patch;                        /* patch= was (is to be) sent */
};
extern const struct nf_vspec nf_done_vspec;

/* FAIL: the job failed at a stage. */
struct nf_fail_msg {
	uint64_t id;
	char stage[16];
	char reason[NF_PROTO_VALUE_MAX + 1];
};
extern const struct nf_vspec nf_fail_vspec;

/* LOG: a line of the worker's console. */
struct nf_log_msg {
	uint64_t id;
	char line[NF_PROTO_VALUE_MAX + 1];
};
extern const struct nf_vspec nf_log_vspec;

/* CARD: a card-health finding. */
struct nf_card_msg {
	uint64_t id;
	char what[16];                        /* nf_card_finding_name() */
	char text[NF_PROTO_VALUE_MAX + 1];
};
extern const struct nf_vspec nf_card_vspec;

/* Where a flash is (PROGRESS stage=) or where a worker's job failed (FAIL
 * stage=); each has one name on the wire (docs/protocol.md). */
enum nf_stage {
	NF_STAGE_NONE,        /* "": no progress reported yet */
	NF_STAGE_WRITE,       /* progress: writing */
	NF_STAGE_VERIFY,      /* progress: reading back */
	NF_STAGE_FINALIZE,    /* progress: the provisioning patch, the last sync */
	NF_STAGE_CONFIG,      /* flasher-init: a bad kernel command line */
	NF_STAGE_NETWORK,     /* flasher-init: no interface or no lease (console only) */
	NF_STAGE_BUTTON,      /* flasher-init: the start button cannot be read */
	NF_STAGE_TARGET,      /* the card is missing or cannot be opened */
	NF_STAGE_READ_ONLY,   /* the card is write-protected: the worker is marked failed */
	NF_STAGE_PROBE,       /* the fake-capacity probe failed: marked failed */
	NF_STAGE_HELLO,       /* the master did not give the job */
	NF_STAGE_SETUP,       /* the engine could not start */
	NF_STAGE_SOURCE,      /* reading the image failed */
	NF_STAGE_DECODE,      /* the image is damaged */
	NF_STAGE_PATCH,       /* the provisioning patch could not be applied */
	NF_STAGE_INTERRUPTED, /* a signal stopped the flash */
	NF_STAGE_REPORT,      /* the master could not be told */
	NF_STAGE_FLASH,       /* the engine failed without naming a stage */
};
/* The wire name ("write", "read-only", ...; "" for NONE). Never NULL. */
const char *nf_stage_name(enum nf_stage s);
/* Parses a wire name. Returns 0 or -EINVAL. */
int nf_stage_parse(const char *name, enum nf_stage *out);

/* What a CARD line reports (CARD what=). */
enum nf_card_finding {
	NF_CARD_IDENTITY, /* CID, CSD, name, serial, manufacturer, date, size */
	NF_CARD_PROBE,    /* the fake-capacity probe's verdict */
	NF_CARD_STALL,    /* a write took longer than the watchdog's limit */
	NF_CARD_SLOW,     /* the card wrote slower than the floor */
	NF_CARD_ZERO,     /* ranges made without writing (DISCARD, erase) kept
			   * old data: rewritten, zeros written from then on */
};
const char *nf_card_finding_name(enum nf_card_finding f);
int nf_card_finding_parse(const char *name, enum nf_card_finding *out);

#endif
