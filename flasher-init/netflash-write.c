/* SPDX-License-Identifier: GPL-2.0-or-later */
/* netflash-write: flash a (compressed) image from a file or an NFS URL onto
 * a card or file, verify it by reading it back, first MiB last. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "health.h"
#include "gpio.h"
#include "indicator.h"
#include "jobrun.h"
#include "json.h"
#include "log.h"
#include "parse.h"

#ifndef NETFLASH_VERSION
#define NETFLASH_VERSION "0.1.0"
#endif

enum progress_mode { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_JSON, PROGRESS_NONE };

struct cli {
	struct nf_flash_opts fo;
	enum progress_mode progress;
	int quiet;
	int bar_drawn;
	const char *report_to, *mac, *token;
	double min_mbps;
	const char *patch_file;
	struct nf_patch patch;
	struct nf_jobrun job;
	const char *led, *act_led, *button;  /* --led, --act-led, --button */
	struct nf_indicator *ind;
};

static atomic_int interrupted;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&interrupted, 1);
}

static void usage(FILE *out)
{
	fputs(
"Usage: netflash-write [OPTIONS] SOURCE TARGET\n"
"       netflash-write [OPTIONS] --report-to IP:PORT --mac MAC --token TOKEN TARGET\n"
"\n"
"Write a disk image onto a card (or a file) and verify it by reading it back.\n"
"\n"
"SOURCE is a local file or nfs://SERVER/EXPORT/PATH/IMAGE[?version=3&nfsport=N&mountport=M]\n"
"(read with libnfs; no mount, no kernel NFS client). Its format is detected\n"
"from its first bytes: raw, gzip (also multi-member), xz (multi-block xz is\n"
"decoded on all CPUs) or zstd (also pzstd's, with skippable frames). A name\n"
"ending in .xz, .gz, .zst ... must hold that format. zip, 7z, bzip2, lz4,\n"
"lzip, .Z and tar-wrapped images are refused with what they are: 'netflash\n"
"image add' converts those. The decoded image must start like a disk (an MBR,\n"
"or a protective MBR and a GPT header) before anything is written.\n"
"TARGET is a block device (the whole card) or a regular file, created if\n"
"missing and grown as needed.\n"
"\n"
"The first MiB of TARGET (partition table, boot sector) is wiped before the\n"
"first write and written only after the rest is written and verified: a flash\n"
"that fails or is interrupted leaves a card that does not boot.\n"
"\n"
"Options:\n"
"  -f, --format=FMT        require this format (raw, gzip, xz, zstd)\n"
"      --expect-sha256=HEX the decoded image must have this SHA-256\n"
"      --expect-size=SIZE  the decoded image must have this size (bytes, or K/M/G)\n"
"      --no-zero-skip      write all-zero blocks too (default: zero them cheaply)\n"
"      --force             allow writing to a partition instead of a whole disk\n"
"      --not-a-disk        write an image that has no partition table (a bare\n"
"                          filesystem, a blob); compressed-again data is still\n"
"                          refused\n"
"  -j, --threads=N         xz decoder threads (default: one per CPU)\n"
"      --xz-memlimit=SIZE  the decoder's memory budget (default: a quarter of\n"
"                          MemAvailable, at least 40M, at most 1G): xz runs as\n"
"                          many threads as fit, a zstd window beyond it (or\n"
"                          beyond 128M) is refused; the plan is logged\n"
"      --nfs-depth=N       NFS reads in flight (default 8, max 16)\n"
"      --retry-seconds=N   keep reconnecting to a lost NFS server this long (default 60)\n"
"      --timeout=N         seconds before one NFS call counts as failed (default 10)\n"
"      --progress=MODE     bar, json (one JSON object a line on stdout), none;\n"
"                          default: bar when stderr is a terminal, else none\n"
"  -q, --quiet             no summary line\n"
"      --no-probe-capacity skip the capacity probe, which runs by default:\n"
"                          before writing, marker blocks written up to the\n"
"                          card's end must read back (what was there is put\n"
"                          back); a fake or failing card is refused, nothing of\n"
"                          the image written. (--probe-capacity: the default.)\n"
"                          Whatever the probe, every block is read back after\n"
"                          it is written, and the first 4 KiB of every block\n"
"                          again once all are written\n"
"      --stall=SECONDS     a single write taking this long is a stall: reported\n"
"                          while it hangs and in the summary (default 5)\n"
"      --min-mbps=N        report a card that writes slower than N MB/s\n"
"      --patch=FILE        after the image is verified, write this provisioning\n"
"                          patch (made by 'netflash enroll' with --hostname,\n"
"                          --user, ...) and read it back; the image must be the\n"
"                          one the patch was made for\n"
"      --led=CHIP:LINE[:FLAG]...  show the stage on an LED on this GPIO line\n"
"                          (libgpiod): blip each second while starting, slow\n"
"                          blink waiting for --button, fast blink writing,\n"
"                          double blip verifying, steady on done, triple blip\n"
"                          failed. CHIP is gpiochipN or a chip label, LINE an\n"
"                          offset or a line name; FLAGs: active-low, pull-up,\n"
"                          pull-down, bias-off, open-drain\n"
"      --act-led=NAME      the same on an LED class device (/sys/class/leds/\n"
"                          NAME, or a path; \"auto\": ACT or led0)\n"
"      --button=CHIP:LINE[:FLAG]...  wait for a press of this button before\n"
"                          writing anything (a button to ground:\n"
"                          gpiochip0:17:active-low:pull-up)\n"
"      --report-to IP:PORT ask netflashd there for the job (the image and its\n"
"                          digest) instead of SOURCE, report progress, and\n"
"                          DONE or FAIL; exit 0 only once the master RELEASED\n"
"      --mac MAC, --token TOKEN   this worker's enrollment (with --report-to)\n"
"  -h, --help              show this help\n"
"  -V, --version           show the version\n"
"\n"
"Refused, before anything is written: a mounted target, the disk holding the\n"
"running root filesystem, a read-only target, a partition (without --force),\n"
"an image known to be larger than the target, unknown formats.\n"
"\n"
"Exit status: 0 written and verified (with --report-to: and the master released\n"
"the worker); 1 flash failed (the first MiB was not written), or the master\n"
"refused the worker or did not release it; 2 usage error; 3 (--report-to) the\n"
"master has no job for this worker (NOJOB: released, failed, too many\n"
"attempts, its image removed ...; the reason is printed).\n", out);
}

