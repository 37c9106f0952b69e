/*
 * Unit tests for aws/http (the libcurl multi client on libuv) against the
 * loopback test server, and for the fake transport the layers above use.
 * Every test runs its own loop and ends with uv_loop_close() == 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "aws/http.h"
#include "base/alloc.h"
#include "base/log.h"
#include "fake_transport.h"
#include "testserver.h"

/* ---- helpers ---- */

struct result {
    int calls;
    eddy_err err;
    long status;
    char *body;
    char *reply_header; /* value of X-Reply, if any */
    bool *in_send;      /* set while send() runs: callbacks must not see it */
};

static void on_done(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct result *r = ud;
    if (r->in_send)
        assert_false(*r->in_send);
    r->calls++;
    r->err = err;
    if (err == EDDY_OK) {
        assert_non_null(resp);
        r->status = resp->status;
        free(r->body);
        r->body = eddy_strndup(resp->body.ptr, resp->body.len);
        struct eddy_str v;
        free(r->reply_header);
        r->reply_header = NULL;
        if (eddy_http_response_header(resp, "x-REPLY", &v))
            r->reply_header = eddy_strndup(v.ptr, v.len);
    } else {
        assert_null(resp);
    }
}

static void result_cleanup(struct result *r)
{
    free(r->body);
    free(r->reply_header);
}

struct ctx {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from blocking once a callback ran */
    struct eddy_testserver *server;
    struct eddy_http *http;
    struct eddy_transport t;
    bool in_send;
};

static void ctx_init(struct ctx *c, eddy_testserver_handler handler, void *ud,
                     const struct eddy_http_config *cfg)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->tick);
    c->server = eddy_testserver_start(&c->loop, handler, ud);
    struct eddy_error err = {0};
    c->http = eddy_http_new(&c->loop, cfg, &err);
    assert_non_null(c->http);
    c->t = eddy_http_transport(c->http);
}

/* The same against the HTTPS test server, trusting its certificate. */
static void ctx_init_tls(struct ctx *c, eddy_testserver_handler handler, void *ud,
                         const struct eddy_http_config *cfg)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->tick);
    c->server = eddy_testserver_start_tls(&c->loop, handler, ud);
    struct eddy_http_config with_ca = cfg ? *cfg : (struct eddy_http_config){0};
    with_ca.ca_bundle = eddy_testserver_ca_file(c->server);
    struct eddy_error err = {0};
    c->http = eddy_http_new(&c->loop, &with_ca, &err);
    assert_non_null(c->http);
    c->t = eddy_http_transport(c->http);
}

static void ctx_close(struct ctx *c)
{
    if (c->http)
        eddy_http_close(c->http, NULL, NULL);
    if (c->server)
        eddy_testserver_close(c->server, NULL, NULL);
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until *counter reaches target. A ticking timer bounds each
 * UV_RUN_ONCE: the listening server keeps the loop alive, and a callback
 * run from a timer would otherwise leave the next poll blocking. */
static void run_once(struct ctx *c)
{
    if (!uv_is_active((uv_handle_t *)&c->tick))
        uv_timer_start(&c->tick, on_tick, 5, 5);
    uv_run(&c->loop, UV_RUN_ONCE);
}

static void run_until(uv_loop_t *loop, const int *counter, int target)
{
    struct ctx *c = eddy_container_of(loop, struct ctx, loop);
    while (*counter < target)
        run_once(c);
}

static uint64_t send_req(struct ctx *c, const char *method, const char *path,
                         const char *const *headers, size_t nheaders, const char *body,
                         struct result *r)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", eddy_testserver_url(c->server), path);
    struct eddy_http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .nheaders = nheaders,
        .body = body,
        .body_len = body ? strlen(body) : 0,
    };
    uint64_t id = 0;
    r->in_send = &c->in_send;
    c->in_send = true;
    assert_int_equal(eddy_transport_send(&c->t, &req, on_done, r, &id), EDDY_OK);
    c->in_send = false;
    assert_int_not_equal(id, 0);
    return id;
}

static void on_closed(void *ud)
{
    int *closed = ud;
    (*closed)++;
}

/* ---- handlers ---- */

/* Echo: checks nothing, answers with what it saw. */
static void echo_handler(const struct eddy_testserver_request *req,
                         struct eddy_testserver_reply *reply, void *ud)
{
    char *seen = ud;
    const char *x = eddy_testserver_header(req, "X-Test");
    const char *ct = eddy_testserver_header(req, "Content-Type");
    const char *cl = eddy_testserver_header(req, "Content-Length");
    snprintf(seen, 512, "%s %s x=%s ct=%s cl=%s expect=%s accept=%s empty=%s body=%s", req->method,
             req->target, x ? x : "-", ct ? ct : "-", cl ? cl : "-",
             eddy_testserver_header(req, "Expect") ? "yes" : "no",
             eddy_testserver_header(req, "Accept") ? "yes" : "no",
             eddy_testserver_header(req, "X-Empty") ? "yes" : "no", req->body);
    reply->status = strcmp(req->target, "/missing") == 0 ? 404 : 200;
    reply->headers = "X-Reply:  yes-it-is \r\nContent-Type: text/plain\r\n";
    reply->body = req->body_len ? req->body : "empty";
}

struct server_opts {
    enum eddy_testserver_action action;
    uint32_t delay_ms;
    size_t fill_len;
};

static void opts_handler(const struct eddy_testserver_request *req,
                         struct eddy_testserver_reply *reply, void *ud)
{
    const struct server_opts *o = ud;
    reply->action = o->action;
    reply->delay_ms = o->delay_ms;
    reply->fill_len = o->fill_len;
    if (!o->fill_len)
        reply->body = req->target;
}

