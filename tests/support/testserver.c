/*
 * testserver.c - the loopback HTTP/1.1 server for tests (see testserver.h).
 *
 * One uv_tcp_t listener; each connection has a uv_tcp_t, a uv_timer_t for
 * delayed replies and an input buffer. A connection parses one request at a
 * time: while its reply is pending (delayed, being written, or held back for
 * ever) further input is only buffered. Memory of a connection is freed in
 * the close callback of its last handle; the server itself once the
 * listener and every connection are closed.
 *
 * With TLS (eddy_testserver_start_tls) each connection runs OpenSSL over two
 * memory BIOs: bytes read from the socket go into one, and whatever OpenSSL
 * writes (handshake, session tickets, records of the reply) is taken from
 * the other and written to the socket. The request parser and the replies
 * are the same; the parser sees the decrypted bytes. All connections share
 * one SSL_CTX, so a client can resume a session on a new connection.
 */
#include "testserver.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"

#define TS_READ_CHUNK 65536
#define TS_MAX_INPUT ((size_t)64 << 20)

struct ts_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct eddy_testserver *s;
    struct ts_conn *prev, *next;
    struct eddy_buf in;
    unsigned number;
    int closes_pending;
    bool closing;
    bool busy;       /* a request is being answered */
    size_t consumed; /* input bytes of that request */
    char *out;       /* the reply, once built */
    size_t out_len;
    enum eddy_testserver_action action;
    bool close_after;
    SSL *ssl; /* with TLS: reads from rbio, writes to wbio */
    BIO *rbio, *wbio;
    char chunk[TS_READ_CHUNK];
};

struct ts_write {
    uv_write_t req;
    struct ts_conn *c;
    char *data;
    bool reply; /* the end of a reply: carry on with the connection after it */
};

struct eddy_testserver {
    uv_loop_t *loop;
    uv_tcp_t listener;
    eddy_testserver_handler handler;
    void *ud;
    int port;
    char url[64];
    unsigned nconn, nreq, nopen;
    unsigned handshakes, resumed;
    SSL_CTX *tls;      /* NULL: plain HTTP */
    char ca_file[512]; /* the certificate, as PEM, for the client to trust */
    size_t live;       /* connection structs not yet freed */
    struct ts_conn *conns;
    bool closing, listener_closed;
    void (*close_cb)(void *ud);
    void *close_ud;
};

static void try_parse(struct ts_conn *c);

static void maybe_finish(struct eddy_testserver *s)
{
    if (!s->closing || !s->listener_closed || s->live)
        return;
    void (*cb)(void *) = s->close_cb;
    void *ud = s->close_ud;
    if (s->tls) {
        SSL_CTX_free(s->tls);
        unlink(s->ca_file);
    }
    free(s);
    if (cb)
        cb(ud);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct ts_conn *c = h->data;
    if (--c->closes_pending)
        return;
    struct eddy_testserver *s = c->s;
    eddy_buf_cleanup(&c->in);
    free(c->out);
    SSL_free(c->ssl); /* and its BIOs */
    free(c);
    s->live--;
    maybe_finish(s);
}

static void conn_close(struct ts_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct eddy_testserver *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nopen--;
    c->closes_pending = 2;
    c->tcp.data = c;
    c->timer.data = c;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

const char *eddy_testserver_header(const struct eddy_testserver_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->names[i], name) == 0)
            return req->values[i];
    return NULL;
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        p[--n] = '\0';
    return p;
}

/* Split the NUL-terminated header block in place; false when malformed. */
static bool parse_head(char *head, struct eddy_testserver_request *req)
{
    char *line = head, *eol = strstr(line, "\r\n");
    if (!eol)
        return false;
    *eol = '\0';
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return false;
    *sp1 = *sp2 = '\0';
    req->method = line;
    req->target = sp1 + 1;
    for (line = eol + 2; *line; line = eol + 2) {
        eol = strstr(line, "\r\n");
        if (!eol)
            return false;
        *eol = '\0';
        char *colon = strchr(line, ':');
        if (!colon || req->nheaders == EDDY_TESTSERVER_MAX_HEADERS)
            return false;
        *colon = '\0';
        req->names[req->nheaders] = line;
        req->values[req->nheaders++] = trim(colon + 1);
    }
    return true;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 500:
        return "Internal Server Error";
    default:
        return "Status";
    }
}

static void build_reply(struct ts_conn *c, const struct eddy_testserver_reply *r)
{
    size_t blen = r->body ? (r->body_len ? r->body_len : strlen(r->body)) : r->fill_len;
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    eddy_buf_putf(&b, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s\r\n", r->status,
                  reason(r->status), blen, r->headers ? r->headers : "",
                  r->close_after ? "Connection: close\r\n" : "");
    if (eddy_buf_reserve(&b, blen) != EDDY_OK)
        abort(); /* a canned reply over 64 MiB: the test is wrong */
    if (r->body)
        memcpy(b.ptr + b.len, r->body, blen);
    else
        memset(b.ptr + b.len, 'x', blen);
    b.len += blen;
    c->out = eddy_buf_take(&b, &c->out_len);
}

