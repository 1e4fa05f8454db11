/* SPDX-License-Identifier: GPL-2.0-or-later */
/* GPIO lines through libgpiod (v1 API, the kernel's character device): the
 * worker's status LED and start button, the master's power relays.
 *
 * A line is named by a spec "CHIP:LINE[:FLAG]...":
 *   CHIP  gpiochipN, N, /dev/gpiochipN or the chip's label ("pinctrl-bcm2835")
 *   LINE  the offset on that chip (17) or the line's name ("GPIO17")
 *   FLAG  active-low, pull-up, pull-down, bias-off, open-drain
 * Values are logical: 1 is "active" (LED lit, button pressed, relay on),
 * whatever the wiring's polarity (active-low flips it in the kernel). */
#ifndef NETFLASH_GPIO_H
#define NETFLASH_GPIO_H

#include <stdatomic.h>
#include <stddef.h>

#define NF_GPIO_NAME_MAX 64     /* chip and line names */
#define NF_GPIO_SPEC_MAX 160    /* the whole spec text */

enum {
	NF_GPIO_ACTIVE_LOW = 1 << 0,
	NF_GPIO_PULL_UP = 1 << 1,
	NF_GPIO_PULL_DOWN = 1 << 2,
	NF_GPIO_BIAS_OFF = 1 << 3,
	NF_GPIO_OPEN_DRAIN = 1 << 4,
};

struct nf_gpio_spec {
	char chip[NF_GPIO_NAME_MAX];
	char line[NF_GPIO_NAME_MAX];
	unsigned flags;
};

/* Parses text into s. Returns 0, or -EINVAL with why (a static string) set:
 * empty or oversize parts, characters outside [A-Za-z0-9_.:/+-], unknown or
 * conflicting flags. */
int nf_gpio_parse(const char *text, struct nf_gpio_spec *s, const char **why);

/* Prints s back in canonical form ("gpiochip0:17:active-low"). */
void nf_gpio_format(const struct nf_gpio_spec *s, char *out, size_t cap);

struct nf_gpio;

/* Requests the line as an output driven to value (logical), labelled with
 * consumer. Returns 0 and sets *out, or -errno with detail filled: -ENOENT
 * (no such chip or line), -EBUSY (another consumer holds it, named), ... */
int nf_gpio_output(const struct nf_gpio_spec *s, const char *consumer, int value, struct nf_gpio **out,
		   char *detail, size_t cap);

/* Requests the line as an input that reports both edges (a button). */
int nf_gpio_input(const struct nf_gpio_spec *s, const char *consumer, struct nf_gpio **out, char *detail,
		  size_t cap);

/* Sets an output's logical value. Returns 0 or -errno. */
int nf_gpio_set(struct nf_gpio *g, int value);

/* Reads the logical value: 0, 1 or -errno. */
int nf_gpio_get(struct nf_gpio *g);

/* Waits for a press on an input: the line going active and still active
 * debounce_ms later. A line already active must be released first (a stuck
 * or held button is not a press). Returns 1 on a press, 0 when timeout_ms
 * passed (-1: no limit) or *stop became non-zero, -errno on failure. */
int nf_gpio_wait_press(struct nf_gpio *g, int timeout_ms, unsigned debounce_ms, const atomic_int *stop);

/* Releases the line (the kernel keeps or resets its level as the chip
 * does; Broadcom GPIOs keep it) and closes the chip. Accepts NULL. */
void nf_gpio_close(struct nf_gpio *g);

#endif
