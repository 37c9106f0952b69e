/*
 * fuzz_cbor - the RPC v2 CBOR reply decoder (aws/cbor.h).
 *
 * Any bytes give a cJSON tree or EDDY_EPARSE with a reason; a tree prints,
 * and its nesting is within EDDY_CBOR_MAX_DEPTH.
 */
#include <string.h>

#include "aws/cbor.h"
#include "fuzz.h"

static int depth_of(const cJSON *j)
{
    int d = 0;
    for (const cJSON *c = j->child; c; c = c->next) {
        int k = depth_of(c);
        d = k > d ? k : d;
    }
    return d + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *root = NULL;
    struct eddy_error err = {0};
    eddy_err rc = eddy_cbor_parse(data, size, &root, &err);
    if (rc != EDDY_OK) {
        FUZZ_CHECK(root == NULL && rc == EDDY_EPARSE && err.detail[0] != '\0',
                   "refusal %s without a reason", eddy_err_name(rc));
        return 0;
    }
    FUZZ_CHECK(root != NULL, "EDDY_OK without a tree");
    FUZZ_CHECK(depth_of(root) <= EDDY_CBOR_MAX_DEPTH + 1, "nested %d deep", depth_of(root));
    char *text = cJSON_PrintUnformatted(root);
    FUZZ_CHECK(text != NULL, "a decoded tree does not print");
    free(text);
    cJSON_Delete(root);
    return 0;
}
