#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
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
