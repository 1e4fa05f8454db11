/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The values a Pi OS first boot accepts, from the lists Debian ships:
 * time zones (tzdata: /usr/share/zoneinfo/zone1970.tab and zone.tab, and
 * the zone files), ISO 3166 alpha-2 country codes (tzdata's iso3166.tab),
 * keyboard layouts (xkb-data: /usr/share/X11/xkb/rules/evdev.lst, section
 * "! layout") and supported locales (locales: /usr/share/i18n/SUPPORTED). */
#ifndef NETFLASH_KNOWN_H
#define NETFLASH_KNOWN_H

#include <stddef.h>

enum known_list { KNOWN_TIMEZONE, KNOWN_COUNTRY, KNOWN_KEYMAP, KNOWN_LOCALE };

/* Checks value against the list. Returns 1 if it is on it, 0 if not (then
 * near, capacity cap, holds the closest entry by edit distance, "" if
 * none is close), or -ENOENT when the list is not installed (its path in
 * near). */
int known_value(enum known_list list, const char *value, char *near, size_t cap);

/* The Debian package that ships the list (for messages). */
const char *known_package(enum known_list list);

#endif