static double mb_s(uint64_t bytes, double s)
{
	return s > 0 ? (double)bytes / 1e6 / s : 0;
}


static void progress_bar(const struct nf_progress *p, struct cli *c)
{
	uint64_t done = p->stage == NF_STAGE_WRITE ? p->written : p->verified;
	uint64_t total = p->total;
	double frac = total ? (double)done / (double)total : 0;
	double rate = mb_s(done, p->elapsed);
	char d[32], t[32], eta[32] = "--:--", bar[31];
	int fill = (int)(frac * 30);

	if (p->stage != NF_STAGE_WRITE)
		rate = 0;
	if (total && rate > 0 && done < total) {
		unsigned s = (unsigned)((double)(total - done) / 1e6 / rate);

		snprintf(eta, sizeof(eta), "%u:%02u", s / 60, s % 60);
	}
	memset(bar, '#', (size_t)(fill > 30 ? 30 : fill));
	memset(bar + (fill > 30 ? 30 : fill), '.', (size_t)(30 - (fill > 30 ? 30 : fill)));
	bar[30] = '\0';
	nf_format_bytes(done, d, sizeof(d));
	if (total)
		nf_format_bytes(total, t, sizeof(t));
	else
		snprintf(t, sizeof(t), "?");
	fprintf(stderr, "\r%-8s [%s] %s / %s  %.1f MB/s  ETA %s%s\033[K",
		p->reconnecting ? "retry" : nf_stage_name(p->stage), total ? bar : "..............................",
		d, t, rate, eta, p->reconnecting ? "  (NFS server lost, reconnecting)" : "");
	c->bar_drawn = 1;
}

static void progress_json(const struct nf_progress *p)
{
	printf("{\"event\":\"progress\",\"stage\":\"%s\",\"written\":%llu,\"total\":%llu,"
	       "\"skipped\":%llu,\"verified\":%llu,\"source_read\":%llu,\"source_total\":%llu,"
	       "\"elapsed\":%.3f,\"reconnects\":%u,\"reconnecting\":%s}\n",
	       nf_stage_name(p->stage), (unsigned long long)p->written, (unsigned long long)p->total,
	       (unsigned long long)p->skipped, (unsigned long long)p->verified,
	       (unsigned long long)p->src_read, (unsigned long long)p->src_total, p->elapsed,
	       p->reconnects, p->reconnecting ? "true" : "false");
	fflush(stdout);
}