/* ---- tests of the real client ---- */

static void test_get_post_roundtrip(void **state)
{
    (void)state;
    char seen[512] = "";
    struct ctx c;
    ctx_init(&c, echo_handler, seen, NULL);
    struct result r = {0};
    const char *get_headers[] = {"X-Test: one"};
    send_req(&c, "GET", "/path?a=b", get_headers, 1, NULL, &r);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "empty");
    assert_string_equal(r.reply_header, "yes-it-is");
    assert_string_equal(seen, "GET /path?a=b x=one ct=- cl=- expect=no accept=no empty=no body=");

    const char *post_headers[] = {"X-Test: two", "Content-Type: application/x-amz-json-1.0",
                                  "X-Empty:"};
    send_req(&c, "POST", "/", post_headers, 3, "{\"k\":\"v\"}", &r);
    run_until(&c.loop, &r.calls, 2);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.body, "{\"k\":\"v\"}");
    assert_string_equal(seen, "POST / x=two ct=application/x-amz-json-1.0 cl=9 expect=no "
                              "accept=no empty=yes body={\"k\":\"v\"}");

    /* The IMDSv2 token shape: PUT, headers only, no body. */
    const char *put_headers[] = {"X-Test: ttl"};
    send_req(&c, "PUT", "/latest/api/token", put_headers, 1, NULL, &r);
    run_until(&c.loop, &r.calls, 3);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(seen,
                        "PUT /latest/api/token x=ttl ct=- cl=0 expect=no accept=no empty=no body=");

    /* Any status is a response, not an error. */
    send_req(&c, "GET", "/missing", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, 4);
    assert_int_equal(r.err, EDDY_OK);
    assert_int_equal(r.status, 404);
    assert_int_equal(eddy_http_inflight(c.http), 0);
    result_cleanup(&r);
    ctx_close(&c);
}

/* Answers with the body it got (so HEAD gets Content-Length: 0). */
static void method_handler(const struct eddy_testserver_request *req,
                           struct eddy_testserver_reply *reply, void *ud)
{
    char *seen = ud;
    const char *cl = eddy_testserver_header(req, "Content-Length");
    snprintf(seen, 512, "%s cl=%s body=%s", req->method, cl ? cl : "-", req->body);
    reply->body = req->body;
}

/* One recycled handle carries requests of every shape in turn: nothing of
 * one request's method, body or headers leaks into the next. */
static void test_methods_in_turn(void **state)
{
    (void)state;
    char seen[512] = "";
    struct ctx c;
    ctx_init(&c, method_handler, seen, NULL);
    static const struct {
        const char *method, *body, *seen;
    } steps[] = {
        {"POST", "one", "POST cl=3 body=one"},   {"HEAD", NULL, "HEAD cl=- body="},
        {"POST", "two", "POST cl=3 body=two"},   {"DELETE", NULL, "DELETE cl=- body="},
        {"PUT", NULL, "PUT cl=0 body="},         {"GET", NULL, "GET cl=- body="},
        {"PUT", "three", "PUT cl=5 body=three"}, {"HEAD", NULL, "HEAD cl=- body="},
        {"GET", NULL, "GET cl=- body="},         {"DELETE", "four", "DELETE cl=4 body=four"},
    };
    struct result r = {0};
    const char *with_header[] = {"X-Test: yes"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(steps); i++) {
        send_req(&c, steps[i].method, "/m", i % 2 ? with_header : NULL, i % 2, steps[i].body, &r);
        run_until(&c.loop, &r.calls, (int)i + 1);
        assert_int_equal(r.err, EDDY_OK);
        assert_int_equal(r.status, 200);
        assert_string_equal(seen, steps[i].seen);
        bool head = strcmp(steps[i].method, "HEAD") == 0;
        assert_string_equal(r.body, head || !steps[i].body ? "" : steps[i].body);
    }
    assert_int_equal(eddy_testserver_connections(c.server), 1);
    result_cleanup(&r);
    ctx_close(&c);
}

/* A request body bigger than a socket buffer and than curl's 64 KiB first
 * send, borrowed from the caller until the callback: curl reads the
 * caller's bytes, no copy of its own (a change made before the loop runs
 * is what the server gets). */
static void test_large_body_borrowed(void **state)
{
    (void)state;
    char seen[512];
    struct ctx c;
    ctx_init(&c, echo_handler, seen, NULL);
    size_t n = 300000;
    char *body = eddy_malloc(n + 1);
    memset(body, '?', n);
    body[n] = '\0';
    struct result r = {0};
    send_req(&c, "POST", "/big", NULL, 0, body, &r);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.body, body);
    free(body);
    result_cleanup(&r);
    ctx_close(&c);
}

static void test_keepalive_reuse(void **state)
{
    (void)state;
    struct server_opts o = {0};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    struct result r = {0};
    for (int i = 0; i < 20; i++) {
        send_req(&c, "GET", "/seq", NULL, 0, NULL, &r);
        run_until(&c.loop, &r.calls, i + 1);
        assert_int_equal(r.err, EDDY_OK);
        assert_string_equal(r.body, "/seq");
    }
    assert_int_equal(eddy_testserver_requests(c.server), 20);
    assert_int_equal(eddy_testserver_connections(c.server), 1);
    result_cleanup(&r);
    ctx_close(&c);
}

/* UV_POLL handles on the loop: how many, and how many keep it alive. */
struct poll_census {
    int handles;
    int active;
    int referenced;
};

