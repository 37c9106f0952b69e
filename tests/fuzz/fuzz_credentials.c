/*
 * fuzz_credentials - the documents of the ECS container endpoint and of
 * IMDS (aws/credentials.h), and their RFC 3339 times.
 *
 * The first byte picks Code required or not; the rest is the body. A parse
 * gives credentials with a key id and a secret, or EDDY_EPARSE /
 * EDDY_ECREDENTIALS with a reason, leaving out untouched.
 */
#include <string.h>

#include "aws/credentials.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (len)
        memcpy(body, data + 1, len);
    struct eddy_credentials c;
    memset(&c, 0, sizeof c);
    struct eddy_error err = {0};
    eddy_err rc =
        eddy_creds_parse_document((struct eddy_str){body, len}, "fuzz", data[0] & 1, &c, &err);
    if (rc == EDDY_OK) {
        FUZZ_CHECK(c.access_key_id && c.access_key_id[0] && c.secret_access_key &&
                       c.secret_access_key[0],
                   "credentials without a key id or secret");
        eddy_credentials_cleanup(&c);
    } else {
        FUZZ_CHECK((rc == EDDY_EPARSE || rc == EDDY_ECREDENTIALS) && err.detail[0] != '\0',
                   "refusal %s without a reason", eddy_err_name(rc));
        FUZZ_CHECK(c.access_key_id == NULL && c.secret_access_key == NULL, "out touched on error");
    }
    int64_t ms = 0;
    (void)eddy_creds_parse_time((struct eddy_str){body, len}, &ms);
    free(body);
    return 0;
}
