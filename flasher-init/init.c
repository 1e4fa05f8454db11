/* SPDX-License-Identifier: GPL-2.0-or-later */
/* flasher-init: PID 1 of the worker's initramfs. Mounts the kernel's
 * filesystems, loads the modules shipped with it, gets the network up,
 * waits for the card, runs its job from netflashd with the flash engine,
 * and reboots (or powers off) when the master released it. On any failure
 * it says why on the console and to the master, waits, and reboots into the
 * netboot again. Run as an ordinary process (--cmdline FILE) it never
 * mounts, loads modules or reboots: on a host that would hit the host. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bootswitch.h"
#include "engine.h"
#include "gpio.h"
#include "indicator.h"
#include "jobrun.h"
#include "log.h"
#include "net.h"
#include "parse.h"

#define CMDLINE_MAX 4096
#define MODULES_LIST "/etc/netflash/modules"

/* How flasher-init ends as an ordinary process (tests); as PID 1 it reboots
 * or powers off instead, the same way for each. */
enum exit_code {
	EXIT_FLASHED = 0, /* written, verified and released */
	EXIT_FAILED = 1,  /* a failure, said on the console (and to the master) */
	EXIT_USAGE = 2,   /* wrong arguments for a test run */
	EXIT_NO_JOB = 3,  /* the master has no job for this worker: nothing done */
};

/* Where the worker is, in order. What fatal() still does depends on it:
 * tell the master of a failure it cannot otherwise see, and give a
 * reimaged worker its old boot files back while its card is untouched. */
enum phase {
	PHASE_CONFIG,  /* reading the command line, loading modules, lights */
	PHASE_NETWORK, /* the network is up: a failure is told to the master */
	PHASE_READY,   /* the card is there (and the button pressed); untouched */
	PHASE_ASKED,   /* HELLO was tried: a failure is the job's to report;
			* the card is still untouched */
	PHASE_WRITTEN, /* the engine touched the card: nothing to restore */
};

struct config {
	char server[64], token[65], target[128], after[16], mac[18], iface[IF_NAMESIZE];
	unsigned card_wait, fail_delay, dhcp_timeout;
	unsigned probe, stall_s, min_mbps;  /* card health: capacity probe on/off, watchdog, floor */
	char led[NF_GPIO_SPEC_MAX + 1], button[NF_GPIO_SPEC_MAX + 1], act[128];
	unsigned led_hold;                  /* seconds "done" stays lit before the reboot */
	int button_bad;                     /* netflash.button= too long */
	char bad_num[96];                   /* the first numeric netflash.* key with a bad value */
	struct nf_gpio_spec button_spec;    /* netflash.button=, parsed */
	struct nf_indicator *ind;           /* the status lights, or NULL */
	char cmdline[CMDLINE_MAX + 1];
	int pid1;
	enum phase phase;
};

/* The log target, the one global state: the console, /dev/kmsg and, once
 * connected, the master (lines said before that wait in a bounded backlog). */
#define BACKLOG_LINES 64
static int kmsg_fd = -1;
static struct nf_client *log_client;
static char backlog[BACKLOG_LINES][200];
static unsigned backlog_n;

static void log_to_master(const char *line)
{
	if (log_client)
		nf_client_log(log_client, line);
	else if (backlog_n < BACKLOG_LINES) {
		/* Backlog lines are cut to 199 bytes: boot messages are short. */
		size_t n = strnlen(line, sizeof(backlog[0]) - 1);

		memcpy(backlog[backlog_n], line, n);
		backlog[backlog_n++][n] = '\0';
	}
}

/* From now on lines go to the master too, the backlog first. */
static void log_attach(struct nf_client *c)
{
	log_client = c;
	for (unsigned i = 0; i < backlog_n; i++)
		nf_client_log(c, backlog[i]);
	backlog_n = 0;
}

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	char line[700], stamped[720];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* Seconds since the kernel started (CLOCK_BOOTTIME): boot-time figures. */
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	snprintf(stamped, sizeof(stamped), "[%6.2f] netflash: %s", (double)ts.tv_sec + ts.tv_nsec / 1e9, line);
	fprintf(stderr, "%s\n", stamped);
	if (kmsg_fd >= 0)
		/* <5> (notice): above the console's default threshold (7, and
		 * the served cmdline drops quiet and loglevel=), so the copy
		 * reaches every console=, the serial one too. */
		dprintf(kmsg_fd, "<5>netflash: %s\n", line);
	log_to_master(stamped);
}

