/*
 * endpoint.c - region and endpoint resolution from the environment (see
 * endpoint.h). Strings are checked here, once at start, so a bad variable
 * fails with its name instead of as a confusing error on the first call.
 */
#include "aws/endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"

static const struct eddy_aws_service_info services[EDDY_AWS_SERVICE_COUNT] = {
    [EDDY_AWS_SQS] = {"SQS", "SQS", "sqs", "sqs", "AmazonSQS", "application/x-amz-json-1.0"},
    [EDDY_AWS_DYNAMODB] = {"DynamoDB", "DYNAMODB", "dynamodb", "dynamodb", "DynamoDB_20120810",
                           "application/x-amz-json-1.0"},
    [EDDY_AWS_EVENTBRIDGE] = {"EventBridge", "EVENTBRIDGE", "events", "events", "AWSEvents",
                              "application/x-amz-json-1.1"},
    [EDDY_AWS_EVENTBRIDGE2] = {"EventBridgeV2", "EVENTBRIDGEV2", "eventsv2", "events",
                               "AWSEventsV2", "application/cbor", EDDY_AWS_RPCV2_CBOR},
};

const struct eddy_aws_service_info *eddy_aws_service_info(enum eddy_aws_service svc)
{
    if ((unsigned)svc >= EDDY_AWS_SERVICE_COUNT)
        return NULL;
    return &services[svc];
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static bool region_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n >= EDDY_REGION_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = r[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

eddy_err eddy_region_from_env(char out[EDDY_REGION_MAX], struct eddy_error *err)
{
    const char *var = "AWS_REGION";
    const char *r = env_nonempty(var);
    if (r == NULL) {
        var = "AWS_DEFAULT_REGION";
        r = env_nonempty(var);
    }
    if (r == NULL)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION");
    if (!region_ok(r))
        return eddy_error_set(err, EDDY_ECONFIG,
                              "%s=\"%.64s\" is not a region name (letters, digits and '-')", var,
                              r);
    snprintf(out, EDDY_REGION_MAX, "%s", r);
    return EDDY_OK;
}

void eddy_endpoint_cleanup(struct eddy_endpoint *e)
{
    free(e->url);
    free(e->host);
    free(e->path);
    e->url = e->host = e->path = NULL;
}

/* Parse ":port" digits in [p, end); 0 when invalid. */
static unsigned parse_port(const char *p, const char *end)
{
    unsigned v = 0;
    if (p == end || end - p > 5)
        return 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return v <= 65535 ? v : 0;
}

static bool host_ok(const char *p, const char *end)
{
    if (p == end)
        return false;
    if (*p == '[') /* IPv6 literal: checked by the bracket search */
        return end[-1] == ']' && end - p > 2;
    for (; p < end; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

/* Split authority [a, end) into host and port; the port is 0 when absent. */
static bool split_authority(const char *a, const char *end, const char **host_end, unsigned *port)
{
    const char *colon = NULL;
    if (*a == '[') {
        const char *rb = memchr(a, ']', (size_t)(end - a));
        if (rb == NULL)
            return false;
        if (rb + 1 < end && rb[1] != ':')
            return false;
        colon = rb + 1 < end ? rb + 1 : NULL;
    } else {
        colon = memchr(a, ':', (size_t)(end - a));
    }
    *host_end = colon ? colon : end;
    *port = 0;
    if (colon && (*port = parse_port(colon + 1, end)) == 0)
        return false;
    return host_ok(a, *host_end);
}

static char *build_path(const char *p, const char *end)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    if (p == end || *p != '/')
        eddy_buf_putc(&b, '/');
    eddy_buf_put(&b, p, (size_t)(end - p));
    if (b.ptr[b.len - 1] != '/')
        eddy_buf_putc(&b, '/');
    return eddy_buf_take(&b, NULL);
}

eddy_err eddy_endpoint_parse(const char *url, const char *varname, struct eddy_endpoint *out,
                             struct eddy_error *err)
{
    memset(out, 0, sizeof *out);
    const char *v = varname ? varname : "endpoint";
    bool tls;
    const char *a;
    if (strncmp(url, "https://", 8) == 0) {
        tls = true;
        a = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        tls = false;
        a = url + 7;
    } else {
        return eddy_error_set(err, EDDY_ECONFIG,
                              "%s=\"%.200s\": the URL must start with http:// "
                              "or https://",
                              v, url);
    }
    if (strpbrk(url, "?#") != NULL)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "%s=\"%.200s\": an endpoint URL takes no query or fragment", v, url);
    if (strpbrk(url, " \t\r\n@") != NULL)
        return eddy_error_set(err, EDDY_ECONFIG,
                              "%s=\"%.200s\": no spaces or user information allowed", v, url);
    const char *slash = strchr(a, '/');
    const char *aend = slash ? slash : a + strlen(a);
    const char *host_end;
    unsigned port;
    if (a == aend || !split_authority(a, aend, &host_end, &port))
        return eddy_error_set(err, EDDY_ECONFIG,
                              "%s=\"%.200s\": expected scheme://host[:port][/path] with a port "
                              "in 1..65535",
                              v, url);
    unsigned dflt = tls ? 443 : 80;
    out->tls = tls;
    if (port == 0 || port == dflt)
        out->host = eddy_strndup(a, (size_t)(host_end - a));
    else
        out->host = eddy_strndup(a, (size_t)(aend - a));
    out->path = build_path(aend, aend + strlen(aend));
    struct eddy_buf u;
    eddy_buf_init(&u, 0);
    eddy_buf_putf(&u, "%s://%s%s", tls ? "https" : "http", out->host, out->path);
    out->url = eddy_buf_take(&u, NULL);
    return EDDY_OK;
}

static bool account_ok(const char *a)
{
    size_t n = a ? strlen(a) : 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] < '0' || a[i] > '9')
            return false;
    return n == 12;
}

