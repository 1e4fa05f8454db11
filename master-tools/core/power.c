/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Worker power control: ROOT/power.conf and the power cycle itself. */
#include "power.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run.h"
#include "master.h"
#include "parse.h"

/* Parses one non-comment line into e. Returns 0 or -EBADMSG with why. */
static int parse_line(char *line, struct power_entry *e, const char **why)
{
	char *mac, *kind, *rest, *save = NULL;
	struct nf_mac parsed;

	mac = strtok_r(line, " \t", &save);
	kind = strtok_r(NULL, " \t", &save);
	rest = save ? save + strspn(save, " \t") : NULL;
	if (!mac || !kind || !rest || !*rest)
		return *why = "expected MAC gpio CHIP:LINE[:FLAG]... or MAC exec /PATH [ARG]...", -EBADMSG;
	if (nf_mac_parse(mac, &parsed) < 0)
		return *why = "not a MAC address", -EBADMSG;
	memcpy(e->mac, parsed.s, sizeof(parsed.s));
	for (const char *p = rest; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return *why = "control characters", -EBADMSG;
	if (strcmp(kind, "gpio") == 0) {
		if (strpbrk(rest, " \t"))
			return *why = "gpio takes one CHIP:LINE[:FLAG]... (no blanks)", -EBADMSG;
		return nf_gpio_parse(rest, &e->gpio, why) < 0 ? -EBADMSG : 0;
	}
	if (strcmp(kind, "exec") == 0) {
		unsigned words = 0;

		if (rest[0] != '/')
			return *why = "exec needs an absolute path", -EBADMSG;
		for (const char *p = rest; *p; ) {
			p += strcspn(p, " \t");
			words++;
			p += strspn(p, " \t");
		}
		if (words > POWER_ARGS_MAX)
			return *why = "exec takes at most 15 arguments", -EBADMSG;
		e->is_exec = 1;
		snprintf(e->cmd, sizeof(e->cmd), "%s", rest);
		return 0;
	}
	return *why = "unknown kind (expected gpio or exec)", -EBADMSG;
}

static int bad(char *detail, size_t cap, const char *path, unsigned n, const char *why)
{
	snprintf(detail, cap, "%s:%u: %s", path, n, why);
	return -EBADMSG;
}

/* Reads every entry of the file into a list, so a bad line anywhere stops
 * the whole file: half a relay map is worse than none. */
static int load(const struct master *m, struct power_entry **list, size_t *count, char *detail, size_t cap)
{
	char path[1200], line[POWER_LINE_MAX + 2];
	struct power_entry *v = NULL;
	size_t n = 0, alloc = 0;
	unsigned lineno = 0;
	const char *why;
	FILE *f;
	int r = 0;

	master_path(m, path, sizeof(path), POWER_FILE);
	if (!(f = fopen(path, "re"))) {
		r = -errno;
		snprintf(detail, cap, "cannot read %s: %s", path, r == -ENOENT ? "no such file (see netflash power --help)" : strerror(-r));
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		struct power_entry e = { .lineno = ++lineno };
		char *p = line + strspn(line, " \t");
		size_t len = strlen(line);

		if (len && line[len - 1] != '\n' && !feof(f)) {
			r = bad(detail, cap, path, lineno, "line longer than 512 characters");
			break;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (!*p || *p == '#')
			continue;
		if ((r = parse_line(p, &e, &why)) < 0) {
			bad(detail, cap, path, lineno, why);
			break;
		}
		for (size_t i = 0; i < n && r == 0; i++)
			if (strcmp(v[i].mac, e.mac) == 0)
				r = bad(detail, cap, path, lineno, "this MAC has an entry already");
		if (r < 0)
			break;
		if (n == alloc) {
			struct power_entry *nv = realloc(v, (alloc = alloc ? alloc * 2 : 16) * sizeof(*v));

			if (!nv) {
				r = -ENOMEM;
				snprintf(detail, cap, "out of memory reading %s", path);
				break;
			}
			v = nv;
		}
		v[n++] = e;
	}
	fclose(f);
	if (r < 0) {
		free(v);
		return r;
	}
	*list = v;
	*count = n;
	return 0;
}

int power_each(const struct master *m, int (*fn)(const struct power_entry *e, void *ctx), void *ctx,
	       char *detail, size_t cap)
{
	struct power_entry *v = NULL;
	size_t n = 0;
	int r = load(m, &v, &n, detail, cap);

	for (size_t i = 0; r == 0 && i < n; i++)
		r = fn(&v[i], ctx);
	free(v);
	return r;
}

struct find_ctx {
	const char *mac;
	struct power_entry *out;
};

static int match(const struct power_entry *e, void *ctx)
{
	struct find_ctx *f = ctx;

	if (strcmp(e->mac, f->mac) != 0)
		return 0;
	*f->out = *e;
	return 1;
}

int power_find(const struct master *m, const char *mac, struct power_entry *out, char *detail, size_t cap)
{
	struct find_ctx f = { mac, out };
	int r = power_each(m, match, &f, detail, cap);

	if (r == 1)
		return 0;
	if (r == 0) {
		snprintf(detail, cap, "%s has no entry in %s/%s", mac, m->root, POWER_FILE);
		return -ENOENT;
	}
	return r;
}

static int cycle_gpio(const struct power_entry *e, unsigned off_ms, char *detail, size_t cap)
{
	struct timespec off = { .tv_sec = off_ms / 1000, .tv_nsec = (long)(off_ms % 1000) * 1000000 };
	struct nf_gpio *g = NULL;
	char spec[NF_GPIO_SPEC_MAX + 1];
	int r = nf_gpio_output(&e->gpio, "netflash-power", 1, &g, detail, cap);

	if (r < 0)
		return r;
	while (nanosleep(&off, &off) < 0 && errno == EINTR)
		;
	if ((r = nf_gpio_set(g, 0)) < 0) {
		nf_gpio_format(&e->gpio, spec, sizeof(spec));
		snprintf(detail, cap, "cannot switch the power back on (%s): %s", spec, strerror(-r));
	}
	nf_gpio_close(g);
	return r;
}

static int cycle_exec(const struct power_entry *e, unsigned off_ms, char *detail, size_t cap)
{
	char buf[POWER_LINE_MAX], secs[16], *argv[POWER_ARGS_MAX + 1], *save = NULL;
	size_t n = 0;
	int r;

	snprintf(buf, sizeof(buf), "%s", e->cmd);
	for (char *w = strtok_r(buf, " \t", &save); w && n < POWER_ARGS_MAX; w = strtok_r(NULL, " \t", &save))
		argv[n++] = w;
	argv[n] = NULL;
	snprintf(secs, sizeof(secs), "%u", (off_ms + 999) / 1000);
	setenv("NETFLASH_MAC", e->mac, 1);
	setenv("NETFLASH_OFF_SECONDS", secs, 1);
	r = master_run(argv, NULL, 0);
	if (r == -EIO)
		snprintf(detail, cap, "power command '%s' failed", argv[0]);
	else if (r < 0)
		snprintf(detail, cap, "cannot run power command '%s': %s", argv[0], strerror(-r));
	return r;
}

int power_cycle(const struct power_entry *e, unsigned off_ms, char *detail, size_t cap)
{
	sigset_t block, old;
	int r;

	if (e->is_exec)
		return cycle_exec(e, off_ms, detail, cap);
	/* An interrupted cycle must not leave a worker without power. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	r = cycle_gpio(e, off_ms, detail, cap);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}
