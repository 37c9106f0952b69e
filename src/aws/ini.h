/*
 * ini.h - a small, tolerant parser for the AWS shared config and credentials
 * files.
 *
 * It reads the dialect the AWS CLI and SDKs accept: `[section]` headers,
 * `key = value` pairs, full-line comments starting with `#` or `;`, inline
 * comments that start with whitespace followed by `#` or `;`, blank lines,
 * CRLF or LF line ends, a leading UTF-8 byte order mark, and indented
 * sub-properties under a key with an empty value (`s3 =` then `  key = v`),
 * which are skipped. It is a pure function of the text: no I/O, no
 * allocation. Values are handed out as borrowed views into the text.
 */
#ifndef EDDY_AWS_INI_H
#define EDDY_AWS_INI_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

/*
 * Called for every section header (key.ptr is NULL, key.len and value.len 0)
 * and for every pair (with the section it is in; the section is empty for
 * pairs before the first header). section, key and value are trimmed.
 * Return false to stop parsing.
 */
typedef bool (*eddy_ini_cb)(struct eddy_str section, struct eddy_str key, struct eddy_str value,
                            void *ud);

/*
 * Walk text. A line that is neither a header, a pair, a comment nor blank is
 * EDDY_EPARSE, with the line number in err's detail (no line content, since
 * the files hold secrets). Pairs before the bad line have been reported.
 */
EDDY_MUST_USE eddy_err eddy_ini_parse(struct eddy_str text, eddy_ini_cb cb, void *ud,
                                      struct eddy_error *err);

#endif