static void count_poll(uv_handle_t *handle, void *ud)
{
    struct poll_census *pc = ud;
    if (handle->type != UV_POLL || uv_is_closing(handle))
        return;
    pc->handles++;
    pc->active += uv_is_active(handle) != 0;
    pc->referenced += uv_is_active(handle) && uv_has_ref(handle);
}

static struct poll_census poll_census(uv_loop_t *loop)
{
    struct poll_census pc = {0};
    uv_walk(loop, count_poll, &pc);
    return pc;
}

static void close_after_handler(const struct eddy_testserver_request *req,
                                struct eddy_testserver_reply *reply, void *ud)
{
    (void)ud;
    reply->body = req->target;
    reply->close_after = true;
}

/* A connection's socket has one uv_poll_t for its whole life: created once
 * however many requests the connection carries, kept (watching, but not
 * keeping the loop alive) while the connection waits in curl's pool, and
 * closed when curl closes the socket. */
static void test_poll_handle_per_connection(void **state)
{
    (void)state;
    enum { N = 30 };
    struct server_opts o = {0};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    struct result r = {0};
    for (int i = 0; i < N; i++) {
        send_req(&c, "POST", "/reuse", NULL, 0, "body", &r);
        run_until(&c.loop, &r.calls, i + 1);
        assert_int_equal(r.err, EDDY_OK);
        /* Between requests: pooled, watched, not keeping the loop alive. */
        struct poll_census pc = poll_census(&c.loop);
        assert_int_equal(pc.handles, 1);
        assert_int_equal(pc.active, 1);
        assert_int_equal(pc.referenced, 0);
    }
    assert_int_equal(eddy_testserver_connections(c.server), 1);
    struct eddy_http_stats st;
    eddy_http_stats(c.http, &st);
    assert_int_equal(st.requests, N);
    assert_int_equal(st.sockets_opened, 1);
    assert_int_equal(st.sockets_closed, 0);
    assert_int_equal(st.polls_created, 1);
    assert_int_equal(st.polls_closed, 0);
    assert_int_equal(st.polls_watching, 1);
    assert_true(st.poll_updates <= 2); /* not one or more per request */

    /* "Connection: close" on every answer: curl closes each socket, and
     * its handle goes with it. The first reuses the pooled connection. */
    eddy_testserver_set_handler(c.server, close_after_handler, NULL);
    for (int i = 0; i < 5; i++) {
        send_req(&c, "GET", "/close", NULL, 0, NULL, &r);
        run_until(&c.loop, &r.calls, N + i + 1);
        assert_int_equal(r.err, EDDY_OK);
        assert_string_equal(r.body, "/close");
    }
    eddy_http_stats(c.http, &st);
    assert_int_equal(eddy_testserver_connections(c.server), 5);
    assert_int_equal(st.sockets_opened, 5);
    assert_int_equal(st.sockets_closed, 5);
    assert_int_equal(st.polls_created, 5);
    assert_int_equal(st.polls_closed, 5);
    assert_int_equal(st.polls_watching, 0);

    /* One more pooled connection, then close the client with it idle. */
    eddy_testserver_set_handler(c.server, opts_handler, &o);
    send_req(&c, "GET", "/last", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, N + 6);
    assert_int_equal(poll_census(&c.loop).handles, 1);
    int closed = 0;
    eddy_http_close(c.http, on_closed, &closed);
    c.http = NULL;
    while (!closed)
        run_once(&c);
    assert_int_equal(poll_census(&c.loop).handles, 0);
    result_cleanup(&r);
    ctx_close(&c);
}

/* The server closes a pooled connection: the idle handle sees it and stops
 * watching (no busy loop), and the next request opens a new connection.
 * Closing the client then closes both sockets' handles. */
static void test_pooled_connection_closed_by_peer(void **state)
{
    (void)state;
    struct server_opts o = {0};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    struct result r = {0};
    send_req(&c, "GET", "/one", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_OK);
    struct eddy_http_stats st;
    eddy_http_stats(c.http, &st);
    assert_int_equal(st.polls_watching, 1);

    eddy_testserver_close(c.server, NULL, NULL);
    c.server = eddy_testserver_start(&c.loop, opts_handler, &o);
    for (int i = 0; i < 400 && st.polls_watching; i++) {
        run_once(&c);
        eddy_http_stats(c.http, &st);
    }
    assert_int_equal(st.polls_watching, 0);
    uint64_t updates = st.poll_updates;
    for (int i = 0; i < 5; i++)
        run_once(&c);
    eddy_http_stats(c.http, &st);
    assert_int_equal(st.poll_updates, updates);
    assert_int_equal(st.polls_closed, 0); /* curl has not looked at it yet */

    send_req(&c, "GET", "/two", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, 2);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.body, "/two");
    /* The dead connection was to another port, so curl leaves it in the
     * pool (to be pruned later); its handle stays, stopped, until then. */
    eddy_http_stats(c.http, &st);
    assert_int_equal(st.sockets_opened, 2);
    assert_int_equal(st.polls_created, 2);
    assert_int_equal(st.polls_closed, st.sockets_closed);
    struct poll_census pc = poll_census(&c.loop);
    assert_int_equal(pc.handles, 2 - (int)st.sockets_closed);
    assert_int_equal(pc.active, 1);
    assert_int_equal(pc.referenced, 0);
    result_cleanup(&r);
    ctx_close(&c);
}

struct chain {
    struct ctx *c;
    int done;
    int total;
};

static void on_chain(eddy_err err, const struct eddy_http_response *resp, void *ud);

static void chain_send(struct chain *ch)
{
    char url[128];
    snprintf(url, sizeof url, "%s/chain", eddy_testserver_url(ch->c->server));
    struct eddy_http_request req = {.method = "POST", .url = url, .body = "x", .body_len = 1};
    assert_int_equal(eddy_transport_send(&ch->c->t, &req, on_chain, ch, NULL), EDDY_OK);
}