static void setup_pid1(void)
{
	int fd;

	mkdir("/proc", 0555);
	mkdir("/sys", 0555);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	/* cpio cannot carry /dev/console: reopen it from devtmpfs. */
	fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	setvbuf(stderr, NULL, _IOLBF, 0);
}

/* Ends PID 1 as policy says; an ordinary process just exits. */
static void __attribute__((noreturn)) finish(const struct config *c, enum exit_code code, int power_off)
{
	if (code == EXIT_FLASHED)
		nf_indicator_set(c->ind, NF_LED_DONE);
	else if (code == EXIT_NO_JOB)
		nf_indicator_set(c->ind, NF_LED_OFF);
	if (!c->pid1)
		exit(code);
	sync();
	if (c->ind && code == EXIT_FLASHED && c->led_hold)
		sleep(c->led_hold);
	say("%s", power_off ? "powering off" : "rebooting");
	reboot(power_off ? RB_POWER_OFF : RB_AUTOBOOT);
	/* Machines without PSCI (Pi 3 in QEMU) only halt: wait for the watchdog. */
	for (;;)
		pause();
}

/* A reimage that ends before anything was written gives the worker its old
 * system back: the firmware netflash-agent moved aside on the card's first
 * (FAT) partition is moved back, so the reboot comes from the card. */