static void on_written(uv_write_t *req, int status)
{
    struct ts_write *w = eddy_container_of(req, struct ts_write, req);
    struct ts_conn *c = w->c;
    bool reply = w->reply;
    free(w->data);
    free(w);
    if (c->closing)
        return;
    if (status < 0 || (reply && c->close_after)) {
        conn_close(c);
        return;
    }
    if (!reply)
        return;
    size_t rest = c->in.len - c->consumed;
    memmove(c->in.ptr, c->in.ptr + c->consumed, rest);
    eddy_buf_truncate(&c->in, rest);
    c->busy = false;
    try_parse(c);
}

/* Write data (taken over) to the socket; false when the connection closed. */
static bool conn_write(struct ts_conn *c, char *data, size_t len, bool reply)
{
    struct ts_write *w = eddy_calloc(1, sizeof *w);
    w->c = c;
    w->data = data;
    w->reply = reply;
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
        free(w->data);
        free(w);
        conn_close(c);
        return false;
    }
    return true;
}

/* With TLS: write out what OpenSSL has put in the write BIO. */
static bool tls_flush(struct ts_conn *c, bool reply)
{
    size_t pending = BIO_ctrl_pending(c->wbio);
    if (!pending)
        return true;
    char *data = eddy_malloc(pending);
    int n = BIO_read(c->wbio, data, (int)pending);
    if (n <= 0) {
        free(data);
        conn_close(c);
        return false;
    }
    return conn_write(c, data, (size_t)n, reply);
}

static void act(struct ts_conn *c)
{
    if (c->action == EDDY_TESTSERVER_CLOSE) {
        conn_close(c);
        return;
    }
    char *out = c->out;
    c->out = NULL;
    if (!c->ssl) {
        conn_write(c, out, c->out_len, true);
        return;
    }
    int n = SSL_write(c->ssl, out, (int)c->out_len);
    free(out);
    if (n <= 0) {
        conn_close(c);
        return;
    }
    tls_flush(c, true);
}

static void on_delay(uv_timer_t *t)
{
    act(eddy_container_of(t, struct ts_conn, timer));
}

/* Ask the handler, then answer now, later, or never. */
static void dispatch(struct ts_conn *c, struct eddy_testserver_request *req, bool client_close)
{
    struct eddy_testserver *s = c->s;
    struct eddy_testserver_reply r = {.status = 200};
    req->connection = c->number;
    req->number = ++s->nreq;
    if (s->handler)
        s->handler(req, &r, s->ud);
    c->busy = true;
    c->action = r.action;
    c->close_after = r.close_after || client_close;
    r.close_after = c->close_after;
    if (r.action == EDDY_TESTSERVER_HANG)
        return;
    if (r.action == EDDY_TESTSERVER_REPLY)
        build_reply(c, &r);
    if (r.delay_ms)
        uv_timer_start(&c->timer, on_delay, r.delay_ms, 0);
    else
        act(c);
}

static void try_parse(struct ts_conn *c)
{
    if (c->busy || c->closing || !c->in.len)
        return;
    const char *end = memmem(c->in.ptr, c->in.len, "\r\n\r\n", 4);
    if (!end)
        return;
    size_t head_len = (size_t)(end - c->in.ptr) + 4;
    char *head = eddy_strndup(c->in.ptr, head_len - 2); /* keep the last CRLF */
    struct eddy_testserver_request req = {0};
    if (!parse_head(head, &req) || eddy_testserver_header(&req, "Transfer-Encoding")) {
        free(head);
        conn_close(c);
        return;
    }
    const char *cl = eddy_testserver_header(&req, "Content-Length");
    size_t body_len = cl ? strtoull(cl, NULL, 10) : 0;
    if (c->in.len - head_len < body_len) {
        free(head); /* wait for the rest of the body */
        return;
    }
    char *body = eddy_strndup(c->in.ptr + head_len, body_len);
    req.body = body;
    req.body_len = body_len;
    const char *conn_hdr = eddy_testserver_header(&req, "Connection");
    bool client_close = conn_hdr && strcasecmp(conn_hdr, "close") == 0;
    c->consumed = head_len + body_len;
    dispatch(c, &req, client_close);
    free(head);
    free(body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct ts_conn *c = eddy_container_of((uv_tcp_t *)h, struct ts_conn, tcp);
    *buf = uv_buf_init(c->chunk, sizeof c->chunk);
}

/* With TLS: the handshake (counted once done), then the decrypted bytes
 * into the input buffer. False when the connection closed. */
static bool tls_input(struct ts_conn *c)
{
    struct eddy_testserver *s = c->s;
    if (!SSL_is_init_finished(c->ssl)) {
        int rc = SSL_do_handshake(c->ssl);
        if (rc == 1) {
            s->handshakes++;
            s->resumed += SSL_session_reused(c->ssl) == 1;
        } else if (SSL_get_error(c->ssl, rc) != SSL_ERROR_WANT_READ) {
            ERR_clear_error();
            conn_close(c);
            return false;
        }
    }
    if (SSL_is_init_finished(c->ssl)) {
        int n;
        while ((n = SSL_read(c->ssl, c->chunk, (int)sizeof c->chunk)) > 0) {
            if (eddy_buf_append(&c->in, c->chunk, (size_t)n) != EDDY_OK) {
                conn_close(c);
                return false;
            }
        }
        if (SSL_get_error(c->ssl, n) != SSL_ERROR_WANT_READ) {
            ERR_clear_error();
            conn_close(c); /* close_notify or a broken record */
            return false;
        }
    }
    return tls_flush(c, false); /* handshake messages, session tickets */
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct ts_conn *c = eddy_container_of((uv_tcp_t *)stream, struct ts_conn, tcp);
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->ssl) {
        if (BIO_write(c->rbio, c->chunk, (int)nread) != (int)nread || !tls_input(c))
            return;
    } else if (eddy_buf_append(&c->in, c->chunk, (size_t)nread) != EDDY_OK) {
        conn_close(c);
        return;
    }
    try_parse(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct eddy_testserver *s =
        eddy_container_of((uv_tcp_t *)listener, struct eddy_testserver, listener);
    if (status < 0 || s->closing)
        return;
    struct ts_conn *c = eddy_calloc(1, sizeof *c);
    c->s = s;
    eddy_buf_init(&c->in, TS_MAX_INPUT);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    s->live++;
    s->nopen++;
    c->number = ++s->nconn;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->tls) {
        c->ssl = SSL_new(s->tls);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (!c->ssl || !c->rbio || !c->wbio) {
            fprintf(stderr, "testserver: SSL_new failed\n");
            abort();
        }
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

struct eddy_testserver *eddy_testserver_start(uv_loop_t *loop, eddy_testserver_handler handler,
                                              void *ud)
{
    struct eddy_testserver *s = eddy_calloc(1, sizeof *s);
    s->loop = loop;
    s->handler = handler;
    s->ud = ud;
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_init(loop, &s->listener) != 0 ||
        uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&s->listener, 128, on_connection) != 0 ||
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) != 0) {
        fprintf(stderr, "testserver: cannot listen on 127.0.0.1\n");
        abort();
    }
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return s;
}

