// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes from a QMP peer, through the line buffer
 * and the message classifier, exactly as panicbrokerd reads them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qmp_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qmp_linebuf lb = { 0 };
	char *line;

	while (size) {
		size_t room, n, len;
		char *tail = qmp_linebuf_tail(&lb, &room);
		int r;

		if (!tail)
			break;
		n = size < room ? size : room;
		memcpy(tail, data, n);
		qmp_linebuf_commit(&lb, n);
		data += n;
		size -= n;
		while ((r = qmp_linebuf_take(&lb, &line, &len)) == 1) {
			struct qmp_msg m;
			char err[256];

			if (qmp_msg_parse(line, len, &m, err, sizeof(err)) == 0)
				qmp_msg_done(&m);
		}
		if (r < 0)
			break; /* the daemon drops such a peer */
	}
	qmp_linebuf_free(&lb);
	return 0;
}
