/*
 * endpoint.h - which region and which URL each AWS service is called at.
 *
 * The region comes from AWS_REGION, else AWS_DEFAULT_REGION. A service's
 * endpoint comes from AWS_ENDPOINT_URL_<SERVICE> (SQS, DYNAMODB, EVENTBRIDGE,
 * EVENTBRIDGEV2: the service id in capitals, as the SDKs name them), else
 * AWS_ENDPOINT_URL, else the public one, https://<prefix>.<region>.<domain>,
 * the domain that of the region's partition (amazonaws.com, amazonaws.com.cn
 * for China, ...) (the Custom Event Bus is reached at its account's host: see
 * eddy_endpoint_resolve_account). A URL given in the environment is
 * checked once at start (scheme http or https, a host, an optional port, an
 * optional path prefix, no query or fragment) and a bad one is an
 * EDDY_ECONFIG error naming the variable.
 *
 * This module reads the environment and parses strings; it does no I/O.
 */
#ifndef EDDY_AWS_ENDPOINT_H
#define EDDY_AWS_ENDPOINT_H

#include <stdbool.h>

#include "base/err.h"

enum eddy_aws_service {
    EDDY_AWS_SQS,
    EDDY_AWS_DYNAMODB,
    EDDY_AWS_EVENTBRIDGE,
    EDDY_AWS_EVENTBRIDGE2, /* the Custom Event Bus API (eventbridgev2, 2025-05-15) */
    EDDY_AWS_SERVICE_COUNT
};

/* How a service's calls are framed (awscall.h). */
enum eddy_aws_protocol {
    EDDY_AWS_JSON,      /* awsJson1_0/1_1: POST /, X-Amz-Target, JSON bodies */
    EDDY_AWS_RPCV2_CBOR /* smithy-rpc-v2-cbor: POST /service/<S>/operation/<Op>, CBOR */
};

/* Static facts about a service. */
struct eddy_aws_service_info {
    const char *name;          /* "SQS", "DynamoDB", "EventBridge" (for messages) */
    const char *env_suffix;    /* "SQS": AWS_ENDPOINT_URL_SQS */
    const char *prefix;        /* host prefix: "sqs", "dynamodb", "events", "eventsv2" */
    const char *signing_name;  /* SigV4 service: "sqs", "dynamodb", "events" */
    const char *target_prefix; /* X-Amz-Target: "AmazonSQS", "DynamoDB_20120810", "AWSEvents";
                                  RPC v2: the service in the path, "AWSEventsV2" */
    const char *content_type;  /* "application/x-amz-json-1.0", "-1.1", "application/cbor" */
    enum eddy_aws_protocol protocol;
};
const struct eddy_aws_service_info *eddy_aws_service_info(enum eddy_aws_service svc);

#define EDDY_REGION_MAX 64

/* The region from the environment into out; EDDY_ECONFIG naming both
 * variables when neither is set, or when the value is not a region name. */
EDDY_MUST_USE eddy_err eddy_region_from_env(char out[EDDY_REGION_MAX], struct eddy_error *err);

/* A resolved endpoint. All strings owned (eddy_endpoint_cleanup). */
struct eddy_endpoint {
    char *url;  /* what requests are sent to: scheme://host[:port]/prefix/ */
    char *host; /* Host header value; the port only when not the scheme's default */
    char *path; /* the path signed and sent: "/" or "/prefix/" */
    bool tls;
};

/*
 * Parse url (from variable varname, used in error messages) into out.
 * A path prefix keeps a trailing '/', so requests go to "<prefix>/".
 */
EDDY_MUST_USE eddy_err eddy_endpoint_parse(const char *url, const char *varname,
                                           struct eddy_endpoint *out, struct eddy_error *err);

/* The endpoint of svc in region, following the environment as above. */
EDDY_MUST_USE eddy_err eddy_endpoint_resolve(enum eddy_aws_service svc, const char *region,
                                             struct eddy_endpoint *out, struct eddy_error *err);

/* As eddy_endpoint_resolve, but the public endpoint is the account's own
 * host, https://<account>.<prefix>.<region>.<domain>, as the service's
 * endpoint rules route a call naming a resource of that account (the
 * Custom Event Bus: the account of the bus ARN). account: 12 digits. */
EDDY_MUST_USE eddy_err eddy_endpoint_resolve_account(enum eddy_aws_service svc, const char *region,
                                                     const char *account, struct eddy_endpoint *out,
                                                     struct eddy_error *err);

void eddy_endpoint_cleanup(struct eddy_endpoint *e);

#endif