static void on_chain(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct chain *ch = ud;
    assert_int_equal(err, EDDY_OK);
    assert_int_equal(resp->status, 200);
    if (++ch->done < ch->total)
        chain_send(ch);
}

/* Requests sent from inside a callback reuse the connection as well. */
static void test_keepalive_from_callback(void **state)
{
    (void)state;
    struct server_opts o = {0};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    struct chain ch = {.c = &c, .total = 20};
    chain_send(&ch);
    run_until(&c.loop, &ch.done, ch.total);
    assert_int_equal(eddy_testserver_requests(c.server), 20);
    assert_int_equal(eddy_testserver_connections(c.server), 1);
    ctx_close(&c);
}

struct idle_send {
    struct ctx *c;
    struct result r;
    uv_idle_t idle;
};

static void on_idle_send(uv_idle_t *h)
{
    struct idle_send *s = eddy_container_of(h, struct idle_send, idle);
    uv_idle_stop(h);
    send_req(s->c, "GET", "/b", NULL, 0, NULL, &s->r);
}

/* A request sent from an idle callback (as the publisher's flush sends)
 * leaves before that loop turn's poll: the server, on the same loop, has it
 * after one turn, not after a turn spent polling for nothing. */
static void test_send_from_idle_leaves_same_turn(void **state)
{
    (void)state;
    struct server_opts o = {0};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    struct result r0 = {0};
    send_req(&c, "GET", "/a", NULL, 0, NULL, &r0); /* a connection to reuse */
    run_until(&c.loop, &r0.calls, 1);
    assert_int_equal(eddy_testserver_requests(c.server), 1);
    struct idle_send s = {.c = &c};
    uv_idle_init(&c.loop, &s.idle);
    uv_idle_start(&s.idle, on_idle_send);
    uv_run(&c.loop, UV_RUN_NOWAIT);
    assert_int_equal(s.r.calls, 0);
    assert_int_equal(eddy_testserver_requests(c.server), 2);
    run_until(&c.loop, &s.r.calls, 1);
    assert_int_equal(s.r.err, EDDY_OK);
    assert_string_equal(s.r.body, "/b");
    uv_close((uv_handle_t *)&s.idle, NULL);
    result_cleanup(&r0);
    result_cleanup(&s.r);
    ctx_close(&c);
}

static void test_concurrency(void **state)
{
    (void)state;
    enum { N = 50 };
    struct server_opts o = {.delay_ms = 50};
    struct ctx c;
    struct eddy_http_config cfg = {.max_host_connections = 64};
    ctx_init(&c, opts_handler, &o, &cfg);
    struct result r[N];
    memset(r, 0, sizeof r);
    int total = 0;
    char path[32];
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "/r%d", i);
        send_req(&c, "GET", path, NULL, 0, NULL, &r[i]);
    }
    assert_int_equal(eddy_http_inflight(c.http), N);
    while (total < N) {
        run_once(&c);
        total = 0;
        for (int i = 0; i < N; i++)
            total += r[i].calls;
    }
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "/r%d", i);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, EDDY_OK);
        assert_string_equal(r[i].body, path);
        result_cleanup(&r[i]);
    }
    /* All were in flight together: one connection each, one poll handle
     * each; curl's pool keeps some of them, and closes the others. */
    assert_int_equal(eddy_testserver_connections(c.server), N);
    struct eddy_http_stats st;
    eddy_http_stats(c.http, &st);
    assert_int_equal(st.sockets_opened, N);
    assert_int_equal(st.polls_created, N);
    assert_int_equal(st.polls_closed, st.sockets_closed);
    assert_int_equal(poll_census(&c.loop).handles, N - (int)st.sockets_closed);
    assert_int_equal(eddy_http_inflight(c.http), 0);
    ctx_close(&c);
}

/* Wait for n results at once. */
static void run_all(struct ctx *c, struct result *r, int n)
{
    for (int i = 0; i < n; i++)
        run_until(&c->loop, &r[i].calls, 1);
}

/* A burst opens one connection per request; the connections stay in the
 * pool however few requests run afterwards, so the next burst opens none.
 * (curl's default pool holds four connections per transfer in progress:
 * a lone request would close the burst's connections one by one.) */
static void test_idle_connections_kept(void **state)
{
    (void)state;
    enum { N = 12 };
    struct server_opts o = {.delay_ms = 20};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    for (int round = 0; round < 2; round++) {
        struct result r[N];
        memset(r, 0, sizeof r);
        for (int i = 0; i < N; i++)
            send_req(&c, "GET", "/burst", NULL, 0, NULL, &r[i]);
        run_all(&c, r, N);
        for (int i = 0; i < N; i++) {
            assert_int_equal(r[i].err, EDDY_OK);
            result_cleanup(&r[i]);
        }
        assert_int_equal(eddy_testserver_connections(c.server), N);
        struct result one = {0};
        for (int i = 0; i < 5; i++) {
            send_req(&c, "GET", "/lone", NULL, 0, NULL, &one);
            run_until(&c.loop, &one.calls, i + 1);
            assert_int_equal(one.err, EDDY_OK);
        }
        result_cleanup(&one);
    }
    struct eddy_http_stats st;
    eddy_http_stats(c.http, &st);
    assert_int_equal(st.sockets_opened, N);
    assert_int_equal(st.sockets_closed, 0);
    ctx_close(&c);
}

/* HTTPS, verified against the server's certificate: keep-alive carries
 * every request on one connection and one handshake. Without the
 * certificate in the trusted set the request fails as a configuration
 * error (TLS is always verified). */
