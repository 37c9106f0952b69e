/*
 * http.c - the real transport: libcurl's multi interface driven by libuv.
 *
 * It follows curl's docs/examples/multi-uv.c: curl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION, one uv_poll_t per socket) and when to wake
 * it (CURLMOPT_TIMERFUNCTION, one uv_timer_t); every poll or timer event is
 * handed to curl_multi_socket_action, after which finished transfers are
 * collected with curl_multi_info_read. No curl work and no user callback
 * ever runs inside one of curl's callbacks (see on_curl_timer).
 *
 * The loop never blocks: DNS goes through curl's asynchronous resolver (the
 * threaded one in Debian's libcurl4-openssl); eddy_http_new refuses a libcurl
 * built without one. Connections are kept alive and reused from the multi
 * handle's pool, at most max_host_connections per host; easy handles and
 * their buffers are recycled through a free list. TLS is always verified
 * (AWS_CA_BUNDLE becomes CURLOPT_CAINFO); proxies come from curl's own
 * handling of HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
 *
 * It is not a general HTTP client: no redirects, no compression, no HTTP/2,
 * no cookies. Request headers are never logged (they carry signatures).
 */
#include "aws/http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/log.h"

#define HTTP_DEFAULT_CONNECT_MS 3000
#define HTTP_DEFAULT_TIMEOUT_MS 30000
#define HTTP_DEFAULT_MAX_RESPONSE ((size_t)16 << 20)
#define HTTP_DEFAULT_HOST_CONNS 32
#define HTTP_MAX_HEADER_BLOCK ((size_t)64 << 10)
#define HTTP_FREE_LIST_MAX 64
/* Recycled buffers above this size are released rather than kept. */
#define HTTP_KEEP_BUF ((size_t)256 << 10)

/* One socket curl asked us to watch. */
struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct eddy_http *h;
    struct http_sock *prev, *next; /* h->socks, while curl watches it */
    bool counted;                  /* its close is awaited by eddy_http_close */
};

/* One request, from send() to its callback; recycled with its easy handle. */
struct http_xfer {
    struct eddy_http *h;
    CURL *easy;
    struct curl_slist *hdrs;
    struct eddy_buf body;
    struct eddy_buf headers;
    eddy_http_cb cb;
    void *ud;
    uint64_t id;
    bool over_cap; /* a write callback refused data past a cap */
    struct http_xfer *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
};

struct eddy_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout, when it is > 0 ms */
    uv_idle_t now;    /* curl's timeout, when it is 0 ms: "as soon as possible" */
    uv_timer_t later; /* delivers canceled callbacks from the loop */
    struct eddy_http_config cfg;
    char *ca_bundle;
    struct http_xfer *active;                   /* in the multi handle */
    struct http_xfer *canceled, *canceled_tail; /* callbacks owed */
    struct http_xfer *free_list;
    size_t nactive, ncanceled, nfree;
    struct http_sock *socks;
    uint64_t next_id;
    bool closing;
    size_t pending_closes;
    void (*close_cb)(void *ud);
    void *close_ud;
};

static void check_multi_info(struct eddy_http *h);
static void close_step(struct eddy_http *h);

/* ---- the xfer lists ---- */

static void active_add(struct eddy_http *h, struct http_xfer *x)
{
    x->prev = NULL;
    x->next = h->active;
    if (h->active)
        h->active->prev = x;
    h->active = x;
    h->nactive++;
}

static void active_remove(struct eddy_http *h, struct http_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        h->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    h->nactive--;
}

static struct http_xfer *xfer_get(struct eddy_http *h)
{
    struct http_xfer *x = h->free_list;
    if (x) {
        h->free_list = x->next;
        h->nfree--;
        x->next = NULL;
        return x;
    }
    x = eddy_calloc(1, sizeof *x);
    x->h = h;
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return NULL;
    }
    eddy_buf_init(&x->body, 0);
    eddy_buf_init(&x->headers, HTTP_MAX_HEADER_BLOCK);
    return x;
}

