/*
 * fake_transport.h - a struct eddy_transport for unit tests that replays
 * canned replies and records what it was asked.
 *
 * The layers above HTTP (JSON protocol, retries, service clients,
 * credentials) are tested against this fake instead of a socket. A test
 * queues replies (status + headers + body, or an error such as EDDY_ENET or
 * EDDY_ETIMEOUT); each request sent takes the next reply in order. Every
 * request is recorded (method, url, headers, body, timeout, cap) so the test
 * can assert on exactly what went out.
 *
 * It keeps the async contract of http.h: callbacks always run later, from the
 * loop (a uv_timer per request, 0 ms unless the reply asks for a delay),
 * never inside send(). A request that finds no reply queued waits until one
 * is pushed (handy for long polls and cancellation tests); a waiting request
 * keeps no handle active, so uv_run returns while it waits. A reply with
 * fail_send set makes send() itself return its error (the callback is then
 * never called). When the request carries max_response and the reply body is
 * longer, the callback gets EDDY_ELIMIT as the real client would.
 *
 * Typical use:
 *
 *     struct eddy_fake_transport *f = eddy_fake_new(loop);
 *     eddy_fake_push_json(f, 200, "{\"Messages\":[]}");
 *     eddy_fake_push_error(f, EDDY_ETIMEOUT);
 *     struct eddy_transport t = eddy_fake_transport(f);
 *     ... run the code under test on loop ...
 *     assert_int_equal(eddy_fake_count(f), 2);
 *     assert_string_equal(eddy_fake_request_at(f, 0)->method, "POST");
 *     eddy_fake_close(f, NULL, NULL);
 *     uv_run(loop, UV_RUN_DEFAULT);
 *     assert_int_equal(uv_loop_close(loop), 0);
 */
#ifndef EDDY_TESTS_FAKE_TRANSPORT_H
#define EDDY_TESTS_FAKE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "aws/http.h"

/* One canned reply. Everything is copied by eddy_fake_push. */
struct eddy_fake_reply {
    eddy_err err;        /* EDDY_OK: deliver a response; else the callback's error */
    bool fail_send;      /* send() returns err itself, the callback never runs */
    long status;         /* HTTP status when err is EDDY_OK */
    const char *headers; /* "Name: value\r\n" lines (or \n); may be NULL */
    const char *body;    /* may be NULL */
    size_t body_len;     /* 0 with a body: strlen(body) */
    uint32_t delay_ms;   /* deliver this long after the request is matched */
};

/* What the fake was sent; all fields owned by the fake, valid until close. */
struct eddy_fake_request {
    uint64_t id; /* the id send() handed out (starts at 1) */
    char *method;
    char *url;
    char **headers; /* "Name: value" lines, as given */
    size_t nheaders;
    char *body; /* NUL-terminated copy, "" when none */
    size_t body_len;
    uint32_t timeout_ms;
    size_t max_response;
    bool canceled; /* cancel() reached it before its reply was delivered */
};

struct eddy_fake_transport;

struct eddy_fake_transport *eddy_fake_new(uv_loop_t *loop);
struct eddy_transport eddy_fake_transport(struct eddy_fake_transport *f);

/* Queue a reply. If a request is already waiting, it takes this one. */
void eddy_fake_push(struct eddy_fake_transport *f, const struct eddy_fake_reply *r);
/* Shorthands: a response with a JSON content type; a bare status and body;
 * a transport error (EDDY_ENET, EDDY_ETIMEOUT, ...). */
void eddy_fake_push_json(struct eddy_fake_transport *f, long status, const char *json);
void eddy_fake_push_status(struct eddy_fake_transport *f, long status, const char *headers,
                           const char *body);
void eddy_fake_push_error(struct eddy_fake_transport *f, eddy_err err);

/* Requests recorded so far (including failed and canceled ones), in order. */
size_t eddy_fake_count(const struct eddy_fake_transport *f);
const struct eddy_fake_request *eddy_fake_request_at(const struct eddy_fake_transport *f, size_t i);
/* The last request recorded, or NULL. */
const struct eddy_fake_request *eddy_fake_last(const struct eddy_fake_transport *f);
/* A recorded request's header value by case-insensitive name (trimmed,
 * NUL-terminated copy owned by the fake's record), or NULL. */
const char *eddy_fake_request_header(const struct eddy_fake_request *r, const char *name);

/* Replies queued and not yet taken. */
size_t eddy_fake_queued(const struct eddy_fake_transport *f);
/* Requests whose callback has not run yet. */
size_t eddy_fake_inflight(const struct eddy_fake_transport *f);
/* Cancel every request in flight (callbacks run later with EDDY_ECANCELED). */
void eddy_fake_cancel_all(struct eddy_fake_transport *f);

/* Callbacks still owed run with EDDY_ECANCELED, the handles close, f is
 * freed, then cb (may be NULL) runs, all from the loop. */
void eddy_fake_close(struct eddy_fake_transport *f, void (*cb)(void *ud), void *ud);

#endif
