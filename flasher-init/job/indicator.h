/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker's status lights: the board's ACT LED (sysfs LED class) and an
 * optional LED on a GPIO line blink the stage in distinct patterns, driven
 * by one thread, so an operator walking a rack sees which card is done:
 *
 *   boot     blip once a second     (network, waiting for the card or job)
 *   button   slow even blink        (waiting for the start button)
 *   write    fast blink, 5 Hz
 *   verify   double blip, then dark
 *   done     steady on
 *   failed   triple blip, then dark
 */
#ifndef NETFLASH_INDICATOR_H
#define NETFLASH_INDICATOR_H

#include <stddef.h>

#include "gpio.h"

enum nf_led_state { NF_LED_OFF, NF_LED_BOOT, NF_LED_BUTTON, NF_LED_WRITE, NF_LED_VERIFY, NF_LED_DONE, NF_LED_FAILED };

struct nf_indicator;

/* The state's name ("write"). */
const char *nf_led_state_name(enum nf_led_state s);

/* Resolves an ACT LED setting to its sysfs directory: "off" or "" -> none
 * (returns 0, out empty); "auto" -> /sys/class/leds/ACT or led0 when one
 * exists (else none); a NAME -> /sys/class/leds/NAME (must exist); an
 * absolute path -> itself. Returns 0 or -EINVAL (a name with '/' or "..")
 * / -ENOENT (no such LED), with detail filled. */
int nf_act_led_resolve(const char *setting, char *out, size_t cap, char *detail, size_t dcap);

/* Starts the indicator on led (a requested output, owned by the indicator
 * from now on; may be NULL) and the LED class directory act_dir (may be
 * NULL or ""; its trigger is set to "none"). Returns 0 or -errno with
 * detail filled; on failure led is closed. */
int nf_indicator_start(struct nf_indicator **out, struct nf_gpio *led, const char *act_dir, char *detail,
		       size_t cap);

/* Shows state from now on. Accepts NULL. */
void nf_indicator_set(struct nf_indicator *ind, enum nf_led_state state);

/* Stops the thread, leaving the lights as the state's steady level (on for
 * done, off otherwise), and frees. Accepts NULL. */
void nf_indicator_stop(struct nf_indicator *ind);

#endif
