/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "board.h"

#include <stdio.h>

#include "fileutil.h"
#include "parse.h"

void nf_board_identify(char *model, size_t mcap, char *serial, size_t scap)
{
	char vendor[NF_BOARD_MODEL_MAX + 1], product[NF_BOARD_MODEL_MAX + 1];

	nf_read_attr("/proc/device-tree", "model", model, mcap);
	nf_read_attr("/proc/device-tree", "serial-number", serial, scap);
	if (!model[0]) {
		nf_read_attr("/sys/class/dmi/id", "sys_vendor", vendor, sizeof(vendor));
		nf_read_attr("/sys/class/dmi/id", "product_name", product, sizeof(product));
		snprintf(model, mcap, "%s%s%s", vendor, vendor[0] && product[0] ? " " : "", product);
		nf_read_attr("/sys/class/dmi/id", "product_serial", serial, scap);
	}
	if (!nf_board_model_valid(model))
		model[0] = '\0';
	if (!nf_board_serial_valid(serial))
		serial[0] = '\0';
}
