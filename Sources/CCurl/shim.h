#ifndef SIGNOFF_CCURL_SHIM_H
#define SIGNOFF_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic: Swift cannot call them.
   These typed wrappers are the only way the Swift code touches them. */

static inline CURLcode signoff_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode signoff_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode signoff_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode signoff_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode signoff_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }

typedef size_t (*signoff_curl_io_callback)(char *buffer, size_t size, size_t nitems, void *userdata);
static inline CURLcode signoff_curl_setopt_write_function(CURL *h, signoff_curl_io_callback f) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, f); }
static inline CURLcode signoff_curl_setopt_read_function(CURL *h, signoff_curl_io_callback f) { return curl_easy_setopt(h, CURLOPT_READFUNCTION, f); }
static inline CURLcode signoff_curl_setopt_header_function(CURL *h, signoff_curl_io_callback f) { return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, f); }

/* The verbose/debug callback (SMTP: the server's replies arrive as CURLINFO_HEADER_IN). */
typedef int (*signoff_curl_debug_callback)(CURL *h, curl_infotype type, char *data, size_t size, void *userptr);
static inline CURLcode signoff_curl_setopt_debug_function(CURL *h, signoff_curl_debug_callback f) { return curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, f); }

static inline CURLcode signoff_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode signoff_curl_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
/* Progress callback (used to abort a transfer when the Swift task is cancelled). */
typedef int (*signoff_curl_xferinfo_callback)(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
static inline CURLcode signoff_curl_setopt_xferinfo_function(CURL *h, signoff_curl_xferinfo_callback f) { return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f); }
#endif
