/*
 * fake_transport.c - the canned-reply transport for unit tests (see
 * fake_transport.h). Not part of the library; it never touches a socket.
 *
 * Each request gets a record and its own uv_timer_t; the timer delivers the
 * callback, so delivery is always later and from the loop. Records live until
 * eddy_fake_close, so tests can inspect requests after their callbacks ran;
 * their memory is freed only once every timer's close callback has run.
 *
 * As the real transport, it borrows the request body until the callback:
 * the caller's bytes are read again just before each callback and must
 * still be there, unchanged (a freed body is a use after free under ASan).
 */
#include "fake_transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"

struct fake_reply {
    eddy_err err;
    bool fail_send;
    long status;
    char *headers;
    size_t headers_len;
    char *body;
    size_t body_len;
    uint32_t delay_ms;
    struct fake_reply *next;
};

enum call_state { CALL_WAITING, CALL_SCHEDULED, CALL_DONE };

struct fake_call {
    struct eddy_fake_request rec;
    struct eddy_fake_transport *f;
    uv_timer_t timer;
    bool timer_ready; /* timer initialised (false for fail_send records) */
    enum call_state state;
    struct fake_reply *reply; /* matched reply, owned */
    eddy_http_cb cb;
    void *ud;
    const char *lent; /* the caller's body, borrowed until cb */
};

/* The body lent at send() must be intact until the callback (http.h). */
static void check_lent(const struct fake_call *c)
{
    if (c->rec.body_len && memcmp(c->lent, c->rec.body, c->rec.body_len) != 0) {
        fprintf(stderr, "fake transport: request %llu: the body changed before its callback\n",
                (unsigned long long)c->rec.id);
        abort();
    }
}

struct eddy_fake_transport {
    uv_loop_t *loop;
    uv_timer_t self; /* gives close a handle even with no calls */
    struct fake_reply *head, *tail;
    size_t nqueued;
    struct fake_call **calls;
    size_t ncalls, cap;
    size_t inflight;
    bool closing;
    size_t pending_closes;
    void (*close_cb)(void *ud);
    void *close_ud;
};

static void reply_free(struct fake_reply *r)
{
    if (!r)
        return;
    free(r->headers);
    free(r->body);
    free(r);
}

static struct fake_reply *queue_pop(struct eddy_fake_transport *f)
{
    struct fake_reply *r = f->head;
    if (!r)
        return NULL;
    f->head = r->next;
    if (!f->head)
        f->tail = NULL;
    r->next = NULL;
    f->nqueued--;
    return r;
}

static void deliver(uv_timer_t *t)
{
    struct fake_call *c = eddy_container_of(t, struct fake_call, timer);
    struct fake_reply *r = c->reply;
    c->reply = NULL;
    c->state = CALL_DONE;
    c->f->inflight--;
    check_lent(c);
    if (c->rec.canceled) {
        c->cb(EDDY_ECANCELED, NULL, c->ud);
    } else if (r->err != EDDY_OK) {
        c->cb(r->err, NULL, c->ud);
    } else if (c->rec.max_response && r->body_len > c->rec.max_response) {
        c->cb(EDDY_ELIMIT, NULL, c->ud);
    } else {
        struct eddy_http_response resp = {
            .status = r->status,
            .body = {r->body ? r->body : "", r->body_len},
            .headers = {r->headers ? r->headers : "", r->headers_len},
        };
        c->cb(EDDY_OK, &resp, c->ud);
    }
    reply_free(r);
}

static void schedule(struct fake_call *c, struct fake_reply *r)
{
    c->reply = r;
    c->state = CALL_SCHEDULED;
    uv_timer_start(&c->timer, deliver, r->delay_ms, 0);
}

/* Hand queued replies to requests waiting for one, oldest first. */
static void match_waiting(struct eddy_fake_transport *f)
{
    for (size_t i = 0; i < f->ncalls && f->head; i++) {
        struct fake_call *c = f->calls[i];
        if (c->state == CALL_WAITING && !c->rec.canceled)
            schedule(c, queue_pop(f));
    }
}

