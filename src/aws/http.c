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
 * their buffers are recycled through a free list, and a connection's socket
 * keeps one uv_poll_t for its whole life (see struct http_sock). TLS is
 * always verified (AWS_CA_BUNDLE becomes CURLOPT_CAINFO); proxies come from
 * curl's own handling of HTTPS_PROXY / HTTP_PROXY / NO_PROXY when such a
 * variable is set as the client is created (otherwise none is used).
 *
 * What a new connection costs is paid as seldom as possible (see
 * tls_setup): the pool keeps every connection a burst opened, not curl's
 * default of four per transfer in progress; the TLS session cache is shared
 * by all the easy handles (a curl share), so a reconnect on any of them
 * resumes the session instead of a full handshake with its certificate
 * checks; and the trusted certificates are read once into a store the
 * multi handle keeps, instead of from the CA file for every connection.
 *
 * It is not a general HTTP client: no redirects, no compression, no HTTP/2,
 * no cookies. Request headers are never logged (they carry signatures).
 */
#include "aws/http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/closer.h"
#include "base/list.h"
#include "base/log.h"

#define HTTP_DEFAULT_CONNECT_MS 3000
#define HTTP_DEFAULT_TIMEOUT_MS 30000
#define HTTP_DEFAULT_MAX_RESPONSE ((size_t)16 << 20)
#define HTTP_DEFAULT_HOST_CONNS 32
/* Connections the pool keeps, per allowed connection to one host: eddy
 * talks to SQS, DynamoDB, EventBridge and a credentials endpoint. */
#define HTTP_POOL_HOSTS 4
#define HTTP_MAX_HEADER_BLOCK ((size_t)64 << 10)
#define HTTP_FREE_LIST_MAX 64
/* curl's upload buffer per handle (CURLOPT_UPLOAD_BUFFERSIZE, see
 * easy_setup): its minimum. */
#define HTTP_UPLOAD_BUFFER 16384L
/* Recycled buffers above this size are released rather than kept. */
#define HTTP_KEEP_BUF ((size_t)256 << 10)
/* A recycled xfer keeps a response buffer up to this size: most replies
 * fit; a bigger one (ReceiveMessage's, 10 to 40 KiB) is allocated for its
 * reply, at its Content-Length, and released with it. Kept, the bigger
 * ones added up to some 0.5 MB of the heap's peak with 1,000 messages in
 * flight, for buffers empty between replies. */
#define HTTP_KEEP_BODY ((size_t)4 << 10)
/* A Content-Length is taken as the size to reserve up to this much; past
 * it the buffer grows with what arrives. */
#define HTTP_RESERVE_MAX HTTP_KEEP_BUF

/*
 * One socket and its uv_poll_t. A connection's socket is opened and closed
 * through our CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION
 * ("owned"), so its handle lives exactly as long as the socket: curl says
 * CURL_POLL_REMOVE whenever a transfer ends, even when the connection stays
 * in its pool, and closing and re-creating the handle for every request
 * would cost about seven epoll_ctl and an ioctl each time. Any other socket
 * curl watches (the threaded resolver's socket pair) is closed by curl
 * without telling us, so its handle goes at CURL_POLL_REMOVE, before that.
 */
struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct eddy_http *h;
    struct eddy_list link; /* in h->socks, until the handle is closed */
    int events;            /* what the handle watches now; 0 = stopped */
    bool owned;            /* close_socket will tell us when it goes */
    bool idle;             /* curl does not watch it (pooled connection) */
    bool counted;          /* its close is awaited by eddy_http_close */
};

/* One request, from send() to its callback; recycled with its easy handle
 * and every buffer, so a request in the steady state allocates nothing
 * here: the header list's nodes and text live in buffers of the xfer that
 * curl reads (CURLOPT_HTTPHEADER does not copy). The request body is the
 * caller's, borrowed until the callback (CURLOPT_POSTFIELDS does not copy
 * either): a copy per transfer cost as much memory again as the bodies in
 * flight. */
