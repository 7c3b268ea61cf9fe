/* SPDX-License-Identifier: MIT */
#ifndef PB_VERSION_H
#define PB_VERSION_H
#define PB_VERSION "0.1.0"
#endif
