// SPDX-License-Identifier: MIT
#include <string.h>

#include "backend.h"
#include "common.h"

static const struct backend_ops *const backend_table[] = {
	&backend_qmp_ops,
};

const struct backend_ops *backend_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(backend_table); i++)
		if (strcmp(backend_table[i]->name, name) == 0)
			return backend_table[i];
	return NULL;
}