/* The DNS suffix of a region's partition (the SDKs' partitions.json):
 * China's regions are under amazonaws.com.cn, the isolated ones under
 * their own domains, the rest (GovCloud too) under amazonaws.com. */
static const char *dns_suffix(const char *region)
{
    static const struct {
        const char *prefix, *suffix;
    } parts[] = {
        {"cn-", "amazonaws.com.cn"}, {"us-isob-", "sc2s.sgov.gov"},  {"us-isof-", "csp.hci.ic.gov"},
        {"us-iso-", "c2s.ic.gov"},   {"eu-isoe-", "cloud.adc-e.uk"}, {"eusc-", "amazonaws.eu"},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strncmp(region, parts[i].prefix, strlen(parts[i].prefix)) == 0)
            return parts[i].suffix;
    return "amazonaws.com";
}

eddy_err eddy_endpoint_resolve(enum eddy_aws_service svc, const char *region,
                               struct eddy_endpoint *out, struct eddy_error *err)
{
    return eddy_endpoint_resolve_account(svc, region, NULL, out, err);
}

eddy_err eddy_endpoint_resolve_account(enum eddy_aws_service svc, const char *region,
                                       const char *account, struct eddy_endpoint *out,
                                       struct eddy_error *err)
{
    const struct eddy_aws_service_info *info = eddy_aws_service_info(svc);
    if (info == NULL || region == NULL || !region_ok(region) ||
        (account != NULL && !account_ok(account)))
        return eddy_error_set(err, EDDY_EINVAL,
                              "endpoint: unknown service, bad region or bad account id");
    char var[64];
    snprintf(var, sizeof var, "AWS_ENDPOINT_URL_%s", info->env_suffix);
    const char *url = env_nonempty(var);
    if (url == NULL) {
        snprintf(var, sizeof var, "AWS_ENDPOINT_URL");
        url = env_nonempty(var);
    }
    if (url != NULL)
        return eddy_endpoint_parse(url, var, out, err);
    char def[192];
    snprintf(def, sizeof def, "https://%s%s%s.%s.%s", account ? account : "", account ? "." : "",
             info->prefix, region, dns_suffix(region));
    return eddy_endpoint_parse(def, "default endpoint", out, err);
}