static void on_progress(const struct nf_progress *p, void *ctx)
{
	struct cli *c = ctx;

	nf_indicator_set(c->ind, p->stage == NF_STAGE_WRITE ? NF_LED_WRITE : NF_LED_VERIFY);
	if (c->progress == PROGRESS_BAR)
		progress_bar(p, c);
	else if (c->progress == PROGRESS_JSON)
		progress_json(p);
}

static void summary(const struct cli *c, const struct nf_flash_result *r, int err)
{
	char sha[65], img[32], wr[32], sk[32], msg[1100];

	nf_format_hex(r->sha256, 32, sha);
	if (c->progress == PROGRESS_JSON) {
		if (err)
			printf("{\"event\":\"error\",\"stage\":\"%s\",\"errno\":%d,\"bad_offset\":%lld,"
			       "\"message\":%s}\n", nf_stage_name(r->stage), -err,
			       r->have_bad_offset ? (long long)r->bad_offset : -1LL,
			       nf_json_str(msg, sizeof(msg), r->detail));
		else
			printf("{\"event\":\"done\",\"format\":\"%s\",\"image_bytes\":%llu,\"written\":%llu,"
			       "\"skipped\":%llu,\"sha256\":\"%s\",\"seconds\":%.3f,\"t_read\":%.3f,"
			       "\"t_decode\":%.3f,\"t_write\":%.3f,\"t_verify\":%.3f,\"xz_threads\":%u,"
			       "\"reconnects\":%u}\n",
			       nf_format_name(r->format), (unsigned long long)r->image_bytes,
			       (unsigned long long)r->written_bytes, (unsigned long long)r->skipped_bytes, sha,
			       r->t_total, r->t_read, r->t_decode, r->t_write, r->t_verify, r->xz_threads,
			       r->reconnects);
		fflush(stdout);
	}
	if (c->quiet)
		return;
	if (r->decode_plan[0])
		nf_info("%s", r->decode_plan);
	if (err)
		return;
	if (r->zero_plan[0])
		nf_info("%s", r->zero_plan);
	nf_format_bytes(r->image_bytes, img, sizeof(img));
	nf_format_bytes(r->written_bytes, wr, sizeof(wr));
	nf_format_bytes(r->skipped_bytes, sk, sizeof(sk));
	nf_info("wrote and verified %s %s image on '%s' in %.1f s (%.1f MB/s): %s written, %s zero "
		"skipped; busy read %.1f s, decode %.1f s, write %.1f s, verify %.1f s (of which %.2f s re-reading "
		"each block's first 4 KiB after the last write); %u NFS reconnect(s); sha256 %s",
		img, nf_format_name(r->format), c->fo.target, r->t_total, mb_s(r->image_bytes, r->t_total),
		wr, sk, r->t_read, r->t_decode, r->t_write, r->t_verify, r->t_recheck, r->reconnects, sha);
}

static int bad_option(const char *opt, const char *val, const char *why)
{
	char q[128];

	nf_err("invalid %s %s: %s (see --help)", opt, nf_quote(q, sizeof(q), val), why);
	return 2;
}

enum {
	OPT_SHA = 256, OPT_SIZE, OPT_NOZERO, OPT_FORCE, OPT_XZMEM, OPT_DEPTH, OPT_RETRY,
	OPT_TIMEOUT, OPT_PROGRESS, OPT_REPORT, OPT_MAC, OPT_TOKEN, OPT_PROBE, OPT_STALL, OPT_MINMBPS,
	OPT_PATCH, OPT_LED, OPT_ACT, OPT_BUTTON, OPT_NOTDISK, OPT_NOPROBE,
};

/* Takes one option (getopt_long's opt and optarg) into c. Returns 0, or 2
 * after saying what is wrong with it; --help and --version exit. */
