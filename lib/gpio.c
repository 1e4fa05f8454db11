/* SPDX-License-Identifier: GPL-2.0-or-later */
/* GPIO lines through libgpiod v1: parsing specs, requesting lines, waiting
 * for a debounced button press. */
#include "gpio.h"

#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"

struct nf_gpio {
	struct gpiod_chip *chip;
	struct gpiod_line *line;
	int events;  /* the line reports edges; else it is polled */
};

static const struct {
	const char *name;
	unsigned flag;
} flag_names[] = {
	{ "active-low", NF_GPIO_ACTIVE_LOW }, { "pull-up", NF_GPIO_PULL_UP },
	{ "pull-down", NF_GPIO_PULL_DOWN },   { "bias-off", NF_GPIO_BIAS_OFF },
	{ "open-drain", NF_GPIO_OPEN_DRAIN },
};

static int name_ok(const char *p, size_t n)
{
	if (n == 0 || n >= NF_GPIO_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("_.+/-", ch)))
			return 0;
	}
	return 1;
}

int nf_gpio_parse(const char *text, struct nf_gpio_spec *s, const char **why)
{
	const char *p = text, *colon;
	unsigned bias;

	memset(s, 0, sizeof(*s));
	*why = "";
	if (strnlen(text, NF_GPIO_SPEC_MAX + 1) > NF_GPIO_SPEC_MAX)
		return *why = "longer than 160 characters", -EINVAL;
	colon = strchr(p, ':');
	if (!colon)
		return *why = "expected CHIP:LINE (gpiochip0:17)", -EINVAL;
	if (!name_ok(p, (size_t)(colon - p)))
		return *why = "the chip must be 1-63 characters of A-Z a-z 0-9 _ . + / -", -EINVAL;
	memcpy(s->chip, p, (size_t)(colon - p));
	p = colon + 1;
	colon = strchr(p, ':');
	size_t n = colon ? (size_t)(colon - p) : strlen(p);

	if (!name_ok(p, n))
		return *why = "the line must be an offset or a name of 1-63 characters of A-Z a-z 0-9 _ . + / -",
		       -EINVAL;
	memcpy(s->line, p, n);
	while (colon) {
		size_t i;

		p = colon + 1;
		colon = strchr(p, ':');
		n = colon ? (size_t)(colon - p) : strlen(p);
		for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
			if (strlen(flag_names[i].name) == n && strncmp(flag_names[i].name, p, n) == 0)
				break;
		if (i == sizeof(flag_names) / sizeof(flag_names[0]))
			return *why = "unknown flag (known: active-low, pull-up, pull-down, bias-off, open-drain)",
			       -EINVAL;
		s->flags |= flag_names[i].flag;
	}
	bias = s->flags & (NF_GPIO_PULL_UP | NF_GPIO_PULL_DOWN | NF_GPIO_BIAS_OFF);
	if (bias & (bias - 1))
		return *why = "pull-up, pull-down and bias-off exclude each other", -EINVAL;
	return 0;
}

void nf_gpio_format(const struct nf_gpio_spec *s, char *out, size_t cap)
{
	size_t o = (size_t)snprintf(out, cap, "%s:%s", s->chip, s->line);

	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]) && o < cap; i++)
		if (s->flags & flag_names[i].flag)
			o += (size_t)snprintf(out + o, cap - o, ":%s", flag_names[i].name);
}

static int request_flags(unsigned f)
{
	return (f & NF_GPIO_ACTIVE_LOW ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0) |
	       (f & NF_GPIO_PULL_UP ? GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP : 0) |
	       (f & NF_GPIO_PULL_DOWN ? GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN : 0) |
	       (f & NF_GPIO_BIAS_OFF ? GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE : 0) |
	       (f & NF_GPIO_OPEN_DRAIN ? GPIOD_LINE_REQUEST_FLAG_OPEN_DRAIN : 0);
}

/* Opens the chip and finds the line; says which part is missing. */
static int find_line(const struct nf_gpio_spec *s, struct nf_gpio **out, char *detail, size_t cap)
{
	struct nf_gpio *g = calloc(1, sizeof(*g));
	uint64_t off;
	int e;

	if (!g)
		return -ENOMEM;
	g->chip = gpiod_chip_open_lookup(s->chip);
	if (!g->chip) {
		e = errno ? errno : ENOENT;
		snprintf(detail, cap, "no GPIO chip '%s': %s", s->chip,
			 e == ENOENT || e == ENODEV ? "no such chip" : strerror(e));
		free(g);
		return -e;
	}
	if (nf_parse_u64(s->line, 0, 0xffff, &off) == 0) {
		g->line = gpiod_chip_get_line(g->chip, (unsigned)off);
		if (!g->line)
			snprintf(detail, cap, "GPIO chip '%s' has no line %s (it has %u)", s->chip, s->line,
				 gpiod_chip_num_lines(g->chip));
	} else {
		g->line = gpiod_chip_find_line(g->chip, s->line);
		if (!g->line)
			snprintf(detail, cap, "GPIO chip '%s' has no line named '%s'", s->chip, s->line);
	}
	if (!g->line) {
		gpiod_chip_close(g->chip);
		free(g);
		return -ENOENT;
	}
	*out = g;
	return 0;
}

