/*
 * testserver.h - a small HTTP/1.1 server on 127.0.0.1 for tests.
 *
 * It runs on the test's own libuv loop, next to the client under test, and
 * listens on an ephemeral port (eddy_testserver_url gives the base URL). It
 * parses requests (request line, headers, a Content-Length body; keep-alive
 * by default, "Connection: close" honoured; no chunked request bodies) and
 * asks the test's handler what to answer. The handler can also delay the
 * answer, close the connection without answering, never answer, or send a
 * body of any size; the server counts the connections it accepted, so a
 * test can prove keep-alive reuse.
 *
 * eddy_testserver_start_tls serves HTTPS instead, with a certificate made
 * for the run, and counts full and resumed handshakes.
 *
 * It is a test tool: it aborts the process when it cannot listen, and it
 * serves one request at a time per connection (no pipelining).
 *
 *     static void handler(const struct eddy_testserver_request *req,
 *                         struct eddy_testserver_reply *reply, void *ud)
 *     {
 *         if (strcmp(req->target, "/latest/api/token") == 0) {
 *             reply->body = "TOKEN";
 *             return;
 *         }
 *         reply->status = 404;
 *     }
 *     ...
 *     struct eddy_testserver *s = eddy_testserver_start(loop, handler, NULL);
 *     ... send requests to eddy_testserver_url(s) ...
 *     eddy_testserver_close(s, NULL, NULL);
 *     uv_run(loop, UV_RUN_DEFAULT);
 */
#ifndef EDDY_TESTS_TESTSERVER_H
#define EDDY_TESTS_TESTSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define EDDY_TESTSERVER_MAX_HEADERS 64

/* A parsed request; every pointer is valid during the handler call only. */
struct eddy_testserver_request {
    const char *method; /* "GET" */
    const char *target; /* "/path?query" as sent */
    const char *names[EDDY_TESTSERVER_MAX_HEADERS];
    const char *values[EDDY_TESTSERVER_MAX_HEADERS]; /* trimmed */
    size_t nheaders;
    const char *body; /* NUL-terminated, "" when none */
    size_t body_len;
    unsigned connection; /* 1-based number of the connection it came on */
    unsigned number;     /* 1-based number of the request on the server */
};

/* A header value by case-insensitive name, or NULL. */
const char *eddy_testserver_header(const struct eddy_testserver_request *req, const char *name);

enum eddy_testserver_action {
    EDDY_TESTSERVER_REPLY, /* answer (after delay_ms) */
    EDDY_TESTSERVER_CLOSE, /* close the connection without answering (after delay_ms) */
    EDDY_TESTSERVER_HANG,  /* never answer; the connection stays open */
};

/* What to answer. The server zeroes it and sets status 200 before calling
 * the handler; strings are copied when the handler returns. Content-Length
 * is always added. */
struct eddy_testserver_reply {
    enum eddy_testserver_action action;
    int status;
    const char *headers; /* extra "Name: value\r\n" lines, or NULL */
    const char *body;    /* or NULL */
    size_t body_len;     /* 0 with a body: strlen(body) */
    size_t fill_len;     /* when body is NULL: a body of this many 'x' bytes */
    uint32_t delay_ms;
    bool close_after; /* close the connection after this reply */
};

typedef void (*eddy_testserver_handler)(const struct eddy_testserver_request *req,
                                        struct eddy_testserver_reply *reply, void *ud);

struct eddy_testserver;

/* Listen on 127.0.0.1 at an ephemeral port. handler NULL answers 200 with
 * an empty body. Aborts on failure. */
struct eddy_testserver *eddy_testserver_start(uv_loop_t *loop, eddy_testserver_handler handler,
                                              void *ud);
/* The same over HTTPS: a self-signed certificate for 127.0.0.1 is made at
 * start and written as PEM to a file that eddy_testserver_ca_file names
 * (removed when the server is closed); the URL is "https://127.0.0.1:<port>".
 * Every connection shares one SSL_CTX, so sessions can be resumed; the
 * server counts completed handshakes and, of those, resumed ones. */
struct eddy_testserver *eddy_testserver_start_tls(uv_loop_t *loop, eddy_testserver_handler handler,
                                                  void *ud);
/* The PEM file to trust (NULL without TLS). */
const char *eddy_testserver_ca_file(const struct eddy_testserver *s);
/* TLS handshakes completed, and how many of them resumed a session. */
unsigned eddy_testserver_handshakes(const struct eddy_testserver *s);
unsigned eddy_testserver_resumed(const struct eddy_testserver *s);
/* Change the handler (takes effect for the next request). */
void eddy_testserver_set_handler(struct eddy_testserver *s, eddy_testserver_handler handler,
                                 void *ud);
int eddy_testserver_port(const struct eddy_testserver *s);
/* "http://127.0.0.1:<port>", owned by the server. */
const char *eddy_testserver_url(const struct eddy_testserver *s);
/* Connections accepted and requests parsed so far. */
unsigned eddy_testserver_connections(const struct eddy_testserver *s);
unsigned eddy_testserver_requests(const struct eddy_testserver *s);
/* Connections open now. */
unsigned eddy_testserver_open(const struct eddy_testserver *s);
/* Close the listener and every connection; free s, then call cb (may be
 * NULL), from the loop. */
void eddy_testserver_close(struct eddy_testserver *s, void (*cb)(void *ud), void *ud);

#endif