static void test_tls_keepalive_verified(void **state)
{
    (void)state;
    struct server_opts o = {0};
    struct ctx c;
    ctx_init_tls(&c, opts_handler, &o, NULL);
    assert_non_null(strstr(eddy_testserver_url(c.server), "https://"));
    struct result r = {0};
    for (int i = 0; i < 10; i++) {
        send_req(&c, "POST", "/tls", NULL, 0, "body", &r);
        run_until(&c.loop, &r.calls, i + 1);
        assert_int_equal(r.err, EDDY_OK);
        assert_string_equal(r.body, "/tls");
    }
    assert_int_equal(eddy_testserver_connections(c.server), 1);
    assert_int_equal(eddy_testserver_handshakes(c.server), 1);
    result_cleanup(&r);

    /* A client that trusts only the system's CAs refuses the server. */
    struct eddy_error err = {0};
    struct eddy_http *strict = eddy_http_new(&c.loop, NULL, &err);
    assert_non_null(strict);
    struct eddy_transport t = eddy_http_transport(strict);
    char url[128];
    snprintf(url, sizeof url, "%s/tls", eddy_testserver_url(c.server));
    struct eddy_http_request req = {.method = "GET", .url = url};
    struct result bad = {0};
    FILE *log = tmpfile(); /* the reason is logged, at any level: only curl knows it */
    assert_non_null(log);
    eddy_log_configure(EDDY_LOG_WARN, EDDY_LOG_JSON, log);
    assert_int_equal(eddy_transport_send(&t, &req, on_done, &bad, NULL), EDDY_OK);
    run_until(&c.loop, &bad.calls, 1);
    eddy_log_configure(EDDY_LOG_INFO, EDDY_LOG_JSON, NULL);
    char text[2048] = {0};
    rewind(log);
    text[fread(text, 1, sizeof text - 1, log)] = '\0';
    fclose(log);
    assert_non_null(strstr(text, "certificate"));
    assert_non_null(strstr(text, "AWS_CA_BUNDLE"));
    assert_int_equal(bad.err, EDDY_ECONFIG);
    assert_int_equal(eddy_testserver_resumed(c.server), 0);
    eddy_http_close(strict, NULL, NULL);
    result_cleanup(&bad);
    ctx_close(&c);
}

/* A body of 300 KB over HTTPS, twice on one connection: every TLS send
 * goes through curl's upload buffer, which easy_setup keeps at 16 KiB,
 * so the body leaves in pieces the size of that buffer. */
static void test_tls_large_body(void **state)
{
    (void)state;
    char seen[512];
    struct ctx c;
    ctx_init_tls(&c, echo_handler, seen, NULL);
    size_t n = 300000;
    char *body = eddy_malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    body[n] = '\0';
    struct result r = {0};
    for (int i = 0; i < 2; i++) {
        send_req(&c, "POST", "/big", NULL, 0, body, &r);
        run_until(&c.loop, &r.calls, i + 1);
        assert_int_equal(r.err, EDDY_OK);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, body);
    }
    assert_int_equal(eddy_testserver_connections(c.server), 1);
    free(body);
    result_cleanup(&r);
    ctx_close(&c);
}

/* The server closes every connection after its answer. The first
 * connection's session is resumed by the next connections, whichever of
 * the client's transfer handles opens them: here two at once, so one runs
 * on a handle that has never connected before. */
static void test_tls_session_resumed_after_reconnect(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init_tls(&c, close_after_handler, NULL, NULL);
    struct result first = {0};
    send_req(&c, "GET", "/first", NULL, 0, NULL, &first);
    run_until(&c.loop, &first.calls, 1);
    assert_int_equal(first.err, EDDY_OK);
    assert_int_equal(eddy_testserver_handshakes(c.server), 1);
    assert_int_equal(eddy_testserver_resumed(c.server), 0);

    struct result r[2];
    memset(r, 0, sizeof r);
    send_req(&c, "GET", "/again", NULL, 0, NULL, &r[0]);
    send_req(&c, "GET", "/again", NULL, 0, NULL, &r[1]);
    run_all(&c, r, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r[i].err, EDDY_OK);
        assert_string_equal(r[i].body, "/again");
        result_cleanup(&r[i]);
    }
    assert_int_equal(eddy_testserver_connections(c.server), 3);
    assert_int_equal(eddy_testserver_handshakes(c.server), 3);
    assert_int_equal(eddy_testserver_resumed(c.server), 2);
    result_cleanup(&first);
    ctx_close(&c);
}

/* The CA bundle is read once per client, not for every new connection:
 * after the file is gone, a new connection is still set up and verified. */
static void test_tls_ca_bundle_read_once(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init_tls(&c, close_after_handler, NULL, NULL);
    struct result r = {0};
    send_req(&c, "GET", "/one", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_OK);
    assert_int_equal(unlink(eddy_testserver_ca_file(c.server)), 0);
    send_req(&c, "GET", "/two", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, 2);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.body, "/two");
    assert_int_equal(eddy_testserver_connections(c.server), 2);
    result_cleanup(&r);
    ctx_close(&c);
}

static void test_host_connection_cap(void **state)
{
    (void)state;
    enum { N = 12 };
    struct server_opts o = {.delay_ms = 20};
    struct ctx c;
    struct eddy_http_config cfg = {.max_host_connections = 3};
    ctx_init(&c, opts_handler, &o, &cfg);
    struct result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        send_req(&c, "GET", "/capped", NULL, 0, NULL, &r[i]);
    for (int i = 0; i < N; i++) {
        run_until(&c.loop, &r[i].calls, 1);
        assert_int_equal(r[i].err, EDDY_OK);
        result_cleanup(&r[i]);
    }
    assert_true(eddy_testserver_connections(c.server) <= 3);
    ctx_close(&c);
}

