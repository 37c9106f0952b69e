/*
 * creds_files.c - the credential provider of the shared credentials and config files (see
 * credentials.h).
 */
#include <assert.h>
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
#include "aws/ini.h"

/* Read a whole small file. Returns 0 or an errno value (EFBIG over max). */
int creds_read_small_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = 0;
    char *p = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = errno;
        goto done;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        rc = S_ISREG(st.st_mode) ? EFBIG : EISDIR;
        goto done;
    }
    size_t size = (size_t)st.st_size, n = 0;
    p = eddy_malloc(size + 1);
    while (n < size) {
        ssize_t r = read(fd, p + n, size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? errno : 0;
            break; /* a file that shrank is read as it is now */
        }
        n += (size_t)r;
    }
    p[n] = '\0';
    *len = n;
done:
    close(fd);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* path from var, else $HOME/<rel>; a leading "~/" is expanded. NULL when no HOME. */
static char *shared_path(const char *var, const char *rel)
{
    const char *v = creds_env(var);
    const char *home = creds_env("HOME");
    struct eddy_buf b;
    /* No cap of its own: a path too long to open fails where it is opened,
     * and is reported there as any unreadable file is. */
    eddy_buf_init(&b, 0);
    if (v && strncmp(v, "~/", 2) == 0 && home)
        eddy_buf_putf(&b, "%s/%s", home, v + 2);
    else if (v)
        eddy_buf_puts(&b, v);
    else if (home)
        eddy_buf_putf(&b, "%s/%s", home, rel);
    else
        return NULL;
    assert(!eddy_buf_refused(&b)); /* environment strings are far below 64 MiB */
    return eddy_buf_take(&b, NULL);
}

/* What a file says about one profile. Views into the file text. */
struct profile_scan {
    const char *profile;
    bool config_style; /* sections are "profile <name>" (and "default") */
    bool seen;
    bool unsupported; /* role_arn, sso_*, credential_process, ... */
    struct eddy_str akid, secret, token;
};

static bool section_matches(const struct profile_scan *s, struct eddy_str section)
{
    if (!s->config_style)
        return eddy_str_eqc(section, s->profile);
    if (strcmp(s->profile, "default") == 0 && eddy_str_eqc(section, "default"))
        return true;
    if (section.len < 8 || strncmp(section.ptr, "profile", 7) != 0 ||
        (section.ptr[7] != ' ' && section.ptr[7] != '\t'))
        return false;
    struct eddy_str name = {section.ptr + 8, section.len - 8};
    while (name.len && (name.ptr[0] == ' ' || name.ptr[0] == '\t')) {
        name.ptr++;
        name.len--;
    }
    return eddy_str_eqc(name, s->profile);
}

static bool key_is(struct eddy_str key, const char *name)
{
    return key.len == strlen(name) && strncasecmp(key.ptr, name, key.len) == 0;
}

static bool on_ini(struct eddy_str section, struct eddy_str key, struct eddy_str value, void *ud)
{
    struct profile_scan *s = ud;
    if (!section_matches(s, section))
        return true;
    s->seen = true;
    if (!key.ptr)
        return true;
    if (key_is(key, "aws_access_key_id"))
        s->akid = value;
    else if (key_is(key, "aws_secret_access_key"))
        s->secret = value;
    else if (key_is(key, "aws_session_token"))
        s->token = value;
    else if (key_is(key, "role_arn") || key_is(key, "credential_process") ||
             key_is(key, "sso_session") || key_is(key, "sso_start_url") ||
             key_is(key, "web_identity_token_file"))
        s->unsupported = true;
    return true;
}

/* One shared file, read and scanned for one profile. */
struct shared_file {
    char *path;
    char *text; /* secret: wiped when freed */
    size_t len;
    struct profile_scan scan;
    char status[400]; /* why it gave nothing, for the detail */
};

static void shared_load(struct shared_file *f, const char *var, const char *rel,
                        const char *profile, bool config_style)
{
    *f = (struct shared_file){.scan = {.profile = profile, .config_style = config_style}};
    f->path = shared_path(var, rel);
    if (!f->path) {
        snprintf(f->status, sizeof f->status, "%s not set and HOME not set", var);
        return;
    }
    int rc = creds_read_small_file(f->path, SHARED_FILE_MAX, &f->text, &f->len);
    if (rc == ENOENT) {
        snprintf(f->status, sizeof f->status, "no file %s", f->path);
        return;
    }
    if (rc) {
        snprintf(f->status, sizeof f->status, "cannot read %s (%s)", f->path,
                 rc == EFBIG ? "larger than 1 MiB" : strerror(rc));
        return;
    }
    struct eddy_error perr = {0};
    if (eddy_ini_parse((struct eddy_str){f->text, f->len}, on_ini, &f->scan, &perr) != EDDY_OK) {
        snprintf(f->status, sizeof f->status, "%s: %s", f->path, eddy_error_text(&perr));
        f->scan.akid = f->scan.secret = f->scan.token = (struct eddy_str){NULL, 0};
    } else if (!f->scan.seen) {
        snprintf(f->status, sizeof f->status, "no profile in %s", f->path);
    } else {
        snprintf(
            f->status, sizeof f->status, "no aws_access_key_id for the profile in %s%s", f->path,
            f->scan.unsupported ? " (role_arn, sso and credential_process are not supported)" : "");
    }
}

static void shared_cleanup(struct shared_file *f)
{
    if (f->text) {
        eddy_wipe(f->text, f->len);
        free(f->text);
    }
    free(f->path);
}

/* The profile's keys in f, if it has any. */
static enum outcome shared_take(struct eddy_creds *c, const struct shared_file *f,
                                struct eddy_credentials *out)
{
    const struct profile_scan *s = &f->scan;
    if (!s->akid.len && !s->secret.len)
        return NOTHING;
    if (!s->akid.len || !s->secret.len) {
        creds_note(c, "shared-files: profile '%s' in %s has %s but no %s", s->profile, f->path,
                   s->akid.len ? "aws_access_key_id" : "aws_secret_access_key",
                   s->akid.len ? "aws_secret_access_key" : "aws_access_key_id");
        return FATAL;
    }
    *out = (struct eddy_credentials){
        .access_key_id = eddy_strndup(s->akid.ptr, s->akid.len),
        .secret_access_key = eddy_strndup(s->secret.ptr, s->secret.len),
        .session_token = s->token.len ? eddy_strndup(s->token.ptr, s->token.len) : NULL,
        .provider = "shared-files",
    };
    return FOUND;
}

/* The credentials file wins over the config file for the same profile. */
static enum outcome from_files(struct eddy_creds *c, struct eddy_credentials *out)
{
    const char *explicit_profile = creds_env("AWS_PROFILE");
    const char *profile = explicit_profile ? explicit_profile : "default";
    struct shared_file f[2];
    shared_load(&f[0], "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", profile, false);
    shared_load(&f[1], "AWS_CONFIG_FILE", ".aws/config", profile, true);
    enum outcome o = shared_take(c, &f[0], out);
    if (o == NOTHING)
        o = shared_take(c, &f[1], out);
    if (o == NOTHING) {
        bool missing = explicit_profile && !f[0].scan.seen && !f[1].scan.seen;
        creds_note(c, "shared-files: profile '%s'%s: %s; %s", profile,
                   missing ? " (AWS_PROFILE) not found" : "", f[0].status, f[1].status);
        o = missing ? FATAL : NOTHING;
    }
    shared_cleanup(&f[0]);
    shared_cleanup(&f[1]);
    return o;
}

const struct creds_provider creds_files_provider = {"shared-files", from_files, NULL};
