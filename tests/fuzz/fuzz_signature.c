// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: arbitrary bytes as a guest's panic text for the crash
 * signature (hostd/signature.c). Input: the message up to the first NUL
 * byte, the log after it (no NUL: all of it is the log, no message).
 * Each input is also signed as a log alone, as a snapshot's would be.
 *
 * Besides the sanitizers' checks: always 0, every string NUL-terminated
 * inside its array and printable, the bucket 16 hex digits, the frames
 * within SIG_BUCKET_FRAMES, and the same input always the same signature.
 *
 * Seeds: tests/fuzz/corpus/signature/: short panics of the corpus's kinds
 * (oops with RIP and trace, WARNING, hung task, soft lockup, sysrq, NMI,
 * OOM), a kmsg-prefixed one, and a plain panic message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct sig *s)
{
	const char *strs[] = { s->title, s->guilty, s->guilty_module, s->bucket };
	const size_t sizes[] = { sizeof(s->title), sizeof(s->guilty), sizeof(s->guilty_module),
				 sizeof(s->bucket) };
	unsigned int i;

	if (s->version != SIG_VERSION || (unsigned int)s->kind >= SIG_KIND_COUNT ||
	    s->nframes > SIG_BUCKET_FRAMES || !s->title[0])
		abort();
	for (i = 0; i < 4; i++) {
		if (!memchr(strs[i], '\0', sizes[i]))
			abort();
		for (const char *c = strs[i]; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				abort();
	}
	for (i = 0; i < s->nframes; i++)
		if (!memchr(s->frames[i], '\0', SIG_FRAME_MAX) || !s->frames[i][0])
			abort();
	if (strlen(s->bucket) != SIG_BUCKET_LEN ||
	    strspn(s->bucket, "0123456789abcdef") != SIG_BUCKET_LEN)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nul = memchr(p, '\0', size);
	const char *msg = NULL, *log = p;
	size_t msg_len = 0, log_len = size;
	struct sig a, b;

	if (nul) {
		msg = p;
		msg_len = (size_t)(nul - p);
		log = nul + 1;
		log_len = size - msg_len - 1;
	}
	/* exact-size copies, so that ASan sees a read past either end */
	char *m = malloc(msg_len ? msg_len : 1), *l = malloc(log_len ? log_len : 1);

	if (!m || !l)
		abort();
	if (msg_len)
		memcpy(m, msg, msg_len);
	if (log_len)
		memcpy(l, log, log_len);
	if (sig_compute(msg ? m : NULL, msg_len, l, log_len, &a) != 0)
		abort();
	check(&a);
	if (sig_compute(msg ? m : NULL, msg_len, l, log_len, &b) != 0 || memcmp(&a, &b, sizeof(a)))
		abort();
	if (sig_compute(NULL, 0, l, log_len, &b) != 0)
		abort();
	check(&b);
	free(m);
	free(l);
	return 0;
}