static void test_timeout(void **state)
{
    (void)state;
    struct server_opts o = {.delay_ms = 3000};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    char url[128];
    snprintf(url, sizeof url, "%s/slow", eddy_testserver_url(c.server));
    struct eddy_http_request req = {.method = "GET", .url = url, .timeout_ms = 200};
    struct result r = {0};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_OK);
    run_until(&c.loop, &r.calls, 1);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(r.err, EDDY_ETIMEOUT);
    assert_true(ms >= 150 && ms < 2000);
    result_cleanup(&r);
    ctx_close(&c);
}

/* The client's default timeout applies when the request has none. */
static void test_default_timeout(void **state)
{
    (void)state;
    struct server_opts o = {.action = EDDY_TESTSERVER_HANG};
    struct ctx c;
    struct eddy_http_config cfg = {.timeout_ms = 150};
    ctx_init(&c, opts_handler, &o, &cfg);
    struct result r = {0};
    send_req(&c, "GET", "/hang", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_ETIMEOUT);
    result_cleanup(&r);
    ctx_close(&c);
}

/* A listening socket whose accept queue is full: the kernel drops further
 * SYNs, so a connect to it times out with nothing sent. */
static int full_listener(int *port, int filler[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 0), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    for (int i = 0; i < 2; i++) {
        filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(filler[i] >= 0);
        (void)connect(filler[i], (struct sockaddr *)&a, sizeof a);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A connect that timed out sent nothing, so it is a network error that a
 * caller may repeat whatever its call, not a timeout that may have
 * applied. */
static void test_connect_timeout_sent_nothing(void **state)
{
    (void)state;
    struct ctx c;
    struct eddy_http_config cfg = {.connect_timeout_ms = 200};
    ctx_init(&c, NULL, NULL, &cfg);
    int port, filler[2];
    int fd = full_listener(&port, filler);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct eddy_http_request req = {.method = "POST", .url = url, .body = "{}", .body_len = 2};
    struct result r = {0};
    assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_OK);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_ENET);
    result_cleanup(&r);
    close(filler[0]);
    close(filler[1]);
    close(fd);
    ctx_close(&c);
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, NULL, NULL, NULL);
    /* A port that was just listening and is now closed. */
    char url[128];
    snprintf(url, sizeof url, "%s/", eddy_testserver_url(c.server));
    eddy_testserver_close(c.server, NULL, NULL);
    c.server = NULL;
    struct eddy_http_request req = {.method = "GET", .url = url};
    struct result r = {0};
    assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_OK);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_ENET);
    result_cleanup(&r);
    ctx_close(&c);
}

static void test_closed_without_answer(void **state)
{
    (void)state;
    struct server_opts o = {.action = EDDY_TESTSERVER_CLOSE};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    struct result r = {0};
    send_req(&c, "POST", "/drop", NULL, 0, "body", &r);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_ENET);
    /* The next request still works once the server answers again. */
    o.action = EDDY_TESTSERVER_REPLY;
    send_req(&c, "GET", "/ok", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, 2);
    assert_int_equal(r.err, EDDY_OK);
    assert_string_equal(r.body, "/ok");
    result_cleanup(&r);
    ctx_close(&c);
}

static void test_body_cap(void **state)
{
    (void)state;
    struct server_opts o = {.fill_len = 1 << 20};
    struct ctx c;
    struct eddy_http_config cfg = {.max_response = 64 << 10};
    ctx_init(&c, opts_handler, &o, &cfg);
    struct result r = {0};
    send_req(&c, "GET", "/huge", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_ELIMIT);

    /* A per-request cap overrides the default: exactly at the cap passes. */
    o.fill_len = 100000;
    char url[128];
    snprintf(url, sizeof url, "%s/exact", eddy_testserver_url(c.server));
    struct eddy_http_request req = {.method = "GET", .url = url, .max_response = 100000};
    assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_OK);
    run_until(&c.loop, &r.calls, 2);
    assert_int_equal(r.err, EDDY_OK);
    assert_int_equal(strlen(r.body), 100000);
    req.max_response = 99999;
    assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_OK);
    run_until(&c.loop, &r.calls, 3);
    assert_int_equal(r.err, EDDY_ELIMIT);
    result_cleanup(&r);
    ctx_close(&c);
}

/* Replies of every size in turn on one recycled transfer: below and above
 * what a recycled buffer keeps, above what a Content-Length reserves, and
 * an empty one, each whole (the Content-Length is a hint for the buffer). */
static void test_reply_sizes_in_turn(void **state)
{
    (void)state;
    struct server_opts o = {0};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    struct result r = {0};
    const size_t sizes[] = {20000, 10, 300000, 5000, 1, 70000};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(sizes); i++) {
        o.fill_len = sizes[i];
        send_req(&c, "GET", "/fill", NULL, 0, NULL, &r);
        run_until(&c.loop, &r.calls, (int)i + 1);
        assert_int_equal(r.err, EDDY_OK);
        assert_int_equal(strlen(r.body), sizes[i]);
        assert_int_equal(strspn(r.body, "x"), sizes[i]);
    }
    o.fill_len = 0; /* the target as the body */
    send_req(&c, "GET", "/t", NULL, 0, NULL, &r);
    run_until(&c.loop, &r.calls, (int)EDDY_ARRAY_SIZE(sizes) + 1);
    assert_string_equal(r.body, "/t");
    struct eddy_http_stats st;
    eddy_http_stats(c.http, &st);
    assert_int_equal(st.requests, EDDY_ARRAY_SIZE(sizes) + 1);
    result_cleanup(&r);
    ctx_close(&c);
}

