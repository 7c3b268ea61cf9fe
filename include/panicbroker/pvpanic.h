/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * The pvpanic contract between a panicbroker guest and its host.
 *
 * pvpanic is a one-register device emulated by QEMU. The guest writes a
 * byte with one event bit set; QEMU turns that write into a QMP event for
 * whoever manages the VM. Reading the register returns the set of event
 * bits the device supports. A guest must never write a bit the device
 * does not advertise, and ignores advertised bits it does not know.
 *
 * Events this project uses:
 *
 *   PANICKED      the guest panicked and will not recover by itself.
 *                 QEMU emits GUEST_PANICKED and applies its panic action
 *                 (by default it stops the guest at once).
 *   CRASH_LOADED  the guest panicked and is about to boot its own crash
 *                 (kdump) kernel. QEMU emits GUEST_CRASHLOADED and keeps
 *                 the guest running, so the host must not stop it.
 *
 * A guest with a crash kernel loaded must therefore signal CRASH_LOADED or
 * nothing at all, never PANICKED.
 *
 * The device appears in one of two forms:
 *
 *   ISA   an I/O port, 0x505 unless QEMU was told otherwise, described
 *         in ACPI by a device with hardware ID "QEMU0001" whose _CRS
 *         holds the port.
 *   PCI   vendor 0x1b36, device 0x0011; the register is the first byte
 *         of memory BAR 0.
 *
 * Only constants live here, so that the guest module, the host daemon and
 * the tests all include the same numbers.
 */
#ifndef _PANICBROKER_PVPANIC_H
#define _PANICBROKER_PVPANIC_H

#include <linux/const.h>

/* Event bits: written one at a time, advertised together on read. */
#define PB_PVPANIC_PANICKED		_BITUL(0)
#define PB_PVPANIC_CRASH_LOADED		_BITUL(1)
#define PB_PVPANIC_EVENTS_KNOWN		(PB_PVPANIC_PANICKED | \
					 PB_PVPANIC_CRASH_LOADED)

/* QMP events QEMU emits for each event bit. */
#define PB_PVPANIC_QMP_PANICKED		"GUEST_PANICKED"
#define PB_PVPANIC_QMP_CRASH_LOADED	"GUEST_CRASHLOADED"

/* The register is one byte wide in both forms. */
#define PB_PVPANIC_REG_SIZE		1

/* ISA form. */
#define PB_PVPANIC_ISA_PORT		0x505
#define PB_PVPANIC_ACPI_HID		"QEMU0001"

/* PCI form. */
#define PB_PVPANIC_PCI_VENDOR		0x1b36
#define PB_PVPANIC_PCI_DEVICE		0x0011
#define PB_PVPANIC_PCI_BAR		0

#endif /* _PANICBROKER_PVPANIC_H */