static void restore_boot_files(const struct config *c)
{
	static const char dir[] = "/run/netflash-boot";
	char part[160], detail[600];
	size_t n = strlen(c->target);
	int r;

	if (!c->pid1 || (c->phase != PHASE_READY && c->phase != PHASE_ASKED) || n == 0)
		return;
	snprintf(part, sizeof(part), "%s%s1", c->target, c->target[n - 1] >= '0' && c->target[n - 1] <= '9' ? "p" : "");
	mkdir("/run", 0755);
	mkdir(dir, 0700);
	if (mount(part, dir, "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return; /* no FAT partition (a blank card), or no vfat: nothing to restore */
	r = nf_boot_restore(dir, detail, sizeof(detail));
	if (r > 0)
		say("nothing was written: moved %d firmware file(s) back on %s, so this worker boots its old system", r,
		    part);
	else if (r != -ENOENT)
		say("could not restore the firmware on %s: %s", part, detail);
	umount(dir);
	sync();
}

/* A failure after the network came up but before the job was asked for
 * (no card, a start button that cannot be read): without this the master
 * would only see a Pi that fetched its boot files and went quiet. Takes
 * the job just to fail it, sending the boot log along. Best effort. */
static void tell_master(const struct config *c, enum nf_stage stage, const char *why)
{
	struct nf_flash_opts fo = { 0 };
	struct nf_flash_result res = { 0 };
	struct nf_jobrun jr;
	char detail[600];
	int r = nf_jobrun_start(&jr, c->server, c->mac, c->token, NULL, 0, &fo, detail, sizeof(detail));

	if (r < 0) {
		if (r != -ENOENT)
			say("could not tell the master: %s", detail);
		nf_client_close(&jr.client);
		return;
	}
	log_attach(&jr.client);
	res.stage = stage;
	snprintf(res.detail, sizeof(res.detail), "%.500s", why);
	nf_jobrun_finish(&jr, -EIO, &res, 0, detail, sizeof(detail));
	log_client = NULL;
	nf_client_close(&jr.client);
	say("told the master at %s", c->server);
}

/* Says why on the console (and, once connected, to the master through the
 * log), waits, and reboots into the netboot. A flash failure has been
 * reported as FAIL by its caller already; one before the job is reported
 * here. */
static void __attribute__((noreturn, format(printf, 3, 4)))
fatal(const struct config *c, enum nf_stage stage, const char *fmt, ...)
{
	char why[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	say("FAILED (%s): %s", nf_stage_name(stage), why);
	if (c->phase == PHASE_NETWORK || c->phase == PHASE_READY)
		tell_master(c, stage, why);
	nf_indicator_set(c->ind, NF_LED_FAILED);
	restore_boot_files(c);
	if (c->pid1 && c->fail_delay) {
		say("rebooting into the netboot again in %u s", c->fail_delay);
		sleep(c->fail_delay);
	}
	finish(c, EXIT_FAILED, 0);
}

/* netflash.key=value from the kernel command line into out (empty if
 * absent or too long). Returns 1 if found, 0 if absent, -E2BIG if too long. */
static int cmdline_get(const char *cmdline, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	out[0] = '\0';
	while ((p = strstr(p, key))) {
		if ((p == cmdline || p[-1] == ' ') && p[klen] == '=') {
			size_t n = strcspn(p + klen + 1, " \n");

			if (n >= cap)
				return -E2BIG;
			memcpy(out, p + klen + 1, n);
			out[n] = '\0';
			return 1;
		}
		p += klen;
	}
	return 0;
}

/* A numeric key: def when absent. A value that is not a number in
 * [0, max] is remembered in c->bad_num (the first one) and stops the
 * worker at config time, as a bad netflash.button= does: a typo must not
 * quietly become the default. */
static unsigned cmdline_uint(struct config *c, const char *key, unsigned def, unsigned max)
{
	char v[16], q[40];
	uint64_t n;
	int r = cmdline_get(c->cmdline, key, v, sizeof(v));

	if (r == 0)
		return def;
	if (r > 0 && nf_parse_u64(v, 0, max, &n) == 0)
		return (unsigned)n;
	if (!c->bad_num[0])
		snprintf(c->bad_num, sizeof(c->bad_num), "%s=%s: expected a whole number from 0 to %u", key,
			 r < 0 ? "(too long)" : nf_quote(q, sizeof(q), v), max);
	return def;
}

/* The netflash.* keys of the kernel command line (docs/kernel-cmdline.md):
 * where each goes in struct config, its default and, for numbers, the
 * largest value taken. netflash.button and netflash.act have rules of their
 * own (read_config). */
#define STR_KEY(k, field, def) { k, offsetof(struct config, field), sizeof(((struct config *)0)->field), def, 0 }
#define UINT_KEY(k, field, def, max) { k, offsetof(struct config, field), 0, #def, max }
static const struct cmdline_key {
	const char *key;
	size_t off, cap;     /* cap 0: an unsigned number */
	const char *def;     /* NULL: empty */
	unsigned max;
} cmdline_keys[] = {
	STR_KEY("netflash.server", server, NULL),
	STR_KEY("netflash.token", token, NULL),
	STR_KEY("netflash.target", target, "/dev/mmcblk0"),
	STR_KEY("netflash.after", after, "reboot"),
	STR_KEY("netflash.mac", mac, NULL),
	STR_KEY("netflash.iface", iface, NULL),
	STR_KEY("netflash.led", led, NULL),
	UINT_KEY("netflash.card_wait", card_wait, 30, 3600),
	UINT_KEY("netflash.fail_delay", fail_delay, 10, 3600),
	UINT_KEY("netflash.dhcp_timeout", dhcp_timeout, 60, 3600),
	UINT_KEY("netflash.probe", probe, 1, 1),
	UINT_KEY("netflash.stall", stall_s, 5, 3600),
	UINT_KEY("netflash.min_mbps", min_mbps, 0, 100000),
	UINT_KEY("netflash.led_hold", led_hold, 3, 600),
};

/* One key of the table into c: its value, or its default when absent or
 * empty (a string too long for its field counts as absent). */
static void read_key(struct config *c, const struct cmdline_key *k)
{
	char *field = (char *)c + k->off;

	if (k->cap == 0) {
		*(unsigned *)(void *)field = cmdline_uint(c, k->key, (unsigned)strtoul(k->def, NULL, 10), k->max);
		return;
	}
	cmdline_get(c->cmdline, k->key, field, k->cap);
	if (!field[0] && k->def)
		snprintf(field, k->cap, "%s", k->def);
}

static int read_config(struct config *c, const char *file)
{
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, c->cmdline, CMDLINE_MAX);
	close(fd);
	if (n < 0)
		return -errno;
	c->cmdline[n] = '\0';
	for (size_t i = 0; i < sizeof(cmdline_keys) / sizeof(cmdline_keys[0]); i++)
		read_key(c, &cmdline_keys[i]);
	/* An unreadable button setting must not mean "no button". */
	c->button_bad = cmdline_get(c->cmdline, "netflash.button", c->button, sizeof(c->button)) < 0;
	cmdline_get(c->cmdline, "netflash.act", c->act, sizeof(c->act));
	if (!c->act[0])
		snprintf(c->act, sizeof(c->act), "%s", c->pid1 ? "auto" : "off");
	return 0;
}

/* Parameters for module name from "name.param=value" words of the cmdline:
 * the kernel applies those to built-in code only, not to loaded modules. */
static void module_params(const char *cmdline, const char *name, char *out, size_t cap)
{
	char word[256];
	const char *p = cmdline;
	size_t o = 0, nlen = strlen(name);

	out[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, " \n");

		if (n < sizeof(word) && n > nlen + 1 && strncmp(p, name, nlen) == 0 && p[nlen] == '.') {
			memcpy(word, p + nlen + 1, n - nlen - 1);
			word[n - nlen - 1] = '\0';
			if (o + strlen(word) + 2 < cap)
				o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? " " : "", word);
		}
		p += n;
		p += strspn(p, " \n");
	}
}

