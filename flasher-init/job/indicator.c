/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The status lights: one thread plays the current state's blink pattern on
 * a GPIO LED and the ACT LED. */
#include "indicator.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Durations in ms, lit first then dark, alternating; a 0 step is skipped. */
static const struct {
	const char *name;
	unsigned short ms[6];
} patterns[] = {
	[NF_LED_OFF] = { "off", { 0, 1000 } },
	[NF_LED_BOOT] = { "boot", { 100, 900 } },
	[NF_LED_BUTTON] = { "button", { 500, 500 } },
	[NF_LED_WRITE] = { "write", { 100, 100 } },
	[NF_LED_VERIFY] = { "verify", { 100, 100, 100, 700 } },
	[NF_LED_DONE] = { "done", { 1000, 0 } },
	[NF_LED_FAILED] = { "failed", { 100, 100, 100, 100, 100, 900 } },
};

struct nf_indicator {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	enum nf_led_state state;
	unsigned gen;  /* bumped on every change, so a pattern restarts */
	int quit;
	struct nf_gpio *led;
	int act_fd;    /* the LED class "brightness" attribute, or -1 */
	char act_on[16];
	int level;     /* what the lights show now; -1: not set yet */
};

const char *nf_led_state_name(enum nf_led_state s)
{
	return (unsigned)s < sizeof(patterns) / sizeof(patterns[0]) ? patterns[s].name : "?";
}

int nf_act_led_resolve(const char *setting, char *out, size_t cap, char *detail, size_t dcap)
{
	static const char *const autos[] = { "/sys/class/leds/ACT", "/sys/class/leds/led0" };
	struct stat st;

	out[0] = '\0';
	if (!setting[0] || strcmp(setting, "off") == 0)
		return 0;
	if (strcmp(setting, "auto") == 0) {
		for (size_t i = 0; i < sizeof(autos) / sizeof(autos[0]); i++)
			if (stat(autos[i], &st) == 0) {
				snprintf(out, cap, "%s", autos[i]);
				break;
			}
		return 0;
	}
	if (setting[0] != '/' && (strchr(setting, '/') || strcmp(setting, "..") == 0 || strcmp(setting, ".") == 0)) {
		snprintf(detail, dcap, "ACT LED '%s': give an LED name (ACT, led0) or an absolute path", setting);
		return -EINVAL;
	}
	if ((size_t)snprintf(out, cap, "%s%s", setting[0] == '/' ? "" : "/sys/class/leds/", setting) >= cap) {
		snprintf(detail, dcap, "ACT LED '%.64s...': too long", setting);
		return out[0] = '\0', -EINVAL;
	}
	if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(detail, dcap, "no LED '%s' (%s missing)", setting, out);
		return out[0] = '\0', -ENOENT;
	}
	return 0;
}

static int write_attr(const char *dir, const char *name, const char *value)
{
	char path[320];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* "brightness" takes 0..max_brightness: lit is the maximum. */
static int open_act(struct nf_indicator *ind, const char *dir, char *detail, size_t cap)
{
	char path[320], max[16] = "1";
	int fd, r;

	if ((r = write_attr(dir, "trigger", "none")) < 0) {
		snprintf(detail, cap, "cannot take over the LED %s (trigger): %s", dir, strerror(-r));
		return r;
	}
	snprintf(path, sizeof(path), "%s/max_brightness", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		ssize_t n = read(fd, max, sizeof(max) - 1);

		max[n > 0 ? n : 0] = '\0';
		max[strcspn(max, "\n")] = '\0';
		if (!max[0] || strcmp(max, "0") == 0)
			snprintf(max, sizeof(max), "1");
		close(fd);
	}
	snprintf(ind->act_on, sizeof(ind->act_on), "%s", max);
	snprintf(path, sizeof(path), "%s/brightness", dir);
	if ((ind->act_fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		r = -errno;
		snprintf(detail, cap, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

static void show(struct nf_indicator *ind, int level)
{
	const char *v = level ? ind->act_on : "0";

	if (level == ind->level)
		return;
	ind->level = level;
	if (ind->led)
		nf_gpio_set(ind->led, level);
	if (ind->act_fd >= 0 && pwrite(ind->act_fd, v, strlen(v), 0) < 0) {
		/* A vanished LED is not worth stopping a flash for. */
		close(ind->act_fd);
		ind->act_fd = -1;
	}
}

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void *run(void *arg)
{
	struct nf_indicator *ind = arg;

	pthread_mutex_lock(&ind->lock);
	while (!ind->quit) {
		unsigned gen = ind->gen;
		const unsigned short *ms = patterns[ind->state].ms;

		for (size_t i = 0; i < sizeof(patterns[0].ms) / sizeof(ms[0]) && gen == ind->gen && !ind->quit; i++) {
			struct timespec until;

			if (!ms[i])
				continue;
			show(ind, i % 2 == 0);
			deadline_in(&until, ms[i]);
			while (gen == ind->gen && !ind->quit &&
			       pthread_cond_timedwait(&ind->changed, &ind->lock, &until) != ETIMEDOUT)
				;
		}
	}
	show(ind, ind->state == NF_LED_DONE);
	pthread_mutex_unlock(&ind->lock);
	return NULL;
}

static void free_indicator(struct nf_indicator *ind)
{
	nf_gpio_close(ind->led);
	if (ind->act_fd >= 0)
		close(ind->act_fd);
	pthread_cond_destroy(&ind->changed);
	pthread_mutex_destroy(&ind->lock);
	free(ind);
}

int nf_indicator_start(struct nf_indicator **out, struct nf_gpio *led, const char *act_dir, char *detail,
		       size_t cap)
{
	struct nf_indicator *ind = calloc(1, sizeof(*ind));
	pthread_condattr_t ca;
	int r;

	if (!ind) {
		nf_gpio_close(led);
		return -ENOMEM;
	}
	ind->led = led;
	ind->act_fd = -1;
	ind->level = -1;
	ind->state = NF_LED_BOOT;
	pthread_mutex_init(&ind->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ind->changed, &ca);
	pthread_condattr_destroy(&ca);
	if (act_dir && act_dir[0] && (r = open_act(ind, act_dir, detail, cap)) < 0) {
		free_indicator(ind);
		return r;
	}
	if ((r = pthread_create(&ind->thread, NULL, run, ind)) != 0) {
		snprintf(detail, cap, "cannot start the LED thread: %s", strerror(r));
		free_indicator(ind);
		return -r;
	}
	*out = ind;
	return 0;
}

void nf_indicator_set(struct nf_indicator *ind, enum nf_led_state state)
{
	if (!ind)
		return;
	pthread_mutex_lock(&ind->lock);
	if (ind->state != state) {
		ind->state = state;
		ind->gen++;
		pthread_cond_signal(&ind->changed);
	}
	pthread_mutex_unlock(&ind->lock);
}

void nf_indicator_stop(struct nf_indicator *ind)
{
	if (!ind)
		return;
	pthread_mutex_lock(&ind->lock);
	ind->quit = 1;
	pthread_cond_signal(&ind->changed);
	pthread_mutex_unlock(&ind->lock);
	pthread_join(ind->thread, NULL);
	free_indicator(ind);
}