struct http_xfer {
    struct eddy_http *h;
    CURL *easy;
    struct curl_slist *hnodes; /* CURLOPT_HTTPHEADER: nodes into htext */
    size_t hnodes_cap;
    struct eddy_buf htext; /* the header lines, each NUL-terminated */
    struct eddy_buf body;
    struct eddy_buf headers;
    eddy_http_cb cb;
    void *ud;
    uint64_t id;
    bool over_cap;         /* a write callback refused data past a cap */
    struct eddy_list link; /* in h->active, h->canceled or h->free_list */
    char errbuf[CURL_ERROR_SIZE];
};

struct eddy_http {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share;     /* the TLS session cache of every easy handle */
    uv_timer_t timer;  /* curl's timeout, when it is > 0 ms */
    uv_idle_t now;     /* curl's timeout, when it is 0 ms: "as soon as possible" */
    uv_prepare_t soon; /* ... or sooner, before this turn's poll (see on_curl_timer) */
    uv_timer_t later;  /* delivers canceled callbacks from the loop */
    struct eddy_http_config cfg;
    char *ca_bundle;
    struct eddy_list active;    /* xfers in the multi handle */
    struct eddy_list canceled;  /* xfers whose callback is owed, oldest first */
    struct eddy_list free_list; /* xfers to reuse */
    size_t nactive, ncanceled, nfree;
    struct eddy_list socks;  /* every http_sock whose handle is open */
    struct http_sock **byfd; /* socks by descriptor */
    size_t nbyfd;
    struct eddy_http_stats stats;
    uint64_t next_id;
    bool env_proxy;            /* a proxy variable was set when h was created */
    bool ca_file;              /* the trusted CAs come from one file (cacheable) */
    struct eddy_closer closer; /* closing once it began */
};

static void check_multi_info(struct eddy_http *h);
static void easy_setup(struct eddy_http *h, struct http_xfer *x);
static void on_poll(uv_poll_t *poll, int status, int events);

/* ---- the xfer lists ---- */

static struct http_xfer *xfer_of(struct eddy_list *q)
{
    return eddy_list_data(q, struct http_xfer, link);
}

static void active_add(struct eddy_http *h, struct http_xfer *x)
{
    eddy_list_insert_tail(&h->active, &x->link);
    h->nactive++;
}

static void active_remove(struct eddy_http *h, struct http_xfer *x)
{
    eddy_list_remove(&x->link);
    h->nactive--;
}

static struct http_xfer *xfer_get(struct eddy_http *h)
{
    struct eddy_list *q = eddy_list_head(&h->free_list);
    if (q) {
        eddy_list_remove(q);
        h->nfree--;
        return xfer_of(q);
    }
    struct http_xfer *x = eddy_calloc(1, sizeof *x);
    eddy_list_init(&x->link);
    x->h = h;
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return NULL;
    }
    /* No cap of our own on what the caller sends. */
    eddy_buf_init(&x->htext, SIZE_MAX / 2);
    eddy_buf_init(&x->body, 0);
    eddy_buf_init(&x->headers, HTTP_MAX_HEADER_BLOCK);
    easy_setup(h, x);
    return x;
}

static void xfer_destroy(struct http_xfer *x)
{
    curl_easy_cleanup(x->easy);
    free(x->hnodes);
    eddy_buf_cleanup(&x->htext);
    eddy_buf_cleanup(&x->body);
    eddy_buf_cleanup(&x->headers);
    free(x);
}

static void buf_trim(struct eddy_buf *b)
{
    if (b->cap > HTTP_KEEP_BUF)
        eddy_buf_cleanup(b);
    eddy_buf_reset(b);
}

/* Back to the free list. The easy handle keeps its options (those set once
 * by easy_setup, and the request's, which the next send() sets again):
 * curl_easy_reset and setting some twenty options anew cost more than the
 * request's own work here. Connections live in the multi handle's pool. */