static void xfer_destroy(struct http_xfer *x)
{
    curl_slist_free_all(x->hdrs);
    curl_easy_cleanup(x->easy);
    eddy_buf_cleanup(&x->body);
    eddy_buf_cleanup(&x->headers);
    free(x);
}

/* Back to the free list: curl_easy_reset keeps nothing of the old request
 * but the handle itself (connections live in the multi handle's pool). */
static void xfer_recycle(struct eddy_http *h, struct http_xfer *x)
{
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    x->cb = NULL;
    x->ud = NULL;
    if (h->nfree >= HTTP_FREE_LIST_MAX || h->closing) {
        xfer_destroy(x);
        return;
    }
    curl_easy_reset(x->easy);
    if (x->body.cap > HTTP_KEEP_BUF)
        eddy_buf_cleanup(&x->body);
    eddy_buf_reset(&x->body);
    eddy_buf_reset(&x->headers);
    x->next = h->free_list;
    h->free_list = x;
    h->nfree++;
}

/* ---- curl's callbacks: record data, never call the user ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct http_xfer *x = ud;
    if (eddy_buf_append(&x->body, p, size * n) != EDDY_OK) {
        x->over_cap = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct http_xfer *x = ud;
    size_t len = size * n;
    /* A status line starts a new response (100 Continue, proxy CONNECT):
     * keep only the final one's headers. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        eddy_buf_reset(&x->headers);
        return len;
    }
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n'))
        return len;
    if (eddy_buf_append(&x->headers, p, len) != EDDY_OK) {
        x->over_cap = true;
        return 0;
    }
    return len;
}

static void on_poll_closed(uv_handle_t *handle)
{
    struct http_sock *s = eddy_container_of((uv_poll_t *)handle, struct http_sock, poll);
    struct eddy_http *h = s->h;
    bool counted = s->counted;
    free(s);
    if (counted)
        close_step(h);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    struct http_sock *s = eddy_container_of(poll, struct http_sock, poll);
    struct eddy_http *h = s->h;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (status == 0 && (events & UV_READABLE))
        flags |= CURL_CSELECT_IN;
    if (status == 0 && (events & UV_WRITABLE))
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    check_multi_info(h);
}

static void on_timeout(struct eddy_http *h)
{
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(h);
}

static void on_timer(uv_timer_t *t)
{
    on_timeout(eddy_container_of(t, struct eddy_http, timer));
}

static void on_now(uv_idle_t *idle)
{
    uv_idle_stop(idle);
    on_timeout(eddy_container_of(idle, struct eddy_http, now));
}

/*
 * CURLMOPT_TIMERFUNCTION: only arm a handle; curl's work runs from the loop,
 * never inside this callback. multi-uv.c turns 0 ms into a 1 ms timer; that
 * adds a millisecond to every request (each send asks for 0 ms), so 0 ms
 * arms an idle handle instead: it runs on the next loop iteration, keeps
 * that iteration's poll from blocking, and unlike a 0 ms timer restarted
 * from a timer callback it cannot run twice in one iteration.
 */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    struct eddy_http *h = ud;
    if (h->closing)
        return 0;
    uv_timer_stop(&h->timer);
    uv_idle_stop(&h->now);
    if (timeout_ms == 0)
        uv_idle_start(&h->now, on_now);
    else if (timeout_ms > 0)
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void sock_forget(struct eddy_http *h, struct http_sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static struct http_sock *sock_new(struct eddy_http *h, curl_socket_t fd)
{
    struct http_sock *s = eddy_calloc(1, sizeof *s);
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->h = h;
    s->next = h->socks;
    if (h->socks)
        h->socks->prev = s;
    h->socks = s;
    curl_multi_assign(h->multi, fd, s);
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching one socket. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)easy;
    struct eddy_http *h = ud;
    struct http_sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_forget(h, s);
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_poll_closed);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (h->closing)
        return 0;
    if (!s && !(s = sock_new(h, fd))) {
        EDDY_DEBUG("http: cannot watch socket %d", (int)fd);
        return -1;
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* ---- finishing a transfer ---- */

static eddy_err map_curl_error(CURLcode rc, bool over_cap)
{
    switch (rc) {
    case CURLE_OK:
        return EDDY_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return EDDY_ETIMEOUT;
    case CURLE_WRITE_ERROR:
        return over_cap ? EDDY_ELIMIT : EDDY_ENET;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return EDDY_EINVAL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ENGINE_NOTFOUND:
        return EDDY_ECONFIG;
    default:
        /* resolve, connect, send, recv, got nothing, TLS handshake, ... */
        return EDDY_ENET;
    }
}

/* Debug only: method and URL without its query (which may be presigned). */
static void log_failure(struct http_xfer *x, CURLcode rc, eddy_err err)
{
    if (!eddy_log_enabled(EDDY_LOG_DEBUG))
        return;
    const char *url = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
    int urllen = url ? (int)strcspn(url, "?") : 0;
    EDDY_DEBUG("http: request to %.*s failed: %s: %s%s%s", urllen, url ? url : "",
               eddy_err_name(err), curl_easy_strerror(rc), x->errbuf[0] ? ": " : "", x->errbuf);
}

static void finish(struct eddy_http *h, struct http_xfer *x, CURLcode rc)
{
    eddy_err err = map_curl_error(rc, x->over_cap);
    if (err != EDDY_OK) {
        log_failure(x, rc, err);
        x->cb(err, NULL, x->ud);
    } else {
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        struct eddy_http_response resp = {
            .status = status,
            .body = eddy_buf_str(&x->body),
            .headers = eddy_buf_str(&x->headers),
        };
        x->cb(EDDY_OK, &resp, x->ud);
    }
    xfer_recycle(h, x);
}

/* After every socket_action: hand finished transfers to their callbacks.
 * A callback may send, cancel or close; removing a handle drops its message. */
static void check_multi_info(struct eddy_http *h)
{
    CURLMsg *msg;
    int left;
    while (!h->closing && (msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct http_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(h->multi, easy);
        active_remove(h, x);
        finish(h, x, rc);
    }
}

/* ---- cancellation ---- */

static void deliver_canceled(struct eddy_http *h)
{
    struct http_xfer *x;
    while ((x = h->canceled)) {
        h->canceled = x->next;
        if (!h->canceled)
            h->canceled_tail = NULL;
        h->ncanceled--;
        x->next = NULL;
        x->cb(EDDY_ECANCELED, NULL, x->ud);
        xfer_recycle(h, x);
    }
}

static void on_later(uv_timer_t *t)
{
    deliver_canceled(eddy_container_of(t, struct eddy_http, later));
}

static void cancel_xfer(struct eddy_http *h, struct http_xfer *x)
{
    curl_multi_remove_handle(h->multi, x->easy);
    active_remove(h, x);
    x->next = NULL;
    if (h->canceled_tail)
        h->canceled_tail->next = x;
    else
        h->canceled = x;
    h->canceled_tail = x;
    h->ncanceled++;
    if (!h->closing)
        uv_timer_start(&h->later, on_later, 0, 0);
}

static void http_cancel(void *self, uint64_t id)
{
    struct eddy_http *h = self;
    for (struct http_xfer *x = h->active; x; x = x->next) {
        if (x->id == id) {
            cancel_xfer(h, x);
            return;
        }
    }
}

void eddy_http_cancel_all(struct eddy_http *h)
{
    while (h->active)
        cancel_xfer(h, h->active);
}

size_t eddy_http_inflight(const struct eddy_http *h)
{
    return h->nactive + h->ncanceled;
}

/* ---- starting a transfer ---- */

static bool header_named(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* A header line must be "Name: value" with no CR or LF (no injection). */
static bool header_valid(const char *line)
{
    const char *colon = strchr(line, ':');
    return colon && colon != line && !strpbrk(line, "\r\n");
}

/* Copy the caller's headers into an slist. curl drops "Name:" with nothing
 * after it, so an empty value is sent in curl's "Name;" form. Expect,
 * Accept and (with a body) Content-Type defaults of curl are suppressed. */
static eddy_err build_headers(const struct eddy_http_request *req, struct curl_slist **out)
{
    struct curl_slist *l = NULL;
    bool expect = false, accept = false, ctype = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *line = req->headers[i];
        if (!line || !header_valid(line)) {
            curl_slist_free_all(l);
            return EDDY_EINVAL;
        }
        expect |= header_named(line, "Expect");
        accept |= header_named(line, "Accept");
        ctype |= header_named(line, "Content-Type");
        const char *colon = strchr(line, ':');
        if (colon[strspn(colon + 1, " \t") + 1] == '\0') {
            size_t n = (size_t)(colon - line);
            char *semi = eddy_malloc(n + 2);
            memcpy(semi, line, n);
            memcpy(semi + n, ";", 2);
            l = curl_slist_append(l, semi);
            free(semi);
        } else {
            l = curl_slist_append(l, line);
        }
    }
    if (!expect)
        l = curl_slist_append(l, "Expect:");
    if (!accept)
        l = curl_slist_append(l, "Accept:");
    if (!ctype)
        l = curl_slist_append(l, "Content-Type:");
    *out = l;
    return EDDY_OK;
}

/* Method and body. The body is copied (CURLOPT_COPYPOSTFIELDS) so the
 * caller's buffer may go as soon as send() returns. */
static void set_method(CURL *e, const struct eddy_http_request *req)
{
    const char *m = req->method;
    bool bodyless = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "DELETE") == 0;
    if (bodyless && req->body_len == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        if (strcmp(m, "HEAD") == 0)
            curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        else if (strcmp(m, "GET") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        return;
    }
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body_len ? req->body : "");
    if (strcmp(m, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
}

static void set_options(struct eddy_http *h, struct http_xfer *x,
                        const struct eddy_http_request *req)
{
    CURL *e = x->easy;
    long total = req->timeout_ms ? (long)req->timeout_ms : (long)h->cfg.timeout_ms;
    long connect = (long)h->cfg.connect_timeout_ms;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)x);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect < total ? connect : total);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_bundle)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_bundle);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    set_method(e, req);
}

