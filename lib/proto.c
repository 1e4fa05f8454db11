/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "patch.h"
#include "strtable.h"

/* Decodes the percent-encoded [p, p+len) into out. Returns 0, -EPROTO, -EMSGSIZE. */
static int decode_value(const char *p, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3 || (hi = nf_hex_digit(p[i + 1])) < 0 || (lo = nf_hex_digit(p[i + 2])) < 0)
				return -EPROTO;
			c = (char)(hi << 4 | lo);
			if (c == '\0')
				return -EPROTO;
			i += 2;
		} else if ((unsigned char)c <= ' ' || (unsigned char)c >= 0x7f) {
			return -EPROTO;
		}
		if (o == NF_PROTO_VALUE_MAX)
			return -EMSGSIZE;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

static int parse_field(const char *p, size_t len, struct nf_msg *m)
{
	const char *eq = memchr(p, '=', len);
	struct nf_field *f;
	size_t klen;

	if (!eq || eq == p)
		return -EPROTO;
	klen = (size_t)(eq - p);
	if (klen > NF_PROTO_KEY_MAX)
		return -EPROTO;
	if (m->nfields == NF_PROTO_FIELDS_MAX)
		return -EMSGSIZE;
	f = &m->fields[m->nfields];
	for (size_t i = 0; i < klen; i++) {
		char c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return -EPROTO;
		f->key[i] = c;
	}
	f->key[klen] = '\0';
	if (nf_msg_get(m, f->key))
		return -EPROTO; /* repeated key */
	int r = decode_value(eq + 1, len - klen - 1, f->value);

	if (r < 0)
		return r;
	m->nfields++;
	return 0;
}

int nf_msg_parse(const char *line, size_t len, struct nf_msg *m)
{
	size_t i = 0, vlen = 0;

	memset(m, 0, sizeof(*m));
	if (len >= NF_PROTO_LINE_MAX)
		return -EMSGSIZE;
	if (len > 0 && line[len - 1] == '\r')
		len--; /* tolerate CRLF from hand-typed clients */
	while (i < len && line[i] >= 'A' && line[i] <= 'Z') {
		if (vlen == NF_PROTO_VERB_MAX)
			return -EPROTO;
		m->verb[vlen++] = line[i++];
	}
	if (vlen == 0 || (i < len && line[i] != ' '))
		return -EPROTO;
	while (i < len) {
		size_t start;

		if (line[i] != ' ' || i + 1 == len || line[i + 1] == ' ')
			return -EPROTO; /* exactly one space between fields, none trailing */
		start = ++i;
		while (i < len && line[i] != ' ')
			i++;
		int r = parse_field(line + start, i - start, m);

		if (r < 0)
			return r;
	}
	return 0;
}

const char *nf_msg_get(const struct nf_msg *m, const char *key)
{
	for (unsigned i = 0; i < m->nfields; i++) {
		if (strcmp(m->fields[i].key, key) == 0)
			return m->fields[i].value;
	}
	return NULL;
}

int nf_msg_get_u64(const struct nf_msg *m, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v = nf_msg_get(m, key);

	return v ? nf_parse_u64(v, min, max, out) : -ENOENT;
}

void nf_msg_init(struct nf_msg *m, const char *verb)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->verb, sizeof(m->verb), "%s", verb);
}

int nf_msg_add(struct nf_msg *m, const char *key, const char *value)
{
	struct nf_field *f;

	if (m->nfields == NF_PROTO_FIELDS_MAX)
		return -EMSGSIZE;
	f = &m->fields[m->nfields++];
	snprintf(f->key, sizeof(f->key), "%s", key);
	snprintf(f->value, sizeof(f->value), "%s", value);
	return 0;
}