static void xfer_recycle(struct eddy_http *h, struct http_xfer *x)
{
    x->cb = NULL;
    x->ud = NULL;
    if (h->nfree >= HTTP_FREE_LIST_MAX || eddy_closer_closing(&h->closer)) {
        xfer_destroy(x);
        return;
    }
    buf_trim(&x->htext);
    if (x->body.cap > HTTP_KEEP_BODY)
        eddy_buf_cleanup(&x->body);
    eddy_buf_reset(&x->body);
    eddy_buf_reset(&x->headers);
    eddy_list_insert_head(&h->free_list, &x->link);
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

/* A Content-Length line: room for the whole body at once, instead of a
 * dozen reallocations from 64 bytes up (the buffer starts empty again for a
 * reply bigger than HTTP_KEEP_BODY). Only a hint: a body of another length
 * is read all the same, and the cap is on_body's to enforce. */
static void reserve_body(struct http_xfer *x, const char *p, size_t len)
{
    static const char name[] = "content-length:";
    if (len < sizeof name || strncasecmp(p, name, sizeof name - 1) != 0)
        return;
    size_t v = 0, i = sizeof name - 1;
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        i++;
    for (; i < len && p[i] >= '0' && p[i] <= '9' && v <= HTTP_RESERVE_MAX; i++)
        v = v * 10 + (size_t)(p[i] - '0');
    if (v > 0 && v <= HTTP_RESERVE_MAX && v <= x->body.max)
        (void)!eddy_buf_reserve(&x->body, v);
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
    reserve_body(x, p, len);
    if (eddy_buf_append(&x->headers, p, len) != EDDY_OK) {
        x->over_cap = true;
        return 0;
    }
    return len;
}

/* ---- sockets ---- */

/* A socket's handle is freed here; once the client closes, the closer
 * waits for each (eddy_http_close holds it once per handle). */
static void on_poll_closed(uv_handle_t *handle)
{
    struct http_sock *s = eddy_container_of((uv_poll_t *)handle, struct http_sock, poll);
    struct eddy_http *h = s->h;
    bool counted = s->counted;
    free(s);
    if (counted)
        eddy_closer_release(&h->closer);
}

static struct http_sock *sock_find(const struct eddy_http *h, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < h->nbyfd ? h->byfd[fd] : NULL;
}

static void sock_map(struct eddy_http *h, curl_socket_t fd, struct http_sock *s)
{
    if ((size_t)fd >= h->nbyfd) {
        size_t n = h->nbyfd ? h->nbyfd : 64;
        while (n <= (size_t)fd)
            n *= 2;
        h->byfd = eddy_realloc(h->byfd, n * sizeof *h->byfd);
        memset(h->byfd + h->nbyfd, 0, (n - h->nbyfd) * sizeof *h->byfd);
        h->nbyfd = n;
    }
    h->byfd[fd] = s;
}

/* Watch events (0: stop). libuv's uv_poll_start always removes the
 * descriptor from epoll and adds it again, so it runs only on a change. */
static void sock_watch(struct http_sock *s, int events)
{
    if (events == s->events)
        return;
    struct eddy_http *h = s->h;
    if (events && !s->events)
        h->stats.polls_watching++;
    else if (!events)
        h->stats.polls_watching--;
    s->events = events;
    h->stats.poll_updates++;
    if (events)
        uv_poll_start(&s->poll, events, on_poll);
    else
        uv_poll_stop(&s->poll);
}

/* Off the list and the map, and uv_close: from here the descriptor may be
 * closed and its number reused; the memory goes in on_poll_closed. */
static void sock_close(struct eddy_http *h, struct http_sock *s)
{
    sock_watch(s, 0);
    eddy_list_remove(&s->link);
    if (sock_find(h, s->fd) == s)
        h->byfd[s->fd] = NULL;
    h->stats.polls_closed++;
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

static struct http_sock *sock_new(struct eddy_http *h, curl_socket_t fd, bool owned)
{
    struct http_sock *stale = sock_find(h, fd);
    if (stale) /* its socket was closed behind our back: the number is reused */
        sock_close(h, stale);
    struct http_sock *s = eddy_calloc(1, sizeof *s);
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->h = h;
    s->owned = owned;
    eddy_list_insert_tail(&h->socks, &s->link);
    sock_map(h, fd, s);
    h->stats.polls_created++;
    return s;
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    struct http_sock *s = eddy_container_of(poll, struct http_sock, poll);
    struct eddy_http *h = s->h;
    if (s->idle) {
        /* A pooled connection became readable: the peer closed it (or
         * misbehaves). Stop watching so the loop does not spin; curl finds
         * it dead when it next considers reusing it. */
        sock_watch(s, 0);
        return;
    }
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

static void now_stop(struct eddy_http *h)
{
    uv_idle_stop(&h->now);
    uv_prepare_stop(&h->soon);
}

static void on_now(uv_idle_t *idle)
{
    struct eddy_http *h = eddy_container_of(idle, struct eddy_http, now);
    now_stop(h);
    on_timeout(h);
}

static void on_soon(uv_prepare_t *prepare)
{
    struct eddy_http *h = eddy_container_of(prepare, struct eddy_http, soon);
    now_stop(h);
    on_timeout(h);
}

/*
 * CURLMOPT_TIMERFUNCTION: only arm a handle; curl's work runs from the loop,
 * never inside this callback. multi-uv.c turns 0 ms into a 1 ms timer; that
 * adds a millisecond to every request (each send asks for 0 ms), so 0 ms
 * arms an idle handle instead: it runs on the next loop iteration, keeps
 * that iteration's poll from blocking, and unlike a 0 ms timer restarted
 * from a timer callback it cannot run twice in one iteration. A prepare
 * handle is armed with it, and whichever runs first does the work: a send
 * from a timer or an idle callback (the publisher's and the committer's
 * flushes) then leaves before this iteration's poll, instead of costing an
 * iteration of its own with a poll that waits for nothing.
 */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    struct eddy_http *h = ud;
    if (eddy_closer_closing(&h->closer))
        return 0;
    uv_timer_stop(&h->timer);
    now_stop(h);
    if (timeout_ms == 0) {
        uv_idle_start(&h->now, on_now);
        uv_prepare_start(&h->soon, on_soon);
    } else if (timeout_ms > 0) {
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

/* CURL_POLL_REMOVE of a connection's socket: it goes back to curl's pool
 * (or is about to be closed through close_socket). Keep its handle, still
 * watching for input, so the next request on it needs no epoll_ctl at all;
 * unreferenced, so an idle pool does not keep the loop running. */
static void sock_park(struct http_sock *s)
{
    if (s->events != UV_READABLE)
        sock_watch(s, 0); /* writable would fire at once, and forever */
    s->idle = true;
    uv_unref((uv_handle_t *)&s->poll);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching one socket. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)easy;
    (void)sockp;
    struct eddy_http *h = ud;
    struct http_sock *s = sock_find(h, fd);
    if (what == CURL_POLL_REMOVE) {
        if (s && s->owned)
            sock_park(s);
        else if (s)
            sock_close(h, s);
        return 0;
    }
    if (eddy_closer_closing(&h->closer))
        return 0;
    if (!s && !(s = sock_new(h, fd, false))) {
        EDDY_DEBUG("http: cannot watch socket %d", (int)fd);
        return -1;
    }
    if (s->idle) {
        s->idle = false;
        uv_ref((uv_handle_t *)&s->poll);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    sock_watch(s, events);
    return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: a connection's socket, and its handle. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct eddy_http *h = ud;
    if (purpose != CURLSOCKTYPE_IPCXN || eddy_closer_closing(&h->closer))
        return CURL_SOCKET_BAD;
    curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd == CURL_SOCKET_BAD)
        return CURL_SOCKET_BAD;
    if (!sock_new(h, fd, true)) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    h->stats.sockets_opened++;
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the handle goes first, while the descriptor
 * is still ours; once closed, the kernel may give its number to the next
 * socket at once. Also runs from curl_multi_cleanup, after
 * eddy_http_close closed every handle. */
static int on_close_socket(void *ud, curl_socket_t fd)
{
    struct eddy_http *h = ud;
    struct http_sock *s = sock_find(h, fd);
    if (s)
        sock_close(h, s);
    h->stats.sockets_closed++;
    return close(fd);
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

/* Method and URL without its query (which may be presigned), and curl's
 * reason: at debug, but a TLS failure (an untrusted certificate, a CA
 * bundle that does not load) always, since the callers' errors can only
 * say "invalid configuration" and only curl knows why. */
static void log_failure(struct http_xfer *x, CURLcode rc, eddy_err err)
{
    enum eddy_log_level level = err == EDDY_ECONFIG ? EDDY_LOG_WARN : EDDY_LOG_DEBUG;
    if (!eddy_log_enabled(level))
        return;
    const char *url = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
    int urllen = url ? (int)strcspn(url, "?") : 0;
    eddy_log(level, NULL, "http: request to %.*s failed: %s: %s%s%s%s", urllen, url ? url : "",
             eddy_err_name(err), curl_easy_strerror(rc), x->errbuf[0] ? ": " : "", x->errbuf,
             err == EDDY_ECONFIG ? " (TLS is verified: see AWS_CA_BUNDLE)" : "");
}

/* Whether any byte of the request went out. */
static bool request_sent(CURL *easy)
{
    long sent = 0;
    return curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK || sent > 0;
}

static void finish(struct eddy_http *h, struct http_xfer *x, CURLcode rc)
{
    eddy_err err = map_curl_error(rc, x->over_cap);
    if (err == EDDY_ETIMEOUT && !request_sent(x->easy))
        err = EDDY_ENET; /* timed out connecting: nothing can have applied */
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
    while (!eddy_closer_closing(&h->closer) && (msg = curl_multi_info_read(h->multi, &left))) {
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
    struct eddy_list *q;
    while ((q = eddy_list_head(&h->canceled))) {
        struct http_xfer *x = xfer_of(q);
        eddy_list_remove(q);
        h->ncanceled--;
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
    eddy_list_insert_tail(&h->canceled, &x->link);
    h->ncanceled++;
    if (!eddy_closer_closing(&h->closer))
        uv_timer_start(&h->later, on_later, 0, 0);
}

static void http_cancel(void *self, uint64_t id)
{
    struct eddy_http *h = self;
    struct eddy_list *q;
    eddy_list_foreach(q, &h->active)
    {
        if (xfer_of(q)->id == id) {
            cancel_xfer(h, xfer_of(q));
            return;
        }
    }
}

void eddy_http_cancel_all(struct eddy_http *h)
{
    struct eddy_list *q;
    while ((q = eddy_list_head(&h->active)))
        cancel_xfer(h, xfer_of(q));
}

size_t eddy_http_inflight(const struct eddy_http *h)
{
    return h->nactive + h->ncanceled;
}

/* ---- starting a transfer ---- */

/* Whether the name (n bytes before the colon) is lit, in any case. */
#define NAME_IS(line, n, lit) ((n) == sizeof(lit) - 1 && strncasecmp((line), (lit), (n)) == 0)

/* One pass over a header line: it must be "Name: value" with no CR or LF
 * (no injection). Its name's length and its value, blanks skipped. */
static bool header_split(const char *line, size_t *name_len, const char **value, size_t *vlen)
{
    size_t n = strcspn(line, ":\r\n");
    if (n == 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1;
    v += strspn(v, " \t");
    size_t vl = strcspn(v, "\r\n");
    if (v[vl] != '\0')
        return false;
    *name_len = n;
    *value = v;
    *vlen = vl;
    return true;
}

static void header_add(struct eddy_buf *text, const char *p, size_t n)
{
    eddy_buf_put(text, p, n);
    eddy_buf_putc(text, '\0');
}

/* Point the xfer's list nodes at the n lines in htext (after it stopped
 * growing, so the pointers stay valid). */
static void header_link(struct http_xfer *x, size_t n)
{
    if (n > x->hnodes_cap) {
        x->hnodes_cap = n < 16 ? 16 : n;
        x->hnodes = eddy_realloc(x->hnodes, x->hnodes_cap * sizeof *x->hnodes);
    }
    char *p = x->htext.ptr;
    for (size_t i = 0; i < n; i++) {
        x->hnodes[i].data = p;
        x->hnodes[i].next = i + 1 < n ? &x->hnodes[i + 1] : NULL;
        p += strlen(p) + 1;
    }
}

/* Copy the caller's headers into the xfer's list. curl drops "Name:" with
 * nothing after it, so an empty value is sent in curl's "Name;" form.
 * Expect, Accept and (with a body) Content-Type defaults of curl are
 * suppressed. The list is built in the xfer's own buffers (no allocation
 * once they have grown); the buffers have no cap but the caller's lines. */
static eddy_err build_headers(struct http_xfer *x, const struct eddy_http_request *req)
{
    struct eddy_buf *text = &x->htext;
    bool expect = false, accept = false, ctype = false;
    eddy_buf_reset(text);
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *line = req->headers[i], *value;
        size_t n, vlen;
        if (!line || !header_split(line, &n, &value, &vlen))
            return EDDY_EINVAL;
        expect |= NAME_IS(line, n, "Expect");
        accept |= NAME_IS(line, n, "Accept");
        ctype |= NAME_IS(line, n, "Content-Type");
        if (vlen == 0) {
            eddy_buf_put(text, line, n);
            header_add(text, ";", 1);
        } else {
            header_add(text, line, (size_t)(value - line) + vlen);
        }
    }
    size_t n = req->nheaders;
    if (!expect)
        header_add(text, "Expect:", 7), n++;
    if (!accept)
        header_add(text, "Accept:", 7), n++;
    if (!ctype)
        header_add(text, "Content-Type:", 13), n++;
    if (eddy_buf_refused(text))
        return EDDY_ELIMIT; /* past SIZE_MAX / 2: not reached by lines in memory */
    header_link(x, n);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, n ? x->hnodes : NULL);
    return EDDY_OK;
}

/* Method and body; every option one request may set is set (or cleared)
 * for each, since the handle keeps them. The body is borrowed (http.h):
 * curl reads the caller's bytes, which stay put until the callback. */
static void set_method(struct http_xfer *x, const struct eddy_http_request *req)
{
    CURL *e = x->easy;
    const char *m = req->method;
    bool bodyless = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "DELETE") == 0;
    const char *custom = NULL;
    if (bodyless && req->body_len == 0) {
        bool head = strcmp(m, "HEAD") == 0;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* after POSTFIELDS, which means POST */
        curl_easy_setopt(e, CURLOPT_NOBODY, head ? 1L : 0L);
        if (!head && strcmp(m, "GET") != 0)
            custom = m;
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body_len ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POST, 1L); /* also clears a HEAD's NOBODY */
        if (strcmp(m, "POST") != 0)
            custom = m;
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, custom);
}

/* The options every request of this client shares, set once per handle. */
static void easy_setup(struct eddy_http *h, struct http_xfer *x)
{
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)x);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_bundle)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_bundle);
    /* Trust the CA file alone (Debian's curl also looks in a directory of
     * the same certificates): only then does curl keep the parsed store
     * in the multi handle instead of reading the file for each connection. */
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(e, CURLOPT_SHARE, h->share);
    /* No proxy variable at all: say so, or curl reads the environment
     * (five or more getenv calls) for every request. */
    if (!h->env_proxy) {
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    }
    /* curl's upload buffer, 64 KiB by default, is made for a handle's
     * first request over TLS (every TLS send is copied into it, at most
     * 16 KiB at a time) or with a body of 64 KiB or more, and stays with
     * the handle: with 1,000 messages in flight over TLS, some 2 MB of the
     * heap's peak for 16 KiB used each. 16 KiB is curl's minimum. */
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_BUFFER);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)h);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)h);
}