static eddy_err http_send(void *self, const struct eddy_http_request *req, eddy_http_cb cb,
                          void *ud, uint64_t *id)
{
    struct eddy_http *h = self;
    if (!req || !req->method || !req->method[0] || !req->url || !cb ||
        (req->body_len && !req->body) || strpbrk(req->method, " \r\n"))
        return EDDY_EINVAL;
    if (h->closing)
        return EDDY_ECANCELED;
    struct http_xfer *x = xfer_get(h);
    if (!x)
        return EDDY_ENET;
    eddy_err err = build_headers(req, &x->hdrs);
    if (err != EDDY_OK)
        goto fail;
    x->body.max = req->max_response ? req->max_response : h->cfg.max_response;
    x->over_cap = false;
    x->errbuf[0] = '\0';
    x->cb = cb;
    x->ud = ud;
    x->id = ++h->next_id;
    set_options(h, x, req);
    if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
        err = EDDY_ENET;
        goto fail;
    }
    active_add(h, x);
    if (id)
        *id = x->id;
    return EDDY_OK;
fail:
    xfer_recycle(h, x);
    return err;
}

static const struct eddy_transport_ops http_ops = {.send = http_send, .cancel = http_cancel};

struct eddy_transport eddy_http_transport(struct eddy_http *h)
{
    return (struct eddy_transport){.ops = &http_ops, .self = h};
}