int nf_msg_addf(struct nf_msg *m, const char *key, const char *fmt, ...)
{
	char v[NF_PROTO_VALUE_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	return nf_msg_add(m, key, v);
}

int nf_msg_format(const struct nf_msg *m, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (cap < NF_PROTO_LINE_MAX + 1)
		return -EMSGSIZE;
	o = (size_t)snprintf(out, cap, "%s", m->verb);
	for (unsigned i = 0; i < m->nfields; i++) {
		const struct nf_field *f = &m->fields[i];

		if (o + strlen(f->key) + 2 >= NF_PROTO_LINE_MAX)
			return -EMSGSIZE;
		o += (size_t)snprintf(out + o, cap - o, " %s=", f->key);
		for (const char *p = f->value; *p; p++) {
			unsigned char c = (unsigned char)*p;

			if (o + 4 >= NF_PROTO_LINE_MAX)
				return -EMSGSIZE;
			if (c <= ' ' || c >= 0x7f || c == '%') {
				out[o++] = '%';
				out[o++] = hex[c >> 4];
				out[o++] = hex[c & 15];
			} else {
				out[o++] = (char)c;
			}
		}
	}
	out[o++] = '\n';
	out[o] = '\0';
	return (int)o;
}

/* ---- messages described once -------------------------------------------- */

/* A field's place in its struct, and (FH) the int saying it is there. */
#define F(type, field) offsetof(type, field), sizeof(((type *)0)->field), 0
#define FH(type, field, has) offsetof(type, field), sizeof(((type *)0)->field), offsetof(type, has) + 1

static const struct nf_fspec job_fields[] = {
	{ "id", NF_FT_U64, 1, 1, UINT64_MAX, F(struct nf_job_msg, id) },
	{ "url", NF_FT_STR, 1, 0, 0, F(struct nf_job_msg, url) },
	{ "format", NF_FT_STR, 1, 0, 0, F(struct nf_job_msg, format) },
	{ "size", NF_FT_U64, 1, 1, UINT64_MAX, F(struct nf_job_msg, size) },
	{ "sha256", NF_FT_HEX, 1, 0, 0, F(struct nf_job_msg, sha256) },
	{ "image", NF_FT_STR, 0, 0, 0, F(struct nf_job_msg, image) },
	{ "disk", NF_FT_FLAG, 0, 1, 1, F(struct nf_job_msg, disk) },
	{ "patch", NF_FT_U64, 0, 1, NF_PATCH_MAX, F(struct nf_job_msg, patch) },
	{ "patch_sha256", NF_FT_HEX, 0, 0, 0, F(struct nf_job_msg, patch_sha256) },
};
const struct nf_vspec nf_job_vspec = {
	"JOB", job_fields, sizeof(job_fields) / sizeof(job_fields[0]), sizeof(struct nf_job_msg),
};

static const struct nf_fspec patch_fields[] = {
	{ "id", NF_FT_U64, 1, 1, UINT64_MAX, F(struct nf_patch_msg, id) },
	{ "off", NF_FT_U64, 1, 0, UINT64_MAX, F(struct nf_patch_msg, off) },
	{ "data", NF_FT_STR, 1, 0, 0, F(struct nf_patch_msg, data) },
};
const struct nf_vspec nf_patch_vspec = {
	"PATCH", patch_fields, sizeof(patch_fields) / sizeof(patch_fields[0]), sizeof(struct nf_patch_msg),
};

static const struct nf_fspec progress_fields[] = {
	{ "id", NF_FT_U64, 1, 1, UINT64_MAX, F(struct nf_progress_msg, id) },
	{ "stage", NF_FT_STR, 1, 0, 0, F(struct nf_progress_msg, stage) },
	{ "done", NF_FT_U64, 1, 0, UINT64_MAX, F(struct nf_progress_msg, done) },
	{ "total", NF_FT_U64, 1, 0, UINT64_MAX, F(struct nf_progress_msg, total) },
	{ "mbps", NF_FT_DEC, 0, 1, 100000, F(struct nf_progress_msg, mbps) },
};
static const struct nf_fspec done_fields[] = {
	{ "id", NF_FT_U64, 1, 1, UINT64_MAX, F(struct nf_done_msg, id) },
	{ "sha256", NF_FT_HEX, 1, 0, 0, F(struct nf_done_msg, sha256) },
	{ "bytes", NF_FT_U64, 1, 0, UINT64_MAX, F(struct nf_done_msg, bytes) },
	{ "seconds", NF_FT_DEC, 1, 3, 10000000, F(struct nf_done_msg, seconds) },
	{ "patch", NF_FT_HEX, 0, 0, 0, FH(struct nf_done_msg, patch, has_patch) },
};
static const struct nf_fspec fail_fields[] = {
	{ "id", NF_FT_U64, 1, 1, UINT64_MAX, F(struct nf_fail_msg, id) },
	{ "stage", NF_FT_STR, 1, 0, 0, F(struct nf_fail_msg, stage) },
	{ "reason", NF_FT_STR, 1, 0, 0, F(struct nf_fail_msg, reason) },
};
static const struct nf_fspec log_fields[] = {
	{ "id", NF_FT_U64, 1, 1, UINT64_MAX, F(struct nf_log_msg, id) },
	{ "line", NF_FT_STR, 1, 0, 0, F(struct nf_log_msg, line) },
};
static const struct nf_fspec card_fields[] = {
	{ "id", NF_FT_U64, 1, 1, UINT64_MAX, F(struct nf_card_msg, id) },
	{ "what", NF_FT_STR, 1, 0, 0, F(struct nf_card_msg, what) },
	{ "text", NF_FT_STR, 1, 0, 0, F(struct nf_card_msg, text) },
};
#define VSPEC(verb, fields, type) { verb, fields, sizeof(fields) / sizeof(fields[0]), sizeof(type) }
const struct nf_vspec nf_progress_vspec = VSPEC("PROGRESS", progress_fields, struct nf_progress_msg);
const struct nf_vspec nf_done_vspec = VSPEC("DONE", done_fields, struct nf_done_msg);
const struct nf_vspec nf_fail_vspec = VSPEC("FAIL", fail_fields, struct nf_fail_msg);
const struct nf_vspec nf_log_vspec = VSPEC("LOG", log_fields, struct nf_log_msg);
const struct nf_vspec nf_card_vspec = VSPEC("CARD", card_fields, struct nf_card_msg);

/* One field of a read: v is its value (NULL: absent), dst its place. */
static int read_field(const struct nf_fspec *f, const char *v, uint8_t *dst)
{
	uint64_t n;

	if (!v) {
		if (f->type == NF_FT_FLAG)
			*(int *)(void *)dst = (int)f->min;
		return f->required ? -EPROTO : 0;
	}
	switch (f->type) {
	case NF_FT_U64:
		if (nf_parse_u64(v, f->min, f->max, &n) < 0)
			return -EPROTO;
		memcpy(dst, &n, sizeof(n));
		return 0;
	case NF_FT_STR:
		if (strlen(v) >= f->cap)
			return -EPROTO;
		memcpy(dst, v, strlen(v) + 1);
		return 0;
	case NF_FT_HEX:
		return strlen(v) == 2 * f->cap && nf_parse_hex(v, dst, f->cap) == 0 ? 0 : -EPROTO;
	case NF_FT_FLAG:
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			return -EPROTO;
		*(int *)(void *)dst = v[0] == '1';
		return 0;
	case NF_FT_DEC:
		return nf_parse_decimal(v, (double)f->max, (double *)(void *)dst) == 0 ? 0 : -EPROTO;
	}
	return -EPROTO;
}

int nf_msg_read(const struct nf_msg *m, const struct nf_vspec *v, void *out)
{
	memset(out, 0, v->size);
	if (strcmp(m->verb, v->verb) != 0)
		return -EPROTO;
	for (size_t i = 0; i < v->n; i++) {
		const struct nf_fspec *f = &v->fields[i];
		const char *val = nf_msg_get(m, f->key);
		int r = read_field(f, val, (uint8_t *)out + f->off);

		if (r < 0)
			return r;
		if (f->has)
			*(int *)(void *)((uint8_t *)out + f->has - 1) = val != NULL;
	}
	return 0;
}

/* One field of a write; 0 without adding it when it is optional and empty. */
static int write_field(struct nf_msg *m, const struct nf_fspec *f, const uint8_t *src)
{
	char hex[NF_PROTO_VALUE_MAX + 1];
	uint64_t n;
	double x;
	int flag;

	switch (f->type) {
	case NF_FT_U64:
		memcpy(&n, src, sizeof(n));
		return !n && !f->required ? 0 : nf_msg_addf(m, f->key, "%llu", (unsigned long long)n);
	case NF_FT_STR:
		return !src[0] && !f->required ? 0 : nf_msg_add(m, f->key, (const char *)src);
	case NF_FT_HEX:
		if (2 * f->cap > NF_PROTO_VALUE_MAX)
			return -EMSGSIZE;
		if (f->has ? !*(const int *)(const void *)(src - f->off + f->has - 1) :
			     !f->required && src[0] == 0 && memcmp(src, src + 1, f->cap - 1) == 0)
			return 0;
		nf_format_hex(src, f->cap, hex);
		return nf_msg_add(m, f->key, hex);
	case NF_FT_FLAG:
		flag = *(const int *)(const void *)src != 0;
		return (uint64_t)flag == f->min ? 0 : nf_msg_add(m, f->key, flag ? "1" : "0");
	case NF_FT_DEC:
		memcpy(&x, src, sizeof(x));
		return x == 0 && !f->required ? 0 : nf_msg_addf(m, f->key, "%.*f", (int)f->min, x);
	}
	return -EMSGSIZE;
}

int nf_msg_write(struct nf_msg *m, const struct nf_vspec *v, const void *in)
{
	nf_msg_init(m, v->verb);
	for (size_t i = 0; i < v->n; i++) {
		int r = write_field(m, &v->fields[i], (const uint8_t *)in + v->fields[i].off);

		if (r < 0)
			return r;
	}
	return 0;
}

static const char *const stage_names[] = {
	[NF_STAGE_NONE] = "", [NF_STAGE_WRITE] = "write", [NF_STAGE_VERIFY] = "verify",
	[NF_STAGE_FINALIZE] = "finalize", [NF_STAGE_CONFIG] = "config", [NF_STAGE_NETWORK] = "network",
	[NF_STAGE_BUTTON] = "button", [NF_STAGE_TARGET] = "target", [NF_STAGE_READ_ONLY] = "read-only",
	[NF_STAGE_PROBE] = "probe", [NF_STAGE_HELLO] = "hello", [NF_STAGE_SETUP] = "setup",
	[NF_STAGE_SOURCE] = "source", [NF_STAGE_DECODE] = "decode", [NF_STAGE_PATCH] = "patch",
	[NF_STAGE_INTERRUPTED] = "interrupted", [NF_STAGE_REPORT] = "report", [NF_STAGE_FLASH] = "flash",
};

static const char *const finding_names[] = {
	[NF_CARD_IDENTITY] = "identity", [NF_CARD_PROBE] = "probe", [NF_CARD_STALL] = "stall",
	[NF_CARD_SLOW] = "slow", [NF_CARD_ZERO] = "zero",
};

NF_DEFINE_STRING_TABLE(nf_stage_name, nf_stage_parse, enum nf_stage, stage_names, "flash")
NF_DEFINE_STRING_TABLE(nf_card_finding_name, nf_card_finding_parse, enum nf_card_finding, finding_names, "identity")