static void record(struct fake_call *c, const struct eddy_http_request *req, uint64_t id)
{
    struct eddy_fake_request *rec = &c->rec;
    rec->id = id;
    rec->method = eddy_strdup(req->method ? req->method : "");
    rec->url = eddy_strdup(req->url ? req->url : "");
    rec->nheaders = req->nheaders;
    rec->headers = eddy_calloc(req->nheaders ? req->nheaders : 1, sizeof(char *));
    for (size_t i = 0; i < req->nheaders; i++) {
        char *h = eddy_strdup(req->headers[i]);
        size_t n = strlen(h);
        while (n && (h[n - 1] == ' ' || h[n - 1] == '\t' || h[n - 1] == '\r' || h[n - 1] == '\n'))
            h[--n] = '\0';
        rec->headers[i] = h;
    }
    rec->body_len = req->body ? req->body_len : 0;
    rec->body = eddy_malloc(rec->body_len + 1);
    if (rec->body_len)
        memcpy(rec->body, req->body, rec->body_len);
    rec->body[rec->body_len] = '\0';
    c->lent = req->body;
    rec->timeout_ms = req->timeout_ms;
    rec->max_response = req->max_response;
}

static struct fake_call *call_add(struct eddy_fake_transport *f)
{
    if (f->ncalls == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->calls = eddy_realloc(f->calls, f->cap * sizeof *f->calls);
    }
    struct fake_call *c = eddy_calloc(1, sizeof *c);
    c->f = f;
    f->calls[f->ncalls++] = c;
    return c;
}

static eddy_err fake_send(void *self, const struct eddy_http_request *req, eddy_http_cb cb,
                          void *ud, uint64_t *id)
{
    struct eddy_fake_transport *f = self;
    if (!req || !req->method || !req->url || !cb || (req->body_len && !req->body))
        return EDDY_EINVAL;
    if (f->closing)
        return EDDY_ECANCELED;
    struct fake_call *c = call_add(f);
    record(c, req, f->ncalls);
    if (id)
        *id = c->rec.id;
    if (f->head && f->head->fail_send) {
        struct fake_reply *r = queue_pop(f);
        eddy_err err = r->err != EDDY_OK ? r->err : EDDY_ENET;
        reply_free(r);
        c->state = CALL_DONE;
        return err;
    }
    uv_timer_init(f->loop, &c->timer);
    c->timer_ready = true;
    c->cb = cb;
    c->ud = ud;
    c->state = CALL_WAITING;
    f->inflight++;
    if (f->head)
        schedule(c, queue_pop(f));
    return EDDY_OK;
}

static void cancel_call(struct fake_call *c)
{
    if (c->state == CALL_DONE || c->rec.canceled)
        return;
    c->rec.canceled = true;
    c->state = CALL_SCHEDULED;
    uv_timer_start(&c->timer, deliver, 0, 0);
}

static void fake_cancel(void *self, uint64_t id)
{
    struct eddy_fake_transport *f = self;
    if (id == 0 || id > f->ncalls || f->closing)
        return;
    cancel_call(f->calls[id - 1]);
}

static const struct eddy_transport_ops fake_ops = {.send = fake_send, .cancel = fake_cancel};

struct eddy_fake_transport *eddy_fake_new(uv_loop_t *loop)
{
    struct eddy_fake_transport *f = eddy_calloc(1, sizeof *f);
    f->loop = loop;
    uv_timer_init(loop, &f->self);
    return f;
}