static int take_option(struct cli *c, int opt, const char *arg)
{
	struct nf_flash_opts *o = &c->fo;
	uint64_t v;

	switch (opt) {
	case 'f':
		o->format = nf_format_parse(arg);
		if (o->format == NF_FMT_UNKNOWN)
			return bad_option("--format", arg, "expected raw, gzip, xz or zstd");
		break;
	case OPT_SHA:
		if (nf_parse_hex(arg, o->expect_sha256, 32) < 0)
			return bad_option("--expect-sha256", arg, "expected 64 hex digits");
		o->have_expect_sha256 = 1;
		break;
	case OPT_SIZE:
		if (nf_parse_size(arg, 1ull << 50, &o->expect_size) < 0 || o->expect_size == 0)
			return bad_option("--expect-size", arg, "expected a positive size like 4294967296 or 4G");
		break;
	case OPT_NOZERO:
		o->zero_skip = 0;
		break;
	case OPT_FORCE:
		o->allow_partition = 1;
		break;
	case 'j':
		if (nf_parse_u64(arg, 1, 256, &v) < 0)
			return bad_option("--threads", arg, "expected 1..256");
		o->threads = (unsigned)v;
		break;
	case OPT_XZMEM:
		if (nf_parse_size(arg, 1ull << 40, &o->xz_memlimit) < 0 || o->xz_memlimit < (1u << 20))
			return bad_option("--xz-memlimit", arg, "expected a size of at least 1M");
		break;
	case OPT_DEPTH:
		if (nf_parse_u64(arg, 1, 16, &v) < 0)
			return bad_option("--nfs-depth", arg, "expected 1..16");
		o->src.nfs_depth = (unsigned)v;
		break;
	case OPT_RETRY:
		if (nf_parse_u64(arg, 0, 86400, &v) < 0)
			return bad_option("--retry-seconds", arg, "expected 0..86400");
		o->src.retry_seconds = (unsigned)v;
		break;
	case OPT_TIMEOUT:
		if (nf_parse_u64(arg, 1, 3600, &v) < 0)
			return bad_option("--timeout", arg, "expected 1..3600");
		o->src.timeout_seconds = (unsigned)v;
		break;
	case OPT_PROGRESS:
		if (strcmp(arg, "bar") == 0)
			c->progress = PROGRESS_BAR;
		else if (strcmp(arg, "json") == 0)
			c->progress = PROGRESS_JSON;
		else if (strcmp(arg, "none") == 0)
			c->progress = PROGRESS_NONE;
		else
			return bad_option("--progress", arg, "expected bar, json or none");
		break;
	case 'q':
		c->quiet = 1;
		break;
	case OPT_REPORT:
		c->report_to = arg;
		break;
	case OPT_MAC:
		c->mac = arg;
		break;
	case OPT_TOKEN:
		c->token = arg;
		break;
	case OPT_PROBE:
		o->probe_capacity = 1;
		break;
	case OPT_NOPROBE:
		o->probe_capacity = 0;
		break;
	case OPT_NOTDISK:
		o->not_a_disk = 1;
		break;
	case OPT_STALL:
		if (nf_parse_u64(arg, 1, 3600, &v) < 0)
			return bad_option("--stall", arg, "expected 1..3600 seconds");
		o->stall_s = (double)v;
		break;
	case OPT_MINMBPS:
		if (nf_parse_u64(arg, 1, 100000, &v) < 0)
			return bad_option("--min-mbps", arg, "expected 1..100000");
		c->min_mbps = (double)v;
		break;
	case OPT_PATCH:
		c->patch_file = arg;
		break;
	case OPT_LED:
		c->led = arg;
		break;
	case OPT_ACT:
		c->act_led = arg;
		break;
	case OPT_BUTTON:
		c->button = arg;
		break;
	case 'h':
		usage(stdout);
		exit(0);
	case 'V':
		printf("netflash-write %s\n", NETFLASH_VERSION);
		exit(0);
	default:
		usage(stderr);
		return 2;
	}
	return 0;
}

/* SOURCE and TARGET, or TARGET alone with --report-to (the master names
 * the source). Returns 0 or 2 after saying why not. */
