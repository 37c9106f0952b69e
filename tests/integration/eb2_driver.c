/*
 * eb2_driver.c - one PutEvents call on a Custom Event Bus with eddy's client,
 * for the integration tests of the local AWS's eventbridgev2 API.
 *
 *   eb2_driver BUS_ARN < entries.json
 *
 * stdin is a JSON array of {"source","detail_type","detail","group","dedup"}
 * (group and dedup optional). The endpoint, region, credentials and CA
 * bundle come from the environment, as for eddy. Prints one JSON object:
 * {"err": "EDDY_OK" or the error name, "code", "detail", "entries":
 * [{"ok","deduplicated","event_id","code"}]}; a call the client refused
 * before sending has only "err" and "detail". Exit 0 when the call ran or was
 * refused (whatever the answer), 2 on a usage or setup error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "svc/eventbridge2.h"

struct out {
    cJSON *json;
    bool done;
    uv_loop_t *loop;
};

static void on_put(eddy_err err, struct eddy_eb2_put_result *res,
                   const struct eddy_aws_reply *reply, void *ud)
{
    struct out *o = ud;
    o->done = true;
    cJSON_AddStringToObject(o->json, "err", eddy_err_name(err));
    cJSON_AddStringToObject(o->json, "code", reply->error_code ? reply->error_code : "");
    cJSON_AddStringToObject(o->json, "detail", reply->error ? reply->error->detail : "");
    cJSON *arr = cJSON_AddArrayToObject(o->json, "entries");
    for (size_t i = 0; i < res->n; i++) {
        const struct eddy_eb2_entry_result *e = &res->entries[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddBoolToObject(x, "ok", e->ok);
        cJSON_AddBoolToObject(x, "deduplicated", e->deduplicated);
        cJSON_AddStringToObject(x, "event_id", e->event_id ? e->event_id : "");
        cJSON_AddStringToObject(x, "code", e->error_code ? e->error_code : "");
        cJSON_AddItemToArray(arr, x);
    }
    eddy_eb2_put_result_cleanup(res);
    uv_stop(o->loop); /* idle keep-alive connections would hold the loop */
}

static char *read_stdin(void)
{
    struct eddy_buf b;
    eddy_buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        eddy_buf_put(&b, chunk, n);
    return eddy_buf_take(&b, NULL);
}

static const char *field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: eb2_driver BUS_ARN < entries.json\n");
        return 2;
    }
    char *text = read_stdin();
    cJSON *in = cJSON_Parse(text);
    free(text);
    int n = cJSON_GetArraySize(in);
    if (!cJSON_IsArray(in) || n == 0) {
        fprintf(stderr, "eb2_driver: stdin is not a JSON array of entries\n");
        return 2;
    }
    struct eddy_eb2_entry *en = eddy_calloc((size_t)n, sizeof *en);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(in, i);
        en[i] = (struct eddy_eb2_entry){
            field(e, "source"), field(e, "detail_type"), field(e, "detail"), NULL, 0, 0,
            field(e, "group"),  field(e, "dedup")};
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct eddy_error err = {0};
    struct eddy_http_config hc = {0};
    hc.ca_bundle = getenv("AWS_CA_BUNDLE");
    struct eddy_http *http = eddy_http_new(&loop, &hc, &err);
    struct eddy_creds *creds =
        http ? eddy_creds_new(&loop, eddy_http_transport(http), eddy_clock_system()) : NULL;
    struct eddy_aws aws;
    struct eddy_aws_config ac = {0};
    ac.loop = &loop;
    ac.transport = http ? eddy_http_transport(http) : (struct eddy_transport){0};
    ac.creds = creds;
    struct eddy_eb2 eb2;
    memset(&eb2, 0, sizeof eb2);
    struct out o = {cJSON_CreateObject(), false, &loop};
    int rc = 2;
    if (http == NULL || eddy_aws_init(&aws, &ac, &err) != EDDY_OK ||
        eddy_eb2_init(&eb2, &aws, argv[1], NULL, &err) != EDDY_OK) {
        fprintf(stderr, "eb2_driver: %s\n", eddy_error_text(&err));
    } else {
        eddy_err start = eddy_eb2_put_events(&eb2, en, (size_t)n, on_put, &o, NULL, &err);
        if (start == EDDY_OK) { /* else refused before sending: reported as such */
            uv_run(&loop, UV_RUN_DEFAULT);
        } else {
            cJSON_AddStringToObject(o.json, "err", eddy_err_name(start));
            cJSON_AddStringToObject(o.json, "detail", err.detail);
            o.done = true;
        }
        char *s = cJSON_PrintUnformatted(o.json);
        printf("%s\n", s);
        free(s);
        rc = o.done ? 0 : 2;
    }
    eddy_eb2_cleanup(&eb2);
    if (creds)
        eddy_creds_close(creds, NULL, NULL);
    if (http)
        eddy_http_close(http, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        rc = 2;
    cJSON_Delete(o.json);
    cJSON_Delete(in);
    free(en);
    return rc;
}
