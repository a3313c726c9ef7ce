/* common/sp_err.h -- the error codes every spate module returns, and the
 * detail record that carries a human message alongside a code.
 *
 * Convention: functions return 0 on success or a negative SP_E* code, and
 * take an optional `sp_err_t *err` (may be NULL) that receives a one-line
 * message naming what was wrong and where. The list below is the single
 * source of codes and their generic texts. */
#ifndef SP_ERR_H
#define SP_ERR_H

#include <stddef.h>

#define SP_ERROR_LIST(X)                                                      \
    X(SP_OK,           0,   "ok")                                             \
    X(SP_ENOMEM,      -1,   "out of memory")                                  \
    X(SP_EINVAL,      -2,   "invalid argument")                               \
    X(SP_EIO,         -3,   "input/output error")                             \
    X(SP_EPARSE,      -4,   "parse error")                                    \
    X(SP_ECORRUPT,    -5,   "damaged data")                                   \
    X(SP_EVERSION,    -6,   "unsupported format version")                     \
    X(SP_EINCOMPAT,   -7,   "incompatible query change")                      \
    X(SP_ENOTFOUND,   -8,   "not found")                                      \
    X(SP_EPROTO,      -9,   "protocol error")                                 \
    X(SP_EBUSY,       -10,  "in use by another process")                      \
    X(SP_ENOSPC,      -11,  "no space left")                                  \
    X(SP_EFAILED,     -12,  "query failed")                                   \
    X(SP_ETYPE,       -13,  "type error")                                     \
    X(SP_ETIMEOUT,    -14,  "timed out")                                      \
    X(SP_ESTOPPED,    -15,  "stopped")                                      \
    X(SP_ERETRY,      -16,  "transaction must be retried")

enum sp_rc {
#define SP__ENUM(name, value, text) name = value,
    SP_ERROR_LIST(SP__ENUM)
#undef SP__ENUM
};

#define SP_ERR_MSG_MAX 1024

/* Detail of the last error: the code and a message for people. */
typedef struct sp_err {
    int rc;
    char msg[SP_ERR_MSG_MAX];
} sp_err_t;

/* Generic text for a code ("damaged data"); never NULL. */
const char *sp_strerror(int rc);

/* Record rc and a printf-style message in err (if err is not NULL).
 * Returns rc, so callers can write `return sp_err_set(err, SP_EINVAL, ...)`. */
int sp_err_set(sp_err_t *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the message already in err with a printf-style context and ": ".
 * Returns err->rc (or rc if err is NULL). */
int sp_err_wrap(sp_err_t *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset err to SP_OK with an empty message. */
void sp_err_clear(sp_err_t *err);

/* The message in err, or the generic text of rc when err has none. */
const char *sp_err_text(const sp_err_t *err, int rc);

#endif
