/*
 * fuzz_json - the strict JSON reader (base/json.h, eddy_json_parse).
 *
 * Any bytes give a tree or EDDY_EPARSE with a detail. A tree prints (Raw
 * numbers as their text), and what it prints parses again to a tree that
 * prints the same: the reader keeps what it accepts.
 */
#include <string.h>

#include "base/json.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *root = NULL;
    struct eddy_error err = {0};
    eddy_err rc = eddy_json_parse((const char *)data, size, &root, &err);
    if (rc != EDDY_OK) {
        FUZZ_CHECK(root == NULL && err.code == rc && err.detail[0] != '\0', "refusal without a "
                                                                            "reason");
        return 0;
    }
    FUZZ_CHECK(root != NULL, "EDDY_OK without a tree");
    char *text = cJSON_PrintUnformatted(root);
    FUZZ_CHECK(text != NULL, "an accepted tree does not print");
    cJSON *again = NULL;
    rc = eddy_json_parse(text, strlen(text), &again, &err);
    FUZZ_CHECK(rc == EDDY_OK, "printed text does not parse again: %s", err.detail);
    char *text2 = cJSON_PrintUnformatted(again);
    FUZZ_CHECK(text2 != NULL && strcmp(text, text2) == 0, "print, parse, print differs");
    free(text);
    free(text2);
    cJSON_Delete(again);
    cJSON_Delete(root);
    return 0;
}
