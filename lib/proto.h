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