/* ---- life cycle ---- */

static void apply_defaults(struct eddy_http_config *c)
{
    if (!c->connect_timeout_ms)
        c->connect_timeout_ms = HTTP_DEFAULT_CONNECT_MS;
    if (!c->timeout_ms)
        c->timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    if (!c->max_response)
        c->max_response = HTTP_DEFAULT_MAX_RESPONSE;
    if (c->max_host_connections <= 0)
        c->max_host_connections = HTTP_DEFAULT_HOST_CONNS;
}

/* curl_global_init once; the process is single-threaded when clients are
 * created (curl's threaded resolver starts its own threads later). */
static eddy_err global_init(struct eddy_error *err)
{
    static bool done;
    if (done)
        return EDDY_OK;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return eddy_error_set(err, EDDY_ECONFIG, "http: curl_global_init failed");
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    /* Without an asynchronous resolver, name lookups would block the loop. */
    if (!(v->features & CURL_VERSION_ASYNCHDNS))
        return eddy_error_set(err, EDDY_ECONFIG,
                              "http: libcurl %s has no asynchronous DNS resolver", v->version);
    done = true;
    return EDDY_OK;
}

struct eddy_http *eddy_http_new(uv_loop_t *loop, const struct eddy_http_config *cfg,
                                struct eddy_error *err)
{
    if (!loop) {
        eddy_error_set(err, EDDY_EINVAL, "http: no loop");
        return NULL;
    }
    if (global_init(err) != EDDY_OK)
        return NULL;
    CURLM *multi = curl_multi_init();
    if (!multi) {
        eddy_error_set(err, EDDY_ECONFIG, "http: curl_multi_init failed");
        return NULL;
    }
    struct eddy_http *h = eddy_calloc(1, sizeof *h);
    h->loop = loop;
    h->multi = multi;
    if (cfg)
        h->cfg = *cfg;
    apply_defaults(&h->cfg);
    h->ca_bundle = h->cfg.ca_bundle && h->cfg.ca_bundle[0] ? eddy_strdup(h->cfg.ca_bundle) : NULL;
    h->cfg.ca_bundle = h->ca_bundle;
    uv_timer_init(loop, &h->timer);
    uv_idle_init(loop, &h->now);
    uv_timer_init(loop, &h->later);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, (void *)h);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, (void *)h);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, h->cfg.max_host_connections);
    return h;
}

