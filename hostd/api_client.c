// SPDX-License-Identifier: MIT
/*
 * One HTTP/1.1 request to panicbrokerd's API socket (api_client.h).
 *
 * Why libcurl and not a few lines of write() and read(): an HTTP client
 * must cope with everything a server may legally do, not only what ours
 * does today: Content-Length or chunked replies, "100 Continue",
 * keep-alive, short reads, header folding, a server that stops mid-reply.
 * A hand-rolled reader that handles only the happy path breaks the day
 * libmicrohttpd changes how it frames a reply, and is one more parser of
 * untrusted bytes to fuzz. libcurl is that parser, hardened for decades,
 * speaks to a unix socket with CURLOPT_UNIX_SOCKET_PATH, and gives us
 * timeouts and the connect errno for a clear "is it running?".
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api_client.h"
#include "common.h"
#include "util.h"

int api_client_init(char *err, size_t errlen)
{
	CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (c != CURLE_OK)
		return err_set(err, errlen, -EIO, "cannot set up libcurl: %s",
			       curl_easy_strerror(c));
	return 0;
}

void api_client_cleanup(void)
{
	curl_global_cleanup();
}

struct api_client_buf {
	char *data;
	size_t len;
	bool too_large;
};

static size_t api_client_on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct api_client_buf *b = userdata;
	size_t n = size * nmemb;
	char *data;

	if (n > API_CLIENT_REPLY_MAX - b->len) {
		b->too_large = true;
		return 0; /* libcurl ends the transfer: CURLE_WRITE_ERROR */
	}
	data = realloc(b->data, b->len + n + 1);
	if (!data)
		return 0;
	memcpy(data + b->len, ptr, n);
	b->len += n;
	data[b->len] = '\0';
	b->data = data;
	return n;
}

static void api_client_easy_cleanup(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

static void api_client_slist_free(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

/* Why no reply came, as a negative errno and a phrase. */
static int api_client_failed(CURL *c, CURLcode code, const char *socket_path,
			     const struct api_client_buf *b, const char *curl_err,
			     char *err, size_t errlen)
{
	long os_errno = 0;

	/* Unknown errno stays 0: the phrase then comes from libcurl. */
	if (curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno) != CURLE_OK)
		os_errno = 0;
	switch (code) {
	case CURLE_COULDNT_CONNECT:
		return err_set(err, errlen, os_errno ? -(int)os_errno : -ECONNREFUSED,
			       "cannot reach panicbrokerd at %s: %s; is it running?", socket_path,
			       os_errno ? strerror((int)os_errno) : curl_err);
	case CURLE_OPERATION_TIMEDOUT:
		return err_set(err, errlen, -ETIMEDOUT,
			       "panicbrokerd at %s did not answer within %d s", socket_path,
			       API_CLIENT_TIMEOUT_SEC);
	case CURLE_WRITE_ERROR:
		if (b->too_large)
			return err_set(err, errlen, -EFBIG, "the reply is larger than %d bytes",
				       API_CLIENT_REPLY_MAX);
		return err_set(err, errlen, -ENOMEM, "out of memory for the reply");
	default:
		return err_set(err, errlen, -EPROTO, "request to panicbrokerd at %s failed: %s",
			       socket_path, curl_err[0] ? curl_err : curl_easy_strerror(code));
	}
}

int api_client_request(const char *socket_path, const char *method,
		       const char *path, const char *body,
		       struct api_client_reply *ret, char *err, size_t errlen)
{
	_cleanup_(api_client_easy_cleanup) CURL *c = curl_easy_init();
	_cleanup_(api_client_slist_free) struct curl_slist *headers = NULL;
	struct api_client_buf b = { 0 };
	char curl_err[CURL_ERROR_SIZE] = "", url[512];
	struct curl_slist *h;
	CURLcode code;
	long status = 0;

	if (!c)
		return err_set(err, errlen, -ENOMEM, "cannot set up a libcurl handle");
	/* The host part is a formality on a unix socket. */
	if ((size_t)snprintf(url, sizeof(url), "http://localhost%s", path) >= sizeof(url))
		return err_set(err, errlen, -ENAMETOOLONG, "request path too long");
	h = curl_slist_append(headers, "Accept: application/json");
	if (h)
		headers = h;
	if (h && body) {
		h = curl_slist_append(headers, "Content-Type: application/json");
		if (h)
			headers = h;
	}
	if (!h)
		return err_set(err, errlen, -ENOMEM, "out of memory for the request");
	code = curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_URL, url);
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (code == CURLE_OK && body)
		code = curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)API_CLIENT_TIMEOUT_SEC);
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, api_client_on_data);
	if (code == CURLE_OK)
		code = curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (code != CURLE_OK)
		return err_set(err, errlen, -EINVAL, "cannot set up the request: %s",
			       curl_easy_strerror(code));
	code = curl_easy_perform(c);
	if (code != CURLE_OK) {
		int r = api_client_failed(c, code, socket_path, &b, curl_err, err, errlen);

		free(b.data);
		return r;
	}
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status == 0) {
		free(b.data);
		return err_set(err, errlen, -EPROTO, "no HTTP status from panicbrokerd at %s",
			       socket_path);
	}
	if (!b.data && !(b.data = strdup(""))) {
		return err_set(err, errlen, -ENOMEM, "out of memory for the reply");
	}
	*ret = (struct api_client_reply){ .status = status, .body = b.data, .len = b.len };
	return 0;
}

void api_client_reply_free(struct api_client_reply *r)
{
	free(r->body);
	*r = (struct api_client_reply){ 0 };
}