static int take_operands(struct cli *c, int argc, char **argv, int first)
{
	struct nf_flash_opts *o = &c->fo;

	if (c->report_to && c->patch_file) {
		nf_err("--patch and --report-to do not go together: the master sends the worker's patch");
		return 2;
	}
	if (c->report_to) {
		if (argc - first != 1 || !c->mac || !c->token) {
			nf_err("--report-to takes TARGET only, and needs --mac and --token (see --help)");
			return 2;
		}
		o->target = argv[first];
		return 0;
	}
	if (argc - first != 2) {
		nf_err("expected SOURCE and TARGET (see --help)");
		return 2;
	}
	o->source = argv[first];
	o->target = argv[first + 1];
	return 0;
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "expect-sha256", required_argument, NULL, OPT_SHA },
		{ "expect-size", required_argument, NULL, OPT_SIZE },
		{ "no-zero-skip", no_argument, NULL, OPT_NOZERO },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "not-a-disk", no_argument, NULL, OPT_NOTDISK },
		{ "threads", required_argument, NULL, 'j' },
		{ "xz-memlimit", required_argument, NULL, OPT_XZMEM },
		{ "nfs-depth", required_argument, NULL, OPT_DEPTH },
		{ "retry-seconds", required_argument, NULL, OPT_RETRY },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "progress", required_argument, NULL, OPT_PROGRESS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "report-to", required_argument, NULL, OPT_REPORT },
		{ "mac", required_argument, NULL, OPT_MAC },
		{ "token", required_argument, NULL, OPT_TOKEN },
		{ "probe-capacity", no_argument, NULL, OPT_PROBE },
		{ "no-probe-capacity", no_argument, NULL, OPT_NOPROBE },
		{ "stall", required_argument, NULL, OPT_STALL },
		{ "min-mbps", required_argument, NULL, OPT_MINMBPS },
		{ "patch", required_argument, NULL, OPT_PATCH },
		{ "led", required_argument, NULL, OPT_LED },
		{ "act-led", required_argument, NULL, OPT_ACT },
		{ "button", required_argument, NULL, OPT_BUTTON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int opt, r;

	while ((opt = getopt_long(argc, argv, "f:j:qhV", longopts, NULL)) != -1)
		if ((r = take_option(c, opt, optarg)) != 0)
			return r;
	return take_operands(c, argc, argv, optind);
}

/* What the card-health checks found, on stderr (and to the master through
 * jobrun with --report-to). */
static void card_health(const struct cli *c, const struct nf_flash_result *res, int r)
{
	if (res->probe_detail[0] && r == 0 && !c->quiet)
		nf_info("%s", res->probe_detail);
	/* rpi-imager writes such images too; the last sector is written short. */
	if (r == 0 && res->image_bytes % 512)
		nf_warn("the image is %llu bytes, not a whole number of 512-byte sectors; its last %llu bytes "
			"were written as a partial sector", (unsigned long long)res->image_bytes,
			(unsigned long long)(res->image_bytes % 512));
	struct nf_card_verdict v;

	/* With --report-to the job run reports (and logs) the slow card. */
	nf_card_verdict(res, c->report_to ? 0 : c->min_mbps, &v);
	if (v.stall[0])
		nf_warn("card stalls: %s", v.stall);
	if (v.slow[0])
		nf_warn("slow card: %s", v.slow);
}

/* --patch: the file, and the image it was made for. */
static int load_patch(struct cli *c)
{
	char q[PATH_MAX + 8];
	int r = nf_patch_load(&c->patch, c->patch_file);

	if (r < 0) {
		nf_err("cannot use patch %s: %s", nf_quote(q, sizeof(q), c->patch_file),
		       r == -EBADMSG ? "not a netflash provisioning patch, or damaged" : nf_strerror(r));
		return 1;
	}
	if (c->fo.have_expect_sha256 && memcmp(c->fo.expect_sha256, c->patch.base_sha256, 32) != 0) {
		nf_err("patch %s was made for another image than --expect-sha256 names",
		       nf_quote(q, sizeof(q), c->patch_file));
		return 1;
	}
	memcpy(c->fo.expect_sha256, c->patch.base_sha256, 32);
	c->fo.have_expect_sha256 = 1;
	c->fo.patch = &c->patch;
	return 0;
}

/* Requests a --led or --button line; 0, or the exit status. */
static int open_line(const char *opt, const char *text, int output, struct nf_gpio **g)
{
	struct nf_gpio_spec spec;
	char detail[300];
	const char *why;

	if (nf_gpio_parse(text, &spec, &why) < 0)
		return bad_option(opt, text, why);
	if ((output ? nf_gpio_output(&spec, "netflash-write", 0, g, detail, sizeof(detail))
		    : nf_gpio_input(&spec, "netflash-write", g, detail, sizeof(detail))) < 0) {
		nf_err("%s: %s", opt, detail);
		return 1;
	}
	return 0;
}

