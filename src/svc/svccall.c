/*
 * svccall.c - starting a service call from a written request (see svccall.h).
 */
#include "svc/svccall.h"

eddy_err eddy_svc_call(struct eddy_aws_client *c, const char *op, struct eddy_jw *w,
                       const struct eddy_aws_call_opts *opts, eddy_aws_cb cb, void *ud,
                       struct eddy_aws_call **handle, struct eddy_error *err)
{
    eddy_err rc = w->rc;
    if (rc == EDDY_OK)
        rc = eddy_aws_call(c, op, &w->buf, opts, cb, ud, handle, err);
    else
        eddy_error_set(err, rc, "%s %s: request body over its cap", c->info->name, op);
    eddy_jw_cleanup(w);
    return rc;
}
