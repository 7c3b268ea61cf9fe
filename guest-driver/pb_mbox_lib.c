// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: the broker channel library, protocol/pb_mbox.c, built into
 * the module. The same source is compiled into the host daemon; keeping it
 * in one file is what makes both sides agree on every byte.
 */
#include "../protocol/pb_mbox.c"