struct eddy_transport eddy_fake_transport(struct eddy_fake_transport *f)
{
    return (struct eddy_transport){.ops = &fake_ops, .self = f};
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = eddy_malloc(n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

void eddy_fake_push(struct eddy_fake_transport *f, const struct eddy_fake_reply *r)
{
    struct fake_reply *q = eddy_calloc(1, sizeof *q);
    q->err = r->err;
    q->fail_send = r->fail_send;
    q->status = r->status;
    q->delay_ms = r->delay_ms;
    if (r->headers) {
        q->headers_len = strlen(r->headers);
        q->headers = dup_bytes(r->headers, q->headers_len);
    }
    if (r->body) {
        q->body_len = r->body_len ? r->body_len : strlen(r->body);
        q->body = dup_bytes(r->body, q->body_len);
    }
    if (f->tail)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
    f->nqueued++;
    if (!f->closing)
        match_waiting(f);
}

void eddy_fake_push_json(struct eddy_fake_transport *f, long status, const char *json)
{
    eddy_fake_push_status(f, status, "Content-Type: application/x-amz-json-1.0\r\n", json);
}

void eddy_fake_push_status(struct eddy_fake_transport *f, long status, const char *headers,
                           const char *body)
{
    struct eddy_fake_reply r = {.status = status, .headers = headers, .body = body};
    eddy_fake_push(f, &r);
}

void eddy_fake_push_error(struct eddy_fake_transport *f, eddy_err err)
{
    struct eddy_fake_reply r = {.err = err};
    eddy_fake_push(f, &r);
}

size_t eddy_fake_count(const struct eddy_fake_transport *f)
{
    return f->ncalls;
}

const struct eddy_fake_request *eddy_fake_request_at(const struct eddy_fake_transport *f, size_t i)
{
    return i < f->ncalls ? &f->calls[i]->rec : NULL;
}

const struct eddy_fake_request *eddy_fake_last(const struct eddy_fake_transport *f)
{
    return f->ncalls ? &f->calls[f->ncalls - 1]->rec : NULL;
}

const char *eddy_fake_request_header(const struct eddy_fake_request *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *h = r->headers[i];
        if (strncasecmp(h, name, n) != 0 || h[n] != ':')
            continue;
        h += n + 1;
        while (*h == ' ' || *h == '\t')
            h++;
        return h;
    }
    return NULL;
}

size_t eddy_fake_queued(const struct eddy_fake_transport *f)
{
    return f->nqueued;
}

size_t eddy_fake_inflight(const struct eddy_fake_transport *f)
{
    return f->inflight;
}

void eddy_fake_cancel_all(struct eddy_fake_transport *f)
{
    for (size_t i = 0; i < f->ncalls && !f->closing; i++)
        cancel_call(f->calls[i]);
}

static void call_free(struct fake_call *c)
{
    free(c->rec.method);
    free(c->rec.url);
    for (size_t i = 0; i < c->rec.nheaders; i++)
        free(c->rec.headers[i]);
    free(c->rec.headers);
    free(c->rec.body);
    reply_free(c->reply);
    free(c);
}

static void finish_close(struct eddy_fake_transport *f)
{
    if (--f->pending_closes)
        return;
    for (size_t i = 0; i < f->ncalls; i++)
        call_free(f->calls[i]);
    free(f->calls);
    while (f->head)
        reply_free(queue_pop(f));
    void (*cb)(void *) = f->close_cb;
    void *ud = f->close_ud;
    free(f);
    if (cb)
        cb(ud);
}

static void on_call_closed(uv_handle_t *h)
{
    struct fake_call *c = eddy_container_of((uv_timer_t *)h, struct fake_call, timer);
    if (c->state != CALL_DONE) {
        c->state = CALL_DONE;
        c->rec.canceled = true;
        c->f->inflight--;
        check_lent(c);
        c->cb(EDDY_ECANCELED, NULL, c->ud);
    }
    finish_close(c->f);
}

static void on_self_closed(uv_handle_t *h)
{
    finish_close(eddy_container_of((uv_timer_t *)h, struct eddy_fake_transport, self));
}

void eddy_fake_close(struct eddy_fake_transport *f, void (*cb)(void *ud), void *ud)
{
    if (f->closing)
        return;
    f->closing = true;
    f->close_cb = cb;
    f->close_ud = ud;
    f->pending_closes = 1;
    for (size_t i = 0; i < f->ncalls; i++) {
        if (f->calls[i]->timer_ready) {
            f->pending_closes++;
            uv_close((uv_handle_t *)&f->calls[i]->timer, on_call_closed);
        }
    }
    uv_close((uv_handle_t *)&f->self, on_self_closed);
}