/* Runs once per closed handle; the last one delivers what is still owed,
 * then releases curl and h. */
static void close_step(struct eddy_http *h)
{
    if (--h->pending_closes)
        return;
    deliver_canceled(h);
    /* curl may report sockets while it shuts its pool down: nobody listens. */
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, NULL);
    while (h->free_list) {
        struct http_xfer *x = h->free_list;
        h->free_list = x->next;
        xfer_destroy(x);
    }
    curl_multi_cleanup(h->multi);
    void (*cb)(void *) = h->close_cb;
    void *ud = h->close_ud;
    free(h->ca_bundle);
    free(h);
    if (cb)
        cb(ud);
}

static void on_handle_closed(uv_handle_t *handle)
{
    close_step(handle->data);
}

void eddy_http_close(struct eddy_http *h, void (*cb)(void *ud), void *ud)
{
    if (!h || h->closing)
        return;
    eddy_http_cancel_all(h);
    h->closing = true;
    h->close_cb = cb;
    h->close_ud = ud;
    h->pending_closes = 3;
    h->timer.data = h;
    h->now.data = h;
    h->later.data = h;
    uv_close((uv_handle_t *)&h->timer, on_handle_closed);
    uv_close((uv_handle_t *)&h->now, on_handle_closed);
    uv_close((uv_handle_t *)&h->later, on_handle_closed);
    for (struct http_sock *s = h->socks, *next; s; s = next) {
        next = s->next;
        sock_forget(h, s);
        s->counted = true;
        h->pending_closes++;
        curl_multi_assign(h->multi, s->fd, NULL);
        uv_poll_stop(&s->poll);
        uv_close((uv_handle_t *)&s->poll, on_poll_closed);
    }
}

/* ---- response headers ---- */

static struct eddy_str trim(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    return (struct eddy_str){p, (size_t)(end - p)};
}

bool eddy_http_response_header(const struct eddy_http_response *r, const char *name,
                               struct eddy_str *value)
{
    if (!r || !name || !r->headers.ptr)
        return false;
    size_t n = strlen(name);
    const char *p = r->headers.ptr, *end = p + r->headers.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            if (value)
                *value = trim(p + n + 1, eol);
            return true;
        }
        p = eol + 1;
    }
    return false;
}
