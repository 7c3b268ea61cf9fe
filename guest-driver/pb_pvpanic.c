// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: find the pvpanic device and write events to it.
 *
 * The distro's pvpanic drivers may or may not be bound to the device, and
 * either way we must not get in their way: we never bind a driver, never
 * request the I/O port or the BAR, and only ever read the capability byte
 * (at load) and write one event (in the tier). Two writes of the same
 * event, theirs and ours, are harmless: the host sees a repeated event.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/acpi.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/pci.h>

#include <panicbroker/pvpanic.h>

#include "panicbroker.h"

/* A port or BAR with nothing behind it reads as all ones. */
#define PB_PVPANIC_ABSENT	0xff

#ifdef CONFIG_ACPI
/*
 * Look up the port in the ACPI description of the ISA device. This only
 * evaluates _CRS; it does not bind anything, so it works the same whether
 * or not pvpanic-mmio owns the device.
 */
static int pb_pvpanic_acpi_port(unsigned long *port)
{
	struct resource_entry *entry;
	struct acpi_device *adev;
	LIST_HEAD(resources);
	int ret;

	adev = acpi_dev_get_first_match_dev(PB_PVPANIC_ACPI_HID, NULL, -1);
	if (!adev)
		return -ENODEV;

	ret = acpi_dev_get_resources(adev, &resources, NULL, NULL);
	if (ret < 0)
		goto out_put;

	ret = -ENODEV;
	resource_list_for_each_entry(entry, &resources) {
		if (resource_type(entry->res) != IORESOURCE_IO ||
		    resource_size(entry->res) < PB_PVPANIC_REG_SIZE)
			continue;
		*port = entry->res->start;
		ret = 0;
		break;
	}
	if (ret)
		pr_info("ACPI %s has no I/O port resource\n",
			PB_PVPANIC_ACPI_HID);

	acpi_dev_free_resource_list(&resources);
out_put:
	acpi_dev_put(adev);
	return ret;
}
#else
static int pb_pvpanic_acpi_port(unsigned long *port)
{
	return -ENODEV;
}
#endif

static int pb_pvpanic_find_isa(struct pb_pvpanic *pv, unsigned int ioport)
{
	unsigned long port;
	int ret;

	if (ioport) {
		port = ioport;
	} else {
		ret = pb_pvpanic_acpi_port(&port);
		if (ret)
			return ret;
	}

	/* No request_region(): pvpanic-mmio may own the port. */
	pv->base = ioport_map(port, PB_PVPANIC_REG_SIZE);
	if (!pv->base)
		return -ENOMEM;

	pv->bus = PB_BUS_ISA;
	pv->port = port;
	pv->port_forced = ioport != 0;
	snprintf(pv->name, sizeof(pv->name), "isa port 0x%lx", port);
	return 0;
}

static int pb_pvpanic_find_pci(struct pb_pvpanic *pv)
{
	struct pci_dev *pdev;
	int ret;

	pdev = pci_get_device(PB_PVPANIC_PCI_VENDOR, PB_PVPANIC_PCI_DEVICE,
			      NULL);
	if (!pdev)
		return -ENODEV;

	if (!(pci_resource_flags(pdev, PB_PVPANIC_PCI_BAR) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, PB_PVPANIC_PCI_BAR) < PB_PVPANIC_REG_SIZE) {
		pci_info(pdev, KBUILD_MODNAME ": pvpanic BAR %d is not memory\n",
			 PB_PVPANIC_PCI_BAR);
		ret = -ENODEV;
		goto err_put;
	}

	/*
	 * Enable only if nobody has. If pvpanic-pci is bound it has enabled
	 * the device through devres, and on 6.1 a pci_disable_device() from
	 * us would clear that driver's devres "enabled" flag, so its own
	 * disable would be skipped when it unbinds.
	 */
	if (!pci_is_enabled(pdev)) {
		ret = pci_enable_device(pdev);
		if (ret) {
			pci_err(pdev, KBUILD_MODNAME ": cannot enable: %d\n",
				ret);
			goto err_put;
		}
		pv->pdev_enabled = true;
	}

	/* pci_iomap() maps without claiming the BAR, unlike pcim_iomap(). */
	pv->base = pci_iomap(pdev, PB_PVPANIC_PCI_BAR, 0);
	if (!pv->base) {
		ret = -ENOMEM;
		goto err_disable;
	}

	pv->bus = PB_BUS_PCI;
	pv->pdev = pdev;
	snprintf(pv->name, sizeof(pv->name), "pci %s", pci_name(pdev));
	return 0;

err_disable:
	if (pv->pdev_enabled)
		pci_disable_device(pdev);
	pv->pdev_enabled = false;
err_put:
	pci_dev_put(pdev);
	return ret;
}

/*
 * Reading the register returns the events the device supports. It is read
 * once, here; the tier only writes. A real device never advertises all
 * eight bits, so 0xff means nothing answered (a wrong ioport=, or a BAR
 * that does not decode): treat that as no device.
 */
static int pb_pvpanic_read_caps(struct pb_pvpanic *pv)
{
	pv->caps_raw = ioread8(pv->base);
	if (pv->caps_raw == PB_PVPANIC_ABSENT) {
		pr_warn("%s reads 0x%02x: no pvpanic device there\n",
			pv->name, pv->caps_raw);
		pb_pvpanic_release(pv);
		return -ENODEV;
	}
	pv->caps = pv->caps_raw & PB_PVPANIC_EVENTS_KNOWN;
	return 0;
}

/**
 * pb_pvpanic_find() - find the pvpanic device and read what it supports
 * @pv:     filled in on success; zeroed in any case
 * @mode:   which forms of the device to look for
 * @ioport: if non-zero, use the ISA device at this port without asking ACPI
 *
 * Return: 0, -ENODEV if there is no device (or @mode is off), or another
 * negative errno if a device was found but could not be set up.
 */
int pb_pvpanic_find(struct pb_pvpanic *pv, enum pb_pvpanic_mode mode,
		    unsigned int ioport)
{
	int ret = -ENODEV;

	memset(pv, 0, sizeof(*pv));

	if (mode == PB_PVPANIC_AUTO || mode == PB_PVPANIC_ISA) {
		ret = pb_pvpanic_find_isa(pv, ioport);
		if (!ret)
			ret = pb_pvpanic_read_caps(pv);
	}
	if (ret == -ENODEV &&
	    (mode == PB_PVPANIC_AUTO || mode == PB_PVPANIC_PCI)) {
		ret = pb_pvpanic_find_pci(pv);
		if (!ret)
			ret = pb_pvpanic_read_caps(pv);
	}
	return ret;
}

/* Undo pb_pvpanic_find(); safe on a zeroed or already released @pv. */
void pb_pvpanic_release(struct pb_pvpanic *pv)
{
	switch (pv->bus) {
	case PB_BUS_ISA:
		ioport_unmap(pv->base);
		break;
	case PB_BUS_PCI:
		pci_iounmap(pv->pdev, pv->base);
		if (pv->pdev_enabled)
			pci_disable_device(pv->pdev);
		pci_dev_put(pv->pdev);
		break;
	case PB_BUS_NONE:
		break;
	}
	memset(pv, 0, sizeof(*pv));
}

/*
 * Called from the tier: no locks, no checks beyond the caller's. The
 * caller has already made sure @event is one the device advertises.
 */
void pb_pvpanic_write(const struct pb_pvpanic *pv, u8 event)
{
	iowrite8(event, pv->base);
}
