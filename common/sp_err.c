/* common/sp_err.c -- error code texts and the sp_err_t message helpers.
 * Owns nothing but formatting; never logs or exits. */
#include "sp_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sp_strerror(int rc)
{
    switch (rc) {
#define SP__CASE(name, value, text) case value: return text;
    SP_ERROR_LIST(SP__CASE)
#undef SP__CASE
    }
    return "unknown error";
}

int sp_err_set(sp_err_t *err, int rc, const char *fmt, ...)
{
    if (err == NULL)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->rc = rc;
    return rc;
}

int sp_err_wrap(sp_err_t *err, int rc, const char *fmt, ...)
{
    if (err == NULL)
        return rc;
    char prefix[SP_ERR_MSG_MAX], old[SP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    if (old[0] == '\0')
        snprintf(old, sizeof old, "%s", sp_strerror(rc));
    /* Truncation of an over-long message is acceptable; build it in parts. */
    size_t n = strlen(prefix);
    memcpy(err->msg, prefix, n);
    if (n + 2 < sizeof err->msg) {
        err->msg[n++] = ':';
        err->msg[n++] = ' ';
    }
    size_t m = strlen(old);
    if (m > sizeof err->msg - 1 - n)
        m = sizeof err->msg - 1 - n;
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = '\0';
    if (err->rc == SP_OK)
        err->rc = rc;
    return err->rc;
}

void sp_err_clear(sp_err_t *err)
{
    if (err == NULL)
        return;
    err->rc = SP_OK;
    err->msg[0] = '\0';
}

const char *sp_err_text(const sp_err_t *err, int rc)
{
    if (err != NULL && err->msg[0] != '\0')
        return err->msg;
    return sp_strerror(rc);
}
