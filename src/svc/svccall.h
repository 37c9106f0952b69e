/*
 * svccall.h - what the service clients share: starting a call whose request
 * was written with the JSON writer (base/json.h) straight into its buffer.
 */
#ifndef EDDY_SVC_SVCCALL_H
#define EDDY_SVC_SVCCALL_H

#include "aws/awscall.h"
#include "base/json.h"

/*
 * eddy_aws_call with the body in w, which is taken over and cleaned up
 * whatever the outcome. A body the writer could not finish (over its cap)
 * is EDDY_ELIMIT, named "<service> <op>: request body over its cap". The
 * async contract is eddy_aws_call's: on an error cb never runs, so the
 * caller frees what it gave as ud.
 */
EDDY_MUST_USE eddy_err eddy_svc_call(struct eddy_aws_client *c, const char *op, struct eddy_jw *w,
                                     const struct eddy_aws_call_opts *opts, eddy_aws_cb cb,
                                     void *ud, struct eddy_aws_call **handle,
                                     struct eddy_error *err);

#endif