/* A self-signed P-256 certificate for 127.0.0.1 (also its own CA), written
 * as PEM to a fresh file in TMPDIR, and the SSL_CTX serving it. */
static void tls_setup(struct eddy_testserver *s)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!key || !x || !ctx)
        goto fail;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"eddy test server",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    static const char *const exts[][2] = {{"basicConstraints", "critical,CA:TRUE"},
                                          {"keyUsage", "critical,digitalSignature,keyCertSign"},
                                          {"subjectKeyIdentifier", "hash"},
                                          {"subjectAltName", "IP:127.0.0.1"}};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        X509_EXTENSION *ext = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        if (!ext || !X509_add_ext(x, ext, -1)) {
            X509_EXTENSION_free(ext);
            goto fail;
        }
        X509_EXTENSION_free(ext);
    }
    if (!X509_sign(x, key, EVP_sha256()))
        goto fail;
    const char *tmp = getenv("TMPDIR");
    snprintf(s->ca_file, sizeof s->ca_file, "%s/eddy-testserver-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemp(s->ca_file);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !PEM_write_X509(f, x) || fclose(f) != 0)
        goto fail;
    if (SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
        goto fail;
    X509_free(x);
    EVP_PKEY_free(key);
    s->tls = ctx;
    return;
fail:
    fprintf(stderr, "testserver: cannot make a TLS certificate\n");
    abort();
}

struct eddy_testserver *eddy_testserver_start_tls(uv_loop_t *loop, eddy_testserver_handler handler,
                                                  void *ud)
{
    struct eddy_testserver *s = eddy_testserver_start(loop, handler, ud);
    tls_setup(s);
    snprintf(s->url, sizeof s->url, "https://127.0.0.1:%d", s->port);
    return s;
}

const char *eddy_testserver_ca_file(const struct eddy_testserver *s)
{
    return s->tls ? s->ca_file : NULL;
}

unsigned eddy_testserver_handshakes(const struct eddy_testserver *s)
{
    return s->handshakes;
}

unsigned eddy_testserver_resumed(const struct eddy_testserver *s)
{
    return s->resumed;
}

void eddy_testserver_set_handler(struct eddy_testserver *s, eddy_testserver_handler handler,
                                 void *ud)
{
    s->handler = handler;
    s->ud = ud;
}

int eddy_testserver_port(const struct eddy_testserver *s)
{
    return s->port;
}

const char *eddy_testserver_url(const struct eddy_testserver *s)
{
    return s->url;
}

unsigned eddy_testserver_connections(const struct eddy_testserver *s)
{
    return s->nconn;
}

unsigned eddy_testserver_requests(const struct eddy_testserver *s)
{
    return s->nreq;
}

unsigned eddy_testserver_open(const struct eddy_testserver *s)
{
    return s->nopen;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct eddy_testserver *s = eddy_container_of((uv_tcp_t *)h, struct eddy_testserver, listener);
    s->listener_closed = true;
    maybe_finish(s);
}

void eddy_testserver_close(struct eddy_testserver *s, void (*cb)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_ud = ud;
    while (s->conns)
        conn_close(s->conns);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