static void set_options(struct eddy_http *h, struct http_xfer *x,
                        const struct eddy_http_request *req)
{
    CURL *e = x->easy;
    long total = req->timeout_ms ? (long)req->timeout_ms : (long)h->cfg.timeout_ms;
    long connect = (long)h->cfg.connect_timeout_ms;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect < total ? connect : total);
    set_method(x, req);
}

static eddy_err http_send(void *self, const struct eddy_http_request *req, eddy_http_cb cb,
                          void *ud, uint64_t *id)
{
    struct eddy_http *h = self;
    if (!req || !req->method || !req->method[0] || !req->url || !cb ||
        (req->body_len && !req->body) || strpbrk(req->method, " \r\n"))
        return EDDY_EINVAL;
    if (eddy_closer_closing(&h->closer))
        return EDDY_ECANCELED;
    struct http_xfer *x = xfer_get(h);
    if (!x)
        return EDDY_ENET;
    eddy_err err = build_headers(x, req);
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
    h->stats.requests++;
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

/* Whether any variable curl would take a proxy from is set. Read once:
 * the environment of a running worker does not change. */
static bool env_proxy(void)
{
    static const char *const names[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                        "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < EDDY_ARRAY_SIZE(names); i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return true;
    }
    return false;
}

/* Set up what makes new connections cheap (see the top of the file): the
 * share holding the TLS sessions, whether the CAs come from one file, and
 * the pool size. eddy runs curl on one thread, so the share needs no locks. */
static eddy_err tls_setup(struct eddy_http *h, struct eddy_error *err)
{
    h->share = curl_share_init();
    if (!h->share ||
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        return eddy_error_set(err, EDDY_ECONFIG, "http: curl cannot share TLS sessions");
    h->ca_file = h->ca_bundle != NULL;
    if (!h->ca_file) {
        /* The CA file curl was built to use, if any (else only a directory). */
        CURL *probe = curl_easy_init();
        char *builtin = NULL;
        if (probe && curl_easy_getinfo(probe, CURLINFO_CAINFO, &builtin) == CURLE_OK)
            h->ca_file = builtin != NULL && builtin[0] != '\0';
        curl_easy_cleanup(probe);
    }
    long pool = h->cfg.max_host_connections * HTTP_POOL_HOSTS;
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, pool);
    return EDDY_OK;
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

/* Every handle is closed: deliver what is still owed, then release curl
 * (before the caller's close callback runs). */
static void http_last(struct eddy_closer *c)
{
    struct eddy_http *h = eddy_container_of(c, struct eddy_http, closer);
    deliver_canceled(h);
    /* curl may report sockets while it shuts its pool down: nobody listens. */
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, NULL);
    struct eddy_list *q;
    while ((q = eddy_list_head(&h->free_list))) {
        eddy_list_remove(q);
        xfer_destroy(xfer_of(q));
    }
    curl_multi_cleanup(h->multi);
    if (h->share)
        curl_share_cleanup(h->share); /* after every easy handle is gone */
}

/* After the caller's close callback. */
static void http_free(struct eddy_closer *c)
{
    struct eddy_http *h = eddy_container_of(c, struct eddy_http, closer);
    free(h->byfd);
    free(h->ca_bundle);
    free(h);
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
    eddy_list_init(&h->active);
    eddy_list_init(&h->canceled);
    eddy_list_init(&h->free_list);
    eddy_list_init(&h->socks);
    eddy_closer_init(&h->closer, http_last, http_free);
    if (cfg)
        h->cfg = *cfg;
    apply_defaults(&h->cfg);
    h->env_proxy = env_proxy();
    h->ca_bundle = h->cfg.ca_bundle && h->cfg.ca_bundle[0] ? eddy_strdup(h->cfg.ca_bundle) : NULL;
    h->cfg.ca_bundle = h->ca_bundle;
    if (tls_setup(h, err) != EDDY_OK) {
        if (h->share)
            curl_share_cleanup(h->share);
        curl_multi_cleanup(multi);
        free(h->ca_bundle);
        free(h);
        return NULL;
    }
    uv_timer_init(loop, &h->timer);
    uv_idle_init(loop, &h->now);
    uv_prepare_init(loop, &h->soon);
    uv_timer_init(loop, &h->later);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, (void *)h);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, (void *)h);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, h->cfg.max_host_connections);
    return h;
}

void eddy_http_stats(const struct eddy_http *h, struct eddy_http_stats *out)
{
    *out = h->stats;
}

void eddy_http_close(struct eddy_http *h, eddy_close_cb cb, void *ud)
{
    if (!h || !eddy_closer_begin(&h->closer, cb, ud))
        return;
    eddy_http_cancel_all(h); /* delivered by http_last */
    eddy_closer_close(&h->closer, (uv_handle_t *)&h->timer);
    eddy_closer_close(&h->closer, (uv_handle_t *)&h->now);
    eddy_closer_close(&h->closer, (uv_handle_t *)&h->soon);
    eddy_closer_close(&h->closer, (uv_handle_t *)&h->later);
    /* Every socket's handle, idle pooled ones too: curl closes those
     * sockets later, in curl_multi_cleanup (on_close_socket finds no
     * handle then). Each frees its http_sock in on_poll_closed. */
    struct eddy_list *q;
    while ((q = eddy_list_head(&h->socks))) {
        struct http_sock *s = eddy_list_data(q, struct http_sock, link);
        s->counted = true;
        eddy_closer_hold(&h->closer);
        sock_close(h, s);
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
