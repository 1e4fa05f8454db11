/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cloud-init's network-config for a worker given Wi-Fi settings: the
 * image's own (its wired interfaces kept: a worker netboots by Ethernet, so
 * it is wired; raspberrypi/rpi-imager#512, #571) with our wlan0 added,
 * parsed and written with libyaml. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "provision_int.h"

/* The value node of key in mapping node m of d, or NULL. */
static yaml_node_t *get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);

		if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* Bounds on a copy: an alias is a node id, so "&a [*a]" is a cycle and
 * nine lists of nine aliases are 9^9 nodes once copied ("billion laughs").
 * A real network-config has tens of nodes. */
#define COPY_DEPTH_MAX 32
#define COPY_NODES_MAX 10000

struct copy_budget {
	unsigned nodes;
	int over; /* set when a bound stopped the copy */
};

/* Copies node n of src into dst, at most COPY_DEPTH_MAX levels deep and
 * COPY_NODES_MAX nodes in all (b counts them); returns its id in dst, or 0
 * (out of memory, or a bound: b->over set). */
static int copy(yaml_document_t *dst, yaml_document_t *src, yaml_node_t *n, int depth, struct copy_budget *b)
{
	int id = 0;

	if (!n)
		return 0;
	if (depth > COPY_DEPTH_MAX || b->nodes++ >= COPY_NODES_MAX) {
		b->over = 1;
		return 0;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return yaml_document_add_scalar(dst, n->tag, n->data.scalar.value, (int)n->data.scalar.length,
						n->data.scalar.style);
	case YAML_SEQUENCE_NODE:
		if (!(id = yaml_document_add_sequence(dst, n->tag, n->data.sequence.style)))
			return 0;
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			int c = copy(dst, src, yaml_document_get_node(src, *i), depth + 1, b);

			if (!c || !yaml_document_append_sequence_item(dst, id, c))
				return 0;
		}
		return id;
	case YAML_MAPPING_NODE:
		if (!(id = yaml_document_add_mapping(dst, n->tag, n->data.mapping.style)))
			return 0;
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			int k = copy(dst, src, yaml_document_get_node(src, p->key), depth + 1, b);
			int v = k ? copy(dst, src, yaml_document_get_node(src, p->value), depth + 1, b) : 0;

			if (!k || !v || !yaml_document_append_mapping_pair(dst, id, k, v))
				return 0;
		}
		return id;
	default:
		return 0;
	}
}

/* A plain scalar s added to d; its node id, or 0 when out of memory. */
static int scalar(yaml_document_t *d, const char *s)
{
	return yaml_document_add_scalar(d, NULL, (yaml_char_t *)s, -1, YAML_ANY_SCALAR_STYLE);
}

/* A user's text (an SSID, a PSK): always a string, double-quoted, so that
 * "yes" or "0123" is not read back as a boolean or a number. */
