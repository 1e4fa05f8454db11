/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Edge-case table for GPIO line specs (lib/gpio.c): what the kernel command
 * line, netflash-write and ROOT/power.conf accept. Requesting lines is
 * tested against gpio-sim in a QEMU guest (tests/integration/gpio.sh). */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "gpio.h"

static void test_parse(void)
{
	static const struct { const char *s; int ret; const char *canon; } t[] = {
		{ "gpiochip0:17", 0, "gpiochip0:17" },
		{ "0:17", 0, "0:17" },
		{ "/dev/gpiochip1:3", 0, "/dev/gpiochip1:3" },
		{ "pinctrl-bcm2835:GPIO17", 0, "pinctrl-bcm2835:GPIO17" },
		{ "gpiochip0:17:active-low", 0, "gpiochip0:17:active-low" },
		{ "gpiochip0:17:pull-up:active-low", 0, "gpiochip0:17:active-low:pull-up" },
		{ "gpiochip0:17:open-drain:bias-off", 0, "gpiochip0:17:bias-off:open-drain" },
		{ "gpiochip0:17:pull-up:pull-down", -EINVAL, NULL },
		{ "gpiochip0:17:bias-off:pull-up", -EINVAL, NULL },
		{ "gpiochip0:17:", -EINVAL, NULL },
		{ "gpiochip0:17:active-lo", -EINVAL, NULL },
		{ "gpiochip0:17:active-lowx", -EINVAL, NULL },
		{ "gpiochip0", -EINVAL, NULL },
		{ "", -EINVAL, NULL },
		{ ":17", -EINVAL, NULL },
		{ "gpiochip0:", -EINVAL, NULL },
		{ "gpio chip0:17", -EINVAL, NULL },
		{ "gpiochip0:1 7", -EINVAL, NULL },
		{ "gpiochip0:17;reboot", -EINVAL, NULL },
		{ "gpiochip0:\x1b[2J", -EINVAL, NULL },
		{ "gpiochip0:17\n", -EINVAL, NULL },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1", 0,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1" },  /* 63: the maximum */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1", -EINVAL, NULL }, /* 64 */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nf_gpio_spec s;
		const char *why = NULL;
		char out[NF_GPIO_SPEC_MAX + 1];
		int r = nf_gpio_parse(t[i].s, &s, &why);

		CHECK(r == t[i].ret, "gpio '%s': got %d want %d", t[i].s, r, t[i].ret);
		CHECK(r == 0 || (why && why[0]), "gpio '%s': no reason given", t[i].s);
		if (r == 0 && t[i].canon) {
			nf_gpio_format(&s, out, sizeof(out));
			CHECK(strcmp(out, t[i].canon) == 0, "gpio '%s': printed back as '%s'", t[i].s, out);
		}
	}
}

static void test_long(void)
{
	char big[400];
	struct nf_gpio_spec s;
	const char *why;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[10] = ':';
	CHECK(nf_gpio_parse(big, &s, &why) == -EINVAL, "a 399-character spec is refused");
}

int main(void)
{
	test_parse();
	test_long();
	return CHECK_DONE();
}