static void test_cancel(void **state)
{
    (void)state;
    struct server_opts o = {.action = EDDY_TESTSERVER_HANG};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    struct result r[3];
    memset(r, 0, sizeof r);
    uint64_t id0 = send_req(&c, "GET", "/a", NULL, 0, NULL, &r[0]);
    send_req(&c, "GET", "/b", NULL, 0, NULL, &r[1]);
    send_req(&c, "GET", "/c", NULL, 0, NULL, &r[2]);
    /* Let them reach the server. */
    while (eddy_testserver_requests(c.server) < 3)
        run_once(&c);
    eddy_transport_cancel(&c.t, id0);
    assert_int_equal(r[0].calls, 0); /* later, never inside cancel */
    eddy_transport_cancel(&c.t, id0);
    eddy_transport_cancel(&c.t, 9999); /* unknown: ignored */
    run_until(&c.loop, &r[0].calls, 1);
    assert_int_equal(r[0].err, EDDY_ECANCELED);
    assert_int_equal(r[1].calls + r[2].calls, 0);
    assert_int_equal(eddy_http_inflight(c.http), 2);

    eddy_http_cancel_all(c.http);
    assert_int_equal(r[1].calls + r[2].calls, 0);
    run_until(&c.loop, &r[2].calls, 1);
    run_until(&c.loop, &r[1].calls, 1);
    eddy_transport_cancel(&c.t, id0); /* finished: ignored */
    uv_run(&c.loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, EDDY_ECANCELED);
        result_cleanup(&r[i]);
    }
    assert_int_equal(eddy_http_inflight(c.http), 0);
    ctx_close(&c);
}

/* Cancel before the loop ran at all: the transfer never started. */
static void test_cancel_before_start(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, NULL, NULL, NULL);
    struct result r = {0};
    uint64_t id = send_req(&c, "GET", "/", NULL, 0, NULL, &r);
    eddy_transport_cancel(&c.t, id);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_ECANCELED);
    assert_int_equal(eddy_testserver_requests(c.server), 0);
    result_cleanup(&r);
    ctx_close(&c);
}

struct close_order {
    int *closed;
    int canceled;
};

static void on_close_cancel(eddy_err err, const struct eddy_http_response *resp, void *ud)
{
    struct close_order *o = ud;
    assert_int_equal(err, EDDY_ECANCELED);
    assert_null(resp);
    assert_int_equal(*o->closed, 0); /* callbacks owed run before the close callback */
    o->canceled++;
}

static void test_close_in_flight(void **state)
{
    (void)state;
    struct server_opts o = {.action = EDDY_TESTSERVER_HANG};
    struct ctx c;
    ctx_init(&c, opts_handler, &o, NULL);
    int closed = 0;
    struct close_order co = {.closed = &closed};
    char url[128];
    snprintf(url, sizeof url, "%s/pending", eddy_testserver_url(c.server));
    struct eddy_http_request req = {.method = "POST", .url = url, .body = "abc", .body_len = 3};
    for (int i = 0; i < 5; i++)
        assert_int_equal(eddy_transport_send(&c.t, &req, on_close_cancel, &co, NULL), EDDY_OK);
    while (eddy_testserver_requests(c.server) < 3)
        run_once(&c);
    eddy_http_close(c.http, on_closed, &closed);
    assert_int_equal(co.canceled, 0);
    c.http = NULL;
    while (!closed)
        run_once(&c);
    assert_int_equal(co.canceled, 5);
    ctx_close(&c);
}

static void test_send_errors(void **state)
{
    (void)state;
    struct ctx c;
    ctx_init(&c, NULL, NULL, NULL);
    struct result r = {0};
    const char *bad[] = {"X-Evil: a\r\nInjected: b"};
    const char *noname[] = {"no colon here"};
    char url[128];
    snprintf(url, sizeof url, "%s/", eddy_testserver_url(c.server));
    struct eddy_http_request req = {.method = "GET", .url = url, .headers = bad, .nheaders = 1};
    assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_EINVAL);
    req.headers = noname;
    assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_EINVAL);
    /* no name, CR or LF in the name, at the end of a value, after blanks */
    const char *more[] = {": v", "X-Cr\r: v", "X-Lf\n: v", "X-End: v\n", "X-Blank: \t\r"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        req.headers = &more[i];
        assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_EINVAL);
    }
    req.headers = NULL;
    req.nheaders = 0;
    req.body_len = 4; /* no body pointer */
    assert_int_equal(eddy_transport_send(&c.t, &req, on_done, &r, NULL), EDDY_EINVAL);
    assert_int_equal(eddy_http_inflight(c.http), 0);
    uv_run(&c.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0);
    /* A URL curl cannot use fails later, through the callback. */
    struct eddy_http_request ftp = {.method = "GET", .url = "ftp://127.0.0.1/x"};
    assert_int_equal(eddy_transport_send(&c.t, &ftp, on_done, &r, NULL), EDDY_OK);
    run_until(&c.loop, &r.calls, 1);
    assert_int_equal(r.err, EDDY_EINVAL);
    ctx_close(&c);
}

