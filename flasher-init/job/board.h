/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The board the worker runs on, as its kernel knows it. */
#ifndef NETFLASH_BOARD_H
#define NETFLASH_BOARD_H

#include <stddef.h>

/* The board this runs on, as the kernel knows it: the device tree's model
 * and serial-number (on a Pi: "Raspberry Pi 4 Model B Rev 1.4" and the
 * serial the firmware fills in), else DMI's vendor and product name and
 * product serial. Each is left empty when unknown or not a valid HELLO
 * value (nf_board_model_valid, nf_board_serial_valid). */
void nf_board_identify(char *model, size_t mcap, char *serial, size_t scap);

#endif
