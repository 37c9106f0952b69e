/*
 * creds_env.c - the credential provider of the environment (see credentials.h).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/creds_provider.h"
#include "base/alloc.h"

static enum outcome from_env(struct eddy_creds *c, struct eddy_credentials *out)
{
    const char *akid = creds_env("AWS_ACCESS_KEY_ID");
    const char *secret = creds_env("AWS_SECRET_ACCESS_KEY");
    if (!akid && !secret) {
        creds_note(c, "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set");
        return NOTHING;
    }
    if (!akid || !secret) {
        creds_note(c, "environment: %s is set but %s is not",
                   akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                   akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return FATAL;
    }
    const char *token = creds_env("AWS_SESSION_TOKEN");
    *out = (struct eddy_credentials){
        .access_key_id = eddy_strdup(akid),
        .secret_access_key = eddy_strdup(secret),
        .session_token = token ? eddy_strdup(token) : NULL,
        .provider = "environment",
    };
    return FOUND;
}

const struct creds_provider creds_env_provider = {"environment", from_env, NULL};
