/*
 * http.h - HTTP on the libuv loop, and the transport seam.
 *
 * struct eddy_transport is the seam every AWS call goes through: the real
 * one is libcurl's multi interface driven by libuv (http.c, after curl's
 * docs/examples/multi-uv.c); unit tests put a fake in its place that replays
 * canned replies. Integration tests always use the real one.
 *
 * Async contract: send() that returns an error never calls cb. Otherwise cb
 * runs exactly once, later, from the loop, with EDDY_OK and a response (any
 * status), or an error and a NULL response: EDDY_ENET (connect, DNS, reset,
 * connection closed without an answer, a connect that timed out before any
 * byte of the request went out), EDDY_ETIMEOUT (the request, or part of it,
 * was sent: it may have been applied), EDDY_ECANCELED,
 * EDDY_ELIMIT (response body or header block over its cap), EDDY_ECONFIG
 * (TLS peer verification failed, unreadable CA bundle), EDDY_EINVAL (a URL
 * curl cannot use). send() itself fails with EDDY_EINVAL (no method or url,
 * body_len without body, a header line without "Name:" or with CR/LF) or
 * EDDY_ECANCELED (the client is closing).
 * The url and the header lines are copied by send(). The body is borrowed:
 * it must stay valid and unchanged until cb has run (also when the request
 * is canceled, and when send() fails it may go at once), so a caller that
 * retries sends the same bytes again without a copy per attempt. The
 * response is valid during cb only.
 *
 * The real client never blocks the loop: names are resolved by libcurl's
 * asynchronous (threaded) resolver, and eddy_http_new refuses a libcurl
 * built without one. TLS peers are always verified; a new connection
 * resumes the TLS session of an earlier one to the same host when it can,
 * and the CA bundle is read once per client.
 */
#ifndef EDDY_AWS_HTTP_H
#define EDDY_AWS_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/closer.h"
#include "base/err.h"

struct eddy_http_request {
    const char *method;         /* "GET", "PUT", "POST" */
    const char *url;            /* absolute URL */
    const char *const *headers; /* "Name: value" lines; "Name:" sends an empty value */
    size_t nheaders;
    const char *body; /* borrowed until cb; may be NULL when body_len is 0 */
    size_t body_len;
    uint32_t timeout_ms; /* whole exchange; 0 = the client's default */
    size_t max_response; /* body cap; 0 = the client's default */
};

struct eddy_http_response {
    long status;
    struct eddy_str body;
    struct eddy_str headers; /* "Name: value\r\n" lines of the final response
                                (no status line), at most 64 KiB */
};

/* Find a response header by case-insensitive name, value trimmed. */
bool eddy_http_response_header(const struct eddy_http_response *r, const char *name,
                               struct eddy_str *value);

typedef void (*eddy_http_cb)(eddy_err err, const struct eddy_http_response *resp, void *ud);

struct eddy_transport_ops {
    /* Start a request; *id identifies it for cancel. */
    eddy_err (*send)(void *self, const struct eddy_http_request *req, eddy_http_cb cb, void *ud,
                     uint64_t *id);
    /* Abort a request in flight: its cb runs later with EDDY_ECANCELED.
     * Unknown or finished ids are ignored. */
    void (*cancel)(void *self, uint64_t id);
};

struct eddy_transport {
    const struct eddy_transport_ops *ops;
    void *self;
};

EDDY_MUST_USE static inline eddy_err eddy_transport_send(struct eddy_transport *t,
                                                         const struct eddy_http_request *req,
                                                         eddy_http_cb cb, void *ud, uint64_t *id)
{
    return t->ops->send(t->self, req, cb, ud, id);
}
static inline void eddy_transport_cancel(struct eddy_transport *t, uint64_t id)
{
    t->ops->cancel(t->self, id);
}

/* The real client. */
struct eddy_http_config {
    uint32_t connect_timeout_ms; /* default 3000 */
    uint32_t timeout_ms;         /* default 30000 */
    size_t max_response;         /* default 16 MiB */
    long max_host_connections;   /* per host; default 32; the pool keeps up to
                                    four times as many idle connections */
    const char *ca_bundle;       /* AWS_CA_BUNDLE; NULL = system CAs */
};

struct eddy_http;

/* Create a client on loop (cfg may be NULL: all defaults; zero fields take
 * their default). Returns NULL and fills err when curl cannot start or has
 * no asynchronous resolver. Proxies come from curl's own handling of
 * HTTPS_PROXY, HTTP_PROXY and NO_PROXY; when no proxy variable is set as
 * the client is created, it uses no proxy and never looks again. */
struct eddy_http *eddy_http_new(uv_loop_t *loop, const struct eddy_http_config *cfg,
                                struct eddy_error *err);
struct eddy_transport eddy_http_transport(struct eddy_http *h);
/* Cancel every request in flight (their callbacks run later, from the loop,
 * with EDDY_ECANCELED). */
void eddy_http_cancel_all(struct eddy_http *h);
/* Number of requests whose callback has not run yet. */
size_t eddy_http_inflight(const struct eddy_http *h);
/* Cancel everything and close the uv handles; once they are closed, from
 * the loop, the callbacks still owed run (EDDY_ECANCELED), then cb (may be
 * NULL), then h is freed. Closing twice does nothing the second time. */
void eddy_http_close(struct eddy_http *h, eddy_close_cb cb, void *ud);

/* Counters since eddy_http_new, for tests and benchmarks. A connection's
 * socket gets one uv_poll_t for its whole life (kept, and not keeping the
 * loop alive, while the connection waits in curl's pool), so on a
 * keep-alive connection polls_created stays at one however many requests
 * it carries, and poll_updates (each costs a few epoll_ctl) does not grow
 * with them. */
struct eddy_http_stats {
    uint64_t requests;       /* accepted by send() */
    uint64_t sockets_opened; /* connections' sockets curl opened */
    uint64_t sockets_closed; /* ... and closed */
    uint64_t polls_created;  /* uv_poll_t handles initialised */
    uint64_t polls_closed;   /* ... and closed */
    uint64_t poll_updates;   /* uv_poll_start / uv_poll_stop calls */
    size_t polls_watching;   /* handles started now */
};
void eddy_http_stats(const struct eddy_http *h, struct eddy_http_stats *out);

#endif