/* --led and --act-led: the status lights, before anything else happens. */
static int start_lights(struct cli *c)
{
	struct nf_gpio *led = NULL;
	char act[160] = "", detail[300];
	int r;

	if (c->led && (r = open_line("--led", c->led, 1, &led)) != 0)
		return r;
	if (c->act_led && nf_act_led_resolve(c->act_led, act, sizeof(act), detail, sizeof(detail)) < 0) {
		nf_gpio_close(led);
		nf_err("--act-led: %s", detail);
		return 1;
	}
	if (!led && !act[0])
		return 0;
	if (nf_indicator_start(&c->ind, led, act, detail, sizeof(detail)) < 0) {
		nf_err("--act-led: %s", detail);
		return 1;
	}
	return 0;
}

/* --button: nothing is written before it is pressed. */
static int wait_button(struct cli *c)
{
	struct nf_gpio *b = NULL;
	int r;

	if (!c->button)
		return 0;
	if ((r = open_line("--button", c->button, 0, &b)) != 0)
		return r;
	nf_indicator_set(c->ind, NF_LED_BUTTON);
	if (!c->quiet)
		nf_info("press the start button (%s) to write '%s'", c->button, c->fo.target);
	r = nf_gpio_wait_press(b, -1, 30, &interrupted);
	nf_gpio_close(b);
	nf_indicator_set(c->ind, NF_LED_BOOT);
	if (r < 0) {
		nf_err("cannot read the start button %s: %s", c->button, nf_strerror(r));
		return 1;
	}
	if (r == 0) {
		nf_err("interrupted while waiting for the start button; nothing was written");
		return 1;
	}
	if (!c->quiet)
		nf_info("start button pressed");
	return 0;
}

/* --report-to: the job from the master becomes the flash's source. */
static int get_job(struct cli *c)
{
	char detail[600];
	int r = nf_jobrun_start(&c->job, c->report_to, c->mac, c->token, c->fo.target, 0, &c->fo, detail,
				sizeof(detail));

	if (r == -ENOENT) {
		nf_info("%s", detail);
		return 3;
	}
	if (r < 0) {
		nf_err("%s", detail);
		return r == -EINVAL ? 2 : 1;
	}
	nf_info("%s", detail);
	return 0;
}

/* Waits for the button, gets the job, flashes and reports: the exit status. */
static int run(struct cli *c, struct nf_flash_result *res)
{
	int r;

	if (c->patch_file && (r = load_patch(c)) != 0)
		return r;
	if ((r = wait_button(c)) != 0)
		return r;
	if (c->report_to && (r = get_job(c)) != 0)
		return r;
	c->job.min_mbps = c->min_mbps;
	nf_indicator_set(c->ind, NF_LED_WRITE);
	r = nf_flash(&c->fo, res);
	if (c->bar_drawn)
		fputc('\n', stderr);
	summary(c, res, r);
	card_health(c, res, r);
	if (r < 0)
		nf_err("%s", res->detail);
	else if (res->patched && !c->quiet)
		nf_info("provisioning patch written and read back: %llu bytes in %zu extent(s)",
			(unsigned long long)c->fo.patch->bytes, c->fo.patch->n);
	nf_patch_free(&c->patch);
	if (c->report_to) {
		char detail[600];

		if (nf_jobrun_finish(&c->job, r, res, 300, detail, sizeof(detail)) == 0) {
			nf_info("%s", detail);
			return 0;
		}
		if (r == 0)
			nf_err("%s", detail);
		return 1;
	}
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct cli c = { .fo = {
		.format = NF_FMT_UNKNOWN,
		.zero_skip = 1,
		.probe_capacity = 1, /* opt out: --no-probe-capacity */
		.src = { .retry_seconds = 60 },
		.interrupt = &interrupted,
	} };
	struct nf_flash_result res;
	struct sigaction sa = { .sa_handler = on_signal };
	int r;

	nf_log_setup("netflash-write", NF_LOG_INFO);
	r = parse_args(argc, argv, &c);
	if (r)
		return r;
	if (c.progress == PROGRESS_AUTO)
		c.progress = isatty(STDERR_FILENO) ? PROGRESS_BAR : PROGRESS_NONE;
	c.fo.progress = on_progress;
	c.fo.progress_ctx = &c;
	c.fo.progress_ms = c.progress == PROGRESS_JSON ? 500 : 200;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((r = start_lights(&c)) != 0)
		return r;
	r = run(&c, &res);
	nf_indicator_set(c.ind, r == 0 ? NF_LED_DONE : r == 3 ? NF_LED_OFF : NF_LED_FAILED);
	nf_indicator_stop(c.ind);
	return r;
}