/* Loads the modules the initramfs builder listed, in dependency order. */
static void load_modules(const struct config *c)
{
	char line[512], params[512], name[512];
	FILE *f = fopen(MODULES_LIST, "re");
	unsigned loaded = 0;

	if (!f)
		return; /* built-in drivers (Raspberry Pi OS kernels) */
	while (fgets(line, sizeof(line), f)) {
		char *base, *dot;
		int fd;

		line[strcspn(line, "\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		base = strrchr(line, '/');
		snprintf(name, sizeof(name), "%s", base ? base + 1 : line);
		if ((dot = strstr(name, ".ko")))
			*dot = '\0';
		for (char *q = name; *q; q++)
			if (*q == '-')
				*q = '_';
		module_params(c->cmdline, name, params, sizeof(params));
		fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (syscall(SYS_finit_module, fd, params, 0) < 0 && errno != EEXIST))
			say("cannot load module %s: %s, ignoring", name, strerror(errno));
		else
			loaded++;
		if (fd >= 0)
			close(fd);
	}
	fclose(f);
	say("loaded %u modules", loaded);
}

static void bring_up_network(struct config *c)
{
	char ifname[IF_NAMESIZE];
	struct nf_lease lease;
	uint8_t mac[6];
	char ip[16], gw[16];
	int r;

	r = nf_net_find(c->iface[0] ? c->iface : NULL, 20, ifname);
	if (r < 0)
		fatal(c, NF_STAGE_NETWORK, "no network interface appeared within 20 s");
	if ((r = nf_net_mac(ifname, mac)) < 0)
		fatal(c, NF_STAGE_NETWORK, "cannot read the MAC of %s: %s", ifname, strerror(-r));
	if (!c->mac[0]) {
		struct nf_mac m;

		nf_mac_set(&m, mac);
		nf_mac_colon(&m, c->mac);
	}
	if (!c->pid1 || nf_net_configured(ifname)) {
		say("using %s (%s), configured already", ifname, c->mac);
		return;
	}
	if ((r = nf_net_up(ifname)) < 0)
		fatal(c, NF_STAGE_NETWORK, "cannot bring %s up: %s", ifname, strerror(-r));
	say("%s (%s) is up; asking DHCP for an address", ifname, c->mac);
	r = nf_dhcp(ifname, mac, c->dhcp_timeout, &lease);
	if (r < 0)
		fatal(c, NF_STAGE_NETWORK, "no DHCP lease on %s within %u s: %s", ifname, c->dhcp_timeout, strerror(-r));
	if ((r = nf_net_apply(ifname, &lease)) < 0)
		fatal(c, NF_STAGE_NETWORK, "cannot configure %s: %s", ifname, strerror(-r));
	inet_ntop(AF_INET, &lease.addr, ip, sizeof(ip));
	inet_ntop(AF_INET, &lease.router, gw, sizeof(gw));
	say("%s has %s (router %s)", ifname, ip, gw);
}

/* Waits for the card; returns its size. */
static uint64_t wait_card(const struct config *c)
{
	time_t end = time(NULL) + c->card_wait;
	uint64_t size = 0;
	struct stat st;

	while (stat(c->target, &st) < 0) {
		if (time(NULL) >= end)
			return 0;
		usleep(200000);
	}
	if (S_ISBLK(st.st_mode)) {
		int fd = open(c->target, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			ioctl(fd, BLKGETSIZE64, &size);
			close(fd);
		}
	} else {
		size = (uint64_t)st.st_size;
	}
	return size ? size : 1;
}

struct progress_ctx {
	double last;
	struct nf_indicator *ind;
};

/* netflash.led= and netflash.act=: the status lights. A light that cannot
 * be had is said and ignored: it is not worth a card. */
static void start_lights(struct config *c)
{
	struct nf_gpio_spec spec;
	struct nf_gpio *led = NULL;
	char act[160], detail[300], q[NF_GPIO_SPEC_MAX + 8];
	const char *why;
	int r, had_led;

	if (c->led[0]) {
		if (nf_gpio_parse(c->led, &spec, &why) < 0)
			say("netflash.led=%s: %s, ignoring", nf_quote(q, sizeof(q), c->led), why);
		else if (nf_gpio_output(&spec, "netflash-led", 0, &led, detail, sizeof(detail)) < 0)
			say("status LED: %s, ignoring", detail);
	}
	if (nf_act_led_resolve(c->act, act, sizeof(act), detail, sizeof(detail)) < 0) {
		say("netflash.act: %s, ignoring", detail);
		act[0] = '\0';
	}
	if (!led && !act[0])
		return;
	had_led = led != NULL;
	r = nf_indicator_start(&c->ind, led, act, detail, sizeof(detail));
	if (r < 0 && act[0]) {
		/* The ACT LED would not come: go on with the GPIO LED alone. */
		say("ACT LED: %s, ignoring", detail);
		act[0] = '\0';
		led = NULL;
		if (!had_led)
			return;
		r = nf_gpio_output(&spec, "netflash-led", 0, &led, detail, sizeof(detail));
		if (r == 0)
			r = nf_indicator_start(&c->ind, led, NULL, detail, sizeof(detail));
	}
	if (r < 0)
		say("status lights: %s, ignoring", detail);
	else
		say("status lights on%s%s%s%s", led ? " " : "", led ? c->led : "", act[0] ? " and " : "", act[0] ? act : "");
}

/* A start button that is asked for but cannot be understood, or a number
 * that is not one, stops the worker before anything else. */
static void check_button(struct config *c)
{
	char q[NF_GPIO_SPEC_MAX + 8];
	const char *why;

	if (c->bad_num[0])
		fatal(c, NF_STAGE_CONFIG, "%s", c->bad_num);
	if (c->button_bad)
		fatal(c, NF_STAGE_CONFIG, "netflash.button= is longer than %d characters", NF_GPIO_SPEC_MAX);
	if (c->button[0] && nf_gpio_parse(c->button, &c->button_spec, &why) < 0)
		fatal(c, NF_STAGE_CONFIG, "netflash.button=%s: %s", nf_quote(q, sizeof(q), c->button), why);
}

/* netflash.button=: nothing is written before someone presses it. A button
 * that cannot be read stops the worker: flashing without the press the
 * operator asked for is worse than not flashing. */
static void wait_start_button(struct config *c)
{
	struct nf_gpio *b = NULL;
	char detail[300];
	int r;

	if (!c->button[0])
		return;
	if ((r = nf_gpio_input(&c->button_spec, "netflash-start", &b, detail, sizeof(detail))) < 0)
		fatal(c, NF_STAGE_BUTTON, "start button: %s", detail);
	nf_indicator_set(c->ind, NF_LED_BUTTON);
	say("waiting for the start button (%s) before writing %s", c->button, c->target);
	r = nf_gpio_wait_press(b, -1, 30, NULL);
	nf_gpio_close(b);
	if (r < 1)
		fatal(c, NF_STAGE_BUTTON, "cannot read the start button %s: %s", c->button, strerror(-r));
	say("start button pressed");
	nf_indicator_set(c->ind, NF_LED_BOOT);
}

static void console_progress(const struct nf_progress *p, void *ctx)
{
	struct progress_ctx *pc = ctx;

	nf_indicator_set(pc->ind, p->stage == NF_STAGE_WRITE ? NF_LED_WRITE : NF_LED_VERIFY);
	/* A line every 5 s on the console: serial consoles are slow. */
	if (p->elapsed - pc->last < 5)
		return;
	pc->last = p->elapsed;
	say("%s: %llu of %llu MiB (%.1f MB/s)", nf_stage_name(p->stage),
	    (unsigned long long)((p->stage == NF_STAGE_WRITE ? p->written : p->verified) >> 20),
	    (unsigned long long)(p->total >> 20), p->elapsed > 0 ? (double)p->written / 1e6 / p->elapsed : 0);
}

int main(int argc, char **argv)
{
	static struct config c;
	static struct nf_jobrun jr;
	struct nf_flash_opts fo = { .format = NF_FMT_UNKNOWN, .zero_skip = 1, .src = { .retry_seconds = 120 } };
	struct nf_flash_result res;
	const char *cmdline_file = "/proc/cmdline";
	char detail[700];
	struct progress_ctx pc = { .last = -10 };
	uint64_t card;
	int r;

	c.pid1 = getpid() == 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cmdline") == 0 && i + 1 < argc && !c.pid1) {
			cmdline_file = argv[++i];
		} else if (c.pid1) {
			continue; /* the kernel passes unknown cmdline words as arguments */
		} else {
			fprintf(stderr, "usage: flasher-init --cmdline FILE   (as an ordinary process, for tests)\n");
			return EXIT_USAGE;
		}
	}
	if (!c.pid1 && argc < 2) {
		fprintf(stderr, "flasher-init: not PID 1; refusing to mount or reboot anything. "
				"For a test run: flasher-init --cmdline FILE\n");
		return EXIT_USAGE;
	}
	if (c.pid1) {
		setup_pid1();
		signal(SIGCHLD, SIG_IGN); /* PID 1 reaps: we start no children, but be sure */
	}
	nf_log_setup("netflash", NF_LOG_INFO);
	say("flasher-init %s starting%s", NETFLASH_VERSION, c.pid1 ? " as PID 1" : " (test mode: no mounts, no reboot)");
	if ((r = read_config(&c, cmdline_file)) < 0)
		fatal(&c, NF_STAGE_CONFIG, "cannot read %s: %s", cmdline_file, strerror(-r));
	if (!c.server[0] || !c.token[0])
		fatal(&c, NF_STAGE_CONFIG, "the kernel command line lacks netflash.server= or netflash.token=");
	check_button(&c);
	if (c.pid1)
		load_modules(&c);
	start_lights(&c);
	bring_up_network(&c);
	c.phase = PHASE_NETWORK;
	card = wait_card(&c);
	if (!card)
		fatal(&c, NF_STAGE_TARGET, "no SD card found: %s did not appear within %u s", c.target, c.card_wait);
	wait_start_button(&c);
	c.phase = PHASE_READY;
	fo.target = c.target;
	fo.progress = console_progress;
	pc.ind = c.ind;
	fo.progress_ctx = &pc;
	fo.probe_capacity = (int)c.probe;
	fo.stall_s = c.stall_s ? c.stall_s : NF_STALL_DEFAULT_S;
	c.phase = PHASE_ASKED;
	r = nf_jobrun_start(&jr, c.server, c.mac, c.token, c.target, card, &fo, detail, sizeof(detail));
	jr.min_mbps = c.min_mbps;
	if (r == -ENOENT) {
		say("%s", detail);
		restore_boot_files(&c);
		finish(&c, EXIT_NO_JOB, strcmp(c.after, "poweroff") == 0);
	}
	if (r < 0)
		fatal(&c, NF_STAGE_HELLO, "%s", detail);
	log_attach(&jr.client);
	say("%s; writing %s", detail, c.target);
	nf_indicator_set(c.ind, NF_LED_WRITE);
	r = nf_flash(&fo, &res);
	if (res.touched)
		c.phase = PHASE_WRITTEN;
	if (res.decode_plan[0])
		say("%s", res.decode_plan);
	if (r < 0) {
		nf_jobrun_finish(&jr, r, &res, 0, detail, sizeof(detail));
		fatal(&c, res.stage != NF_STAGE_NONE ? res.stage : NF_STAGE_FLASH, "%s", res.detail);
	}
	if (res.probe_detail[0])
		say("%s", res.probe_detail);
	if (res.zero_plan[0])
		say("%s", res.zero_plan);
	say("wrote and verified %llu bytes in %.1f s (%llu skipped as zeros)", (unsigned long long)res.image_bytes,
	    res.t_total, (unsigned long long)res.skipped_bytes);
	if (res.patched)
		say("wrote this worker's provisioning patch (%llu bytes) to the boot partition and read it back",
		    (unsigned long long)fo.patch->bytes);
	r = nf_jobrun_finish(&jr, 0, &res, 600, detail, sizeof(detail));
	if (r < 0)
		fatal(&c, NF_STAGE_REPORT, "%s", detail);
	say("%s", detail);
	finish(&c, EXIT_FLASHED, strcmp(c.after, "poweroff") == 0);
}