static void test_response_header_lookup(void **state)
{
    (void)state;
    const char *block = "Content-Type: application/json\r\n"
                        "x-amzn-RequestId:   abc-123  \r\n"
                        "X-Empty:\r\n"
                        "Content-Length: 7\n";
    struct eddy_http_response resp = {.status = 200, .headers = eddy_str_c(block)};
    struct eddy_str v;
    assert_true(eddy_http_response_header(&resp, "X-AMZN-REQUESTID", &v));
    assert_int_equal(v.len, 7);
    assert_memory_equal(v.ptr, "abc-123", 7);
    assert_true(eddy_http_response_header(&resp, "content-type", &v));
    assert_true(eddy_str_eqc(v, "application/json"));
    assert_true(eddy_http_response_header(&resp, "content-length", &v));
    assert_true(eddy_str_eqc(v, "7"));
    assert_true(eddy_http_response_header(&resp, "x-empty", &v));
    assert_int_equal(v.len, 0);
    assert_false(eddy_http_response_header(&resp, "Content", &v));
    assert_false(eddy_http_response_header(&resp, "X-Missing", &v));
    struct eddy_http_response none = {0};
    assert_false(eddy_http_response_header(&none, "a", &v));
}

/* ---- the fake transport ---- */

static void test_fake_replays_and_records(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct eddy_fake_transport *f = eddy_fake_new(&loop);
    struct eddy_transport t = eddy_fake_transport(f);
    eddy_fake_push_json(f, 200, "{\"ok\":true}");
    eddy_fake_push_error(f, EDDY_ETIMEOUT);
    struct eddy_fake_reply big = {.status = 200, .body = "0123456789"};
    eddy_fake_push(f, &big);
    const char *hdrs[] = {"X-Amz-Target: SQS.ReceiveMessage  ", "Content-Type: a/b"};
    struct eddy_http_request req = {.method = "POST",
                                    .url = "http://fake/",
                                    .headers = hdrs,
                                    .nheaders = 2,
                                    .body = "{}",
                                    .body_len = 2};
    struct result r = {0};
    uint64_t id = 0;
    assert_int_equal(eddy_transport_send(&t, &req, on_done, &r, &id), EDDY_OK);
    assert_int_equal(id, 1);
    assert_int_equal(r.calls, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true}");
    assert_int_equal(eddy_transport_send(&t, &req, on_done, &r, NULL), EDDY_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.err, EDDY_ETIMEOUT);
    req.max_response = 5;
    assert_int_equal(eddy_transport_send(&t, &req, on_done, &r, NULL), EDDY_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.err, EDDY_ELIMIT);
    assert_int_equal(eddy_fake_count(f), 3);
    const struct eddy_fake_request *q = eddy_fake_request_at(f, 0);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->url, "http://fake/");
    assert_string_equal(q->body, "{}");
    assert_string_equal(eddy_fake_request_header(q, "x-amz-target"), "SQS.ReceiveMessage");
    assert_null(eddy_fake_request_header(q, "X-Amz"));
    assert_int_equal(eddy_fake_last(f)->max_response, 5);
    result_cleanup(&r);
    eddy_fake_close(f, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_fake_waits_cancels_and_closes(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct eddy_fake_transport *f = eddy_fake_new(&loop);
    struct eddy_transport t = eddy_fake_transport(f);
    struct eddy_http_request req = {.method = "GET", .url = "http://fake/"};
    struct result r[3];
    memset(r, 0, sizeof r);
    uint64_t id0 = 0;
    /* No reply queued: the request waits. */
    assert_int_equal(eddy_transport_send(&t, &req, on_done, &r[0], &id0), EDDY_OK);
    assert_int_equal(eddy_transport_send(&t, &req, on_done, &r[1], NULL), EDDY_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r[0].calls + r[1].calls, 0);
    assert_int_equal(eddy_fake_inflight(f), 2);
    eddy_fake_push_status(f, 204, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[0].status, 204);
    eddy_transport_cancel(&t, id0); /* finished: ignored */
    eddy_fake_cancel_all(f);
    eddy_fake_cancel_all(f);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].err, EDDY_ECANCELED);
    assert_true(eddy_fake_request_at(f, 1)->canceled);
    /* fail_send: send() itself fails and the callback never runs. */
    struct eddy_fake_reply fail = {.err = EDDY_ENET, .fail_send = true};
    eddy_fake_push(f, &fail);
    assert_int_equal(eddy_transport_send(&t, &req, on_done, &r[2], NULL), EDDY_ENET);
    /* A request still waiting at close gets EDDY_ECANCELED, before cb. */
    assert_int_equal(eddy_transport_send(&t, &req, on_done, &r[2], NULL), EDDY_OK);
    int closed = 0;
    eddy_fake_close(f, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(r[2].calls, 1);
    assert_int_equal(r[2].err, EDDY_ECANCELED);
    for (int i = 0; i < 3; i++)
        result_cleanup(&r[i]);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_post_roundtrip),
        cmocka_unit_test(test_methods_in_turn),
        cmocka_unit_test(test_large_body_borrowed),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_keepalive_from_callback),
        cmocka_unit_test(test_send_from_idle_leaves_same_turn),
        cmocka_unit_test(test_poll_handle_per_connection),
        cmocka_unit_test(test_pooled_connection_closed_by_peer),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_host_connection_cap),
        cmocka_unit_test(test_idle_connections_kept),
        cmocka_unit_test(test_tls_keepalive_verified),
        cmocka_unit_test(test_tls_large_body),
        cmocka_unit_test(test_tls_session_resumed_after_reconnect),
        cmocka_unit_test(test_tls_ca_bundle_read_once),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_default_timeout),
        cmocka_unit_test(test_connect_timeout_sent_nothing),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_closed_without_answer),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_reply_sizes_in_turn),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_before_start),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_send_errors),
        cmocka_unit_test(test_response_header_lookup),
        cmocka_unit_test(test_fake_replays_and_records),
        cmocka_unit_test(test_fake_waits_cancels_and_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