static int text(yaml_document_t *d, const char *s)
{
	return yaml_document_add_scalar(d, NULL, (yaml_char_t *)s, -1, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

/* Adds key: value (scalars) to mapping m. Returns 0 or -ENOMEM. */
static int pair(yaml_document_t *d, int m, const char *key, const char *value)
{
	int k = scalar(d, key), v = scalar(d, value);

	return k && v && yaml_document_append_mapping_pair(d, m, k, v) ? 0 : -ENOMEM;
}

static int map_pair(yaml_document_t *d, int m, const char *key, int *child)
{
	int k = scalar(d, key);

	*child = yaml_document_add_mapping(d, NULL, YAML_BLOCK_MAPPING_STYLE);
	return k && *child && yaml_document_append_mapping_pair(d, m, k, *child) ? 0 : -ENOMEM;
}

/* key: a user's text, into mapping m. */
static int text_pair(yaml_document_t *d, int m, const char *key, const char *value)
{
	int k = scalar(d, key), v = text(d, value);

	return k && v && yaml_document_append_mapping_pair(d, m, k, v) ? 0 : -ENOMEM;
}

/* Our wlan0 into the wifis mapping w. */
static int add_wlan(yaml_document_t *d, int w, const struct provision *p)
{
	int wl, aps, ap, ssid;

	if (map_pair(d, w, "wlan0", &wl) || pair(d, wl, "dhcp4", "true") || pair(d, wl, "optional", "true") ||
	    (p->wifi_country && text_pair(d, wl, "regulatory-domain", p->wifi_country)) ||
	    map_pair(d, wl, "access-points", &aps))
		return -ENOMEM;
	ssid = text(d, p->wifi_ssid);
	ap = yaml_document_add_mapping(d, NULL, YAML_BLOCK_MAPPING_STYLE);
	if (!ssid || !ap || !yaml_document_append_mapping_pair(d, aps, ssid, ap) ||
	    text_pair(d, ap, "password", p->wifi_psk) || (p->wifi_hidden && pair(d, ap, "hidden", "true")))
		return -ENOMEM;
	return 0;
}

static int write_handler(void *ctx, unsigned char *buf, size_t size)
{
	struct provision_text *t = ctx;

	if (t->len + size >= PROVISION_TEXT_MAX) {
		t->over = 1;
		return 0;
	}
	memcpy(t->buf + t->len, buf, size);
	t->len += size;
	t->buf[t->len] = '\0';
	return 1;
}

int provision_merge_network_config(const struct provision *p, const char *image, size_t len, struct provision_text *t,
				   char *why, size_t cap)
{
	yaml_document_t in, out;
	yaml_parser_t parser;
	yaml_emitter_t emitter;
	yaml_node_t *root = NULL, *net = NULL, *eth = NULL;
	struct copy_budget b = { 0 };
	int have_in = 0, r = -ENOMEM, top, netm, w, e;

	if (image && len) {
		if (!yaml_parser_initialize(&parser))
			goto fail;
		yaml_parser_set_input_string(&parser, (const unsigned char *)image, len);
		if (!yaml_parser_load(&parser, &in)) {
			snprintf(why, cap, "the image's network-config is not YAML (line %zu: %s); give your own with "
				 "--network-config", parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
			yaml_parser_delete(&parser);
			return -EBADMSG;
		}
		yaml_parser_delete(&parser);
		have_in = 1;
		root = yaml_document_get_root_node(&in);
		/* cloud-init takes both "network: {version: 2, ...}" (Pi OS) and
		 * the version-2 keys at the top (Ubuntu). */
		net = get(&in, root, "network") ? get(&in, root, "network") : root;
		yaml_node_t *ver = get(&in, net, "version");
		if (net && net->type == YAML_MAPPING_NODE && ver &&
		    !(ver->type == YAML_SCALAR_NODE && strcmp((const char *)ver->data.scalar.value, "2") == 0)) {
			snprintf(why, cap, "the image's network-config is not version 2, which Wi-Fi needs; give your "
				 "own with --network-config");
			yaml_document_delete(&in);
			return -EBADMSG;
		}
		if (net && net->type != YAML_MAPPING_NODE)
			net = NULL;
		eth = get(&in, net, "ethernets");
	}
	if (!yaml_document_initialize(&out, NULL, NULL, NULL, 1, 1))
		goto fail_in;
	if (!(top = yaml_document_add_mapping(&out, NULL, YAML_BLOCK_MAPPING_STYLE)) || map_pair(&out, top, "network", &netm) ||
	    pair(&out, netm, "version", "2"))
		goto fail_out;
	/* The image's other keys (renderer, bonds, ...) as they were. */
	for (yaml_node_pair_t *q = net ? net->data.mapping.pairs.start : NULL; net && q < net->data.mapping.pairs.top; q++) {
		yaml_node_t *k = yaml_document_get_node(&in, q->key);
		const char *ks = k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
		int kc, vc;

		if (!strcmp(ks, "version") || !strcmp(ks, "ethernets") || !strcmp(ks, "wifis"))
			continue;
		if (!(kc = copy(&out, &in, k, 0, &b)) ||
		    !(vc = copy(&out, &in, yaml_document_get_node(&in, q->value), 0, &b)) ||
		    !yaml_document_append_mapping_pair(&out, netm, kc, vc))
			goto fail_out;
	}
	if (eth && eth->type == YAML_MAPPING_NODE && eth->data.mapping.pairs.top > eth->data.mapping.pairs.start) {
		int k = scalar(&out, "ethernets"), v = copy(&out, &in, eth, 0, &b);

		if (!k || !v || !yaml_document_append_mapping_pair(&out, netm, k, v))
			goto fail_out;
	} else {
		int e0;

		if (map_pair(&out, netm, "ethernets", &e) || map_pair(&out, e, "eth0", &e0) ||
		    pair(&out, e0, "dhcp4", "true") || pair(&out, e0, "optional", "true"))
			goto fail_out;
	}
	if (map_pair(&out, netm, "wifis", &w) || add_wlan(&out, w, p))
		goto fail_out;
	if (!yaml_emitter_initialize(&emitter))
		goto fail_out;
	yaml_emitter_set_output(&emitter, write_handler, t);
	yaml_emitter_set_unicode(&emitter, 1);
	if (!yaml_emitter_open(&emitter)) {
		yaml_document_delete(&out);
		r = -EIO;
	} else {
		/* yaml_emitter_dump() deletes out, written or not. */
		r = yaml_emitter_dump(&emitter, &out) && yaml_emitter_close(&emitter) ? 0 : -EIO;
	}
	yaml_emitter_delete(&emitter);
	if (have_in)
		yaml_document_delete(&in);
	if (r < 0 || t->over)
		snprintf(why, cap, "%s", t->over ? "the network-config is too large" : "libyaml could not write the network-config");
	return t->over ? -EMSGSIZE : r;
fail_out:
	yaml_document_delete(&out);
fail_in:
	if (have_in)
		yaml_document_delete(&in);
fail:
	if (b.over) {
		snprintf(why, cap, "the image's network-config nests deeper than %d levels or its aliases make more "
			 "than %d nodes; give your own with --network-config", COPY_DEPTH_MAX, COPY_NODES_MAX);
		return -EMSGSIZE;
	}
	snprintf(why, cap, "out of memory");
	return r;
}