/* A request failed: name the holder when the line is taken. */
static int request_failed(struct nf_gpio *g, const struct nf_gpio_spec *s, const char *what, char *detail,
			  size_t cap)
{
	int e = errno ? errno : EIO;
	const char *holder = NULL;

	if (e == EBUSY && gpiod_line_update(g->line) == 0)
		holder = gpiod_line_consumer(g->line);
	if (e == EBUSY)
		snprintf(detail, cap, "GPIO %s:%s is in use by '%s'", s->chip, s->line, holder ? holder : "?");
	else
		snprintf(detail, cap, "cannot request GPIO %s:%s as %s: %s", s->chip, s->line, what, strerror(e));
	nf_gpio_close(g);
	return -e;
}

int nf_gpio_output(const struct nf_gpio_spec *s, const char *consumer, int value, struct nf_gpio **out,
		   char *detail, size_t cap)
{
	struct nf_gpio *g = NULL;
	int r = find_line(s, &g, detail, cap);

	if (r < 0)
		return r;
	errno = 0;
	if (gpiod_line_request_output_flags(g->line, consumer, request_flags(s->flags), value ? 1 : 0) < 0)
		return request_failed(g, s, "an output", detail, cap);
	*out = g;
	return 0;
}

int nf_gpio_input(const struct nf_gpio_spec *s, const char *consumer, struct nf_gpio **out, char *detail,
		  size_t cap)
{
	struct nf_gpio *g = NULL;
	int r = find_line(s, &g, detail, cap), flags = request_flags(s->flags & ~NF_GPIO_OPEN_DRAIN);

	if (r < 0)
		return r;
	errno = 0;
	if (gpiod_line_request_both_edges_events_flags(g->line, consumer, flags) == 0) {
		g->events = 1;
	} else {
		/* A chip without interrupts (some I2C expanders): poll it. */
		if (errno == EBUSY || gpiod_line_request_input_flags(g->line, consumer, flags) < 0)
			return request_failed(g, s, "an input", detail, cap);
	}
	*out = g;
	return 0;
}

int nf_gpio_set(struct nf_gpio *g, int value)
{
	return gpiod_line_set_value(g->line, value ? 1 : 0) < 0 ? -errno : 0;
}

int nf_gpio_get(struct nf_gpio *g)
{
	int v = gpiod_line_get_value(g->line);

	return v < 0 ? -errno : v;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to ms for an edge (and drains it), or just sleeps when polled. */
static int wait_edge(struct nf_gpio *g, long long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	struct gpiod_line_event ev;
	int r;

	if (!g->events) {
		nanosleep(&ts, NULL);
		return 0;
	}
	r = gpiod_line_event_wait(g->line, &ts);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 1 && gpiod_line_event_read(g->line, &ev) < 0)
		return -errno;
	return 0;
}

int nf_gpio_wait_press(struct nf_gpio *g, int timeout_ms, unsigned debounce_ms, const atomic_int *stop)
{
	long long end = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int v = nf_gpio_get(g), held;

	if (v < 0)
		return v;
	held = v == 1;
	for (;;) {
		long long slice = g->events ? 100 : 20, left;
		int r;

		if (stop && atomic_load(stop))
			return 0;
		if (end >= 0 && (left = end - now_ms()) <= 0)
			return 0;
		else if (end >= 0 && left < slice)
			slice = left;
		if ((r = wait_edge(g, slice)) < 0)
			return r;
		if ((v = nf_gpio_get(g)) < 0)
			return v;
		if (v == 0) {
			held = 0;
		} else if (!held) {
			struct timespec d = { .tv_sec = debounce_ms / 1000, .tv_nsec = (long)(debounce_ms % 1000) * 1000000 };

			nanosleep(&d, NULL);
			if ((v = nf_gpio_get(g)) < 0)
				return v;
			if (v == 1)
				return 1;
		}
	}
}

void nf_gpio_close(struct nf_gpio *g)
{
	if (!g)
		return;
	if (g->line)
		gpiod_line_release(g->line);
	if (g->chip)
		gpiod_chip_close(g->chip);
	free(g);
}
