/* proto/auth.c -- CURVE key files (generate, load, validate), the ZAP
 * handler thread that admits authorised executor keys, and the CURVE
 * socket options. Owns the key file format (proto/auth.h) and the handler's
 * REP socket; never touches the driver's or executor's sockets beyond the
 * options it is asked to set. */
#include "auth.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "sp_log.h"
#include "sp_util.h"

#define LOG "auth"

/* A key file is a few short lines; anything longer is not one. */
#define AUTH_FILE_MAX 4096
#define AUTH_FORMAT_VERSION 1ul

typedef enum key_kind { KEY_PUBLIC, KEY_SECRET } key_kind_t;

static const char *const kind_word[] = {[KEY_PUBLIC] = "public", [KEY_SECRET] = "secret"};

static int no_curve(sp_err_t *err)
{
    return sp_err_set(err, SP_EINVAL, "this libzmq has no CURVE support (it was built without libsodium)");
}

/* ---- Z85 ---------------------------------------------------------------------- */

static const char z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/* 0 when s[0..len) is the canonical Z85 text of a 32-byte key; otherwise -1
 * with the reason in why. */
static int z85_key_check(const char *s, size_t len, char *why, size_t whylen)
{
    if (len != AUTH_KEY_Z85_LEN) {
        snprintf(why, whylen, "has %zu characters; a key is %d Z85 characters", len, AUTH_KEY_Z85_LEN);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0' || strchr(z85_alphabet, s[i]) == NULL) {
            snprintf(why, whylen, "holds '%c' at character %zu, which is not a Z85 character", s[i], i + 1);
            return -1;
        }
    }
    /* Every 5 characters are a base-85 number that must fit in 32 bits;
     * decoding and encoding again gives the same text only then. */
    char text[AUTH_KEY_Z85_LEN + 1], again[AUTH_KEY_Z85_LEN + 1];
    uint8_t bytes[32];
    memcpy(text, s, len);
    text[len] = '\0';
    if (zmq_z85_decode(bytes, text) == NULL || zmq_z85_encode(again, bytes, sizeof bytes) == NULL ||
        memcmp(again, text, len) != 0) {
        snprintf(why, whylen, "is not a valid Z85 key (a 5-character group exceeds 32 bits)");
        return -1;
    }
    return 0;
}

/* ---- reading key files -------------------------------------------------------- */

/* Read a whole key file into buf (NUL-terminated) and stat it. */
static int read_key_file(const char *path, key_kind_t kind, char *buf, size_t cap, size_t *len,
                         struct stat *st, sp_err_t *err)
{
    /* O_NONBLOCK: a FIFO planted at the path must not hang the open. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return sp_err_set(err, SP_EINVAL, "%s key file %s does not exist%s", kind_word[kind], path,
                              kind == KEY_SECRET ? " (make one with spate keygen)" : "");
        if (e == EACCES)
            return sp_err_set(err, SP_EINVAL, "cannot read %s key file %s: permission denied", kind_word[kind],
                              path);
        return sp_err_set(err, e == EISDIR || e == ENOTDIR || e == ELOOP ? SP_EINVAL : SP_EIO,
                          "cannot open %s key file %s: %s", kind_word[kind], path, strerror(e));
    }
    int rc = 0;
    if (fstat(fd, st) != 0) {
        rc = sp_err_set(err, SP_EIO, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st->st_mode)) {
        rc = sp_err_set(err, SP_EINVAL, "%s key file %s is not a regular file", kind_word[kind], path);
    } else if (st->st_size >= (off_t)cap) {
        rc = sp_err_set(err, SP_EINVAL, "%s key file %s is %lld bytes: too large to be a spate key file",
                        kind_word[kind], path, (long long)st->st_size);
    }
    size_t n = 0;
    while (rc == 0) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = sp_err_set(err, SP_EIO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap - 1) {
            rc = sp_err_set(err, SP_EINVAL, "%s key file %s is too large to be a spate key file",
                            kind_word[kind], path);
        }
    }
    close(fd);
    if (rc == 0) {
        buf[n] = '\0';
        *len = n;
    }
    return rc;
}

/* The .pub path beside a .key path, for messages. */
static void pub_hint(const char *path, char *out, size_t outlen)
{
    size_t n = strlen(path);
    if (n > 4 && strcmp(path + n - 4, ".key") == 0)
        snprintf(out, outlen, "%.*s.pub", (int)(n - 4), path);
    else
        snprintf(out, outlen, "its NAME.pub");
}

/* Parse the first line "# spate curve KIND key vN". */
static int parse_header(const char *path, key_kind_t want, const char *line, size_t len, sp_err_t *err)
{
    static const char prefix[] = "# spate curve ";
    size_t plen = sizeof prefix - 1;
    key_kind_t got;
    const char *p = line + plen;
    if (len > plen && memcmp(line, prefix, plen) == 0 && len - plen > 12 && memcmp(p, "secret key v", 12) == 0)
        got = KEY_SECRET;
    else if (len > plen && memcmp(line, prefix, plen) == 0 && len - plen > 12 && memcmp(p, "public key v", 12) == 0)
        got = KEY_PUBLIC;
    else
        return sp_err_set(err, SP_EINVAL, "%s is not a spate key file: its first line must be '# spate curve %s key v1'",
                          path, kind_word[want]);
    unsigned long version = 0;
    size_t i = plen + 12;
    if (i == len)
        goto bad_version;
    for (; i < len; i++) {
        if (line[i] < '0' || line[i] > '9' || version > 100000)
            goto bad_version;
        version = version * 10 + (unsigned long)(line[i] - '0');
    }
    if (got != want) {
        if (want == KEY_PUBLIC) {
            char hint[4096];
            pub_hint(path, hint, sizeof hint);
            return sp_err_set(err, SP_EINVAL,
                              "%s is a secret key file: give the public key file instead (%s); a secret key "
                              "never leaves its holder",
                              path, hint);
        }
        return sp_err_set(err, SP_EINVAL, "%s is a public key file: expected a secret key file (NAME.key, made by spate keygen)",
                          path);
    }
    if (version > AUTH_FORMAT_VERSION)
        return sp_err_set(err, SP_EINVAL, "%s is a key file of format v%lu; this spate reads v%lu: upgrade spate",
                          path, version, AUTH_FORMAT_VERSION);
    if (version == 0)
        goto bad_version;
    return 0;
bad_version:
    return sp_err_set(err, SP_EINVAL, "%s: bad format version in its first line (expected '# spate curve %s key v1')",
                      path, kind_word[want]);
}

/* Parse a key file's text; pub and sec (sec may be NULL for KEY_PUBLIC)
 * receive the keys. */
static int parse_key_text(const char *path, key_kind_t kind, const char *text, size_t len, char *pub, char *sec,
                          sp_err_t *err)
{
    if (len == 0)
        return sp_err_set(err, SP_EINVAL, "%s is empty: not a spate key file", path);
    bool have[2] = {false, false};
    int lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)line[i];
            if ((c < 0x20 && c != '\t') || c >= 0x7f)
                return sp_err_set(err, SP_EINVAL, "%s line %d: byte 0x%02x is not printable ASCII: not a spate key file",
                                  path, lineno, c);
        }
        if (lineno == 1) {
            int rc = parse_header(path, kind, line, n, err);
            if (rc != 0)
                return rc;
            continue;
        }
        if (n == 0 || line[0] == '#')
            continue;
        const char *eq = memchr(line, '=', n);
        if (eq == NULL)
            return sp_err_set(err, SP_EINVAL, "%s line %d: expected public=KEY or secret=KEY", path, lineno);
        size_t nlen = (size_t)(eq - line);
        key_kind_t field;
        if (nlen == 6 && memcmp(line, "public", 6) == 0)
            field = KEY_PUBLIC;
        else if (nlen == 6 && memcmp(line, "secret", 6) == 0)
            field = KEY_SECRET;
        else
            return sp_err_set(err, SP_EINVAL, "%s line %d: unknown field '%.*s' (expected public or secret)", path,
                              lineno, (int)(nlen > 32 ? 32 : nlen), line);
        if (field == KEY_SECRET && kind == KEY_PUBLIC)
            return sp_err_set(err, SP_EINVAL, "%s line %d: a public key file must not hold a secret key", path, lineno);
        if (have[field])
            return sp_err_set(err, SP_EINVAL, "%s line %d: a second %s key", path, lineno, kind_word[field]);
        const char *v = eq + 1;
        size_t vlen = n - nlen - 1;
        char why[128];
        if (z85_key_check(v, vlen, why, sizeof why) != 0)
            return sp_err_set(err, SP_EINVAL, "%s line %d: the %s key %s", path, lineno, kind_word[field], why);
        char *dst = field == KEY_PUBLIC ? pub : sec;
        memcpy(dst, v, AUTH_KEY_Z85_LEN);
        dst[AUTH_KEY_Z85_LEN] = '\0';
        have[field] = true;
    }
    if (!have[KEY_PUBLIC])
        return sp_err_set(err, SP_EINVAL, "%s has no public= line", path);
    if (kind == KEY_SECRET && !have[KEY_SECRET])
        return sp_err_set(err, SP_EINVAL, "%s has no secret= line", path);
    return 0;
}

int auth_load_keypair(const char *path, auth_keypair_t *out, sp_err_t *err)
{
    memset(out, 0, sizeof *out);
    char buf[AUTH_FILE_MAX];
    size_t len = 0;
    struct stat st;
    int rc = read_key_file(path, KEY_SECRET, buf, sizeof buf, &len, &st, err);
    /* The format first, so a .pub given by mistake is named as such. */
    if (rc == 0)
        rc = parse_key_text(path, KEY_SECRET, buf, len, out->public_z85, out->secret_z85, err);
    if (rc == 0 && (st.st_mode & 077) != 0)
        rc = sp_err_set(err, SP_EINVAL,
                        "permissions %04o on secret key file %s are too open: a secret key must be readable "
                        "by its owner only (chmod 600 %s)",
                        (unsigned)(st.st_mode & 07777), path, path);
    if (rc == 0) {
        char derived[AUTH_KEY_Z85_LEN + 1];
        if (zmq_curve_public(derived, out->secret_z85) != 0)
            rc = no_curve(err);
        else if (strcmp(derived, out->public_z85) != 0)
            rc = sp_err_set(err, SP_EINVAL,
                            "%s: its public key does not belong to its secret key (the file was edited or "
                            "mixed up: make a new pair with spate keygen)",
                            path);
    }
    explicit_bzero(buf, sizeof buf);
    if (rc != 0)
        auth_keypair_clear(out);
    return rc;
}

/* auth_load_public, optionally refusing a file that group or others may
 * write (for the ZAP handler's authorised keys). */
static int load_public(const char *path, bool strict_mode, char out[AUTH_KEY_Z85_LEN + 1], sp_err_t *err)
{
    memset(out, 0, AUTH_KEY_Z85_LEN + 1);
    char buf[AUTH_FILE_MAX];
    size_t len = 0;
    struct stat st;
    int rc = read_key_file(path, KEY_PUBLIC, buf, sizeof buf, &len, &st, err);
    if (rc == 0 && strict_mode && (st.st_mode & 022) != 0)
        rc = sp_err_set(err, SP_EINVAL,
                        "%s is writable by group or others (mode %04o): anyone could put their key in it "
                        "(chmod go-w %s)",
                        path, (unsigned)(st.st_mode & 07777), path);
    if (rc == 0)
        rc = parse_key_text(path, KEY_PUBLIC, buf, len, out, NULL, err);
    explicit_bzero(buf, sizeof buf); /* a secret key file given by mistake */
    if (rc != 0)
        memset(out, 0, AUTH_KEY_Z85_LEN + 1);
    return rc;
}

int auth_load_public(const char *path, char out[AUTH_KEY_Z85_LEN + 1], sp_err_t *err)
{
    return load_public(path, false, out, err);
}

void auth_keypair_clear(auth_keypair_t *kp)
{
    if (kp)
        explicit_bzero(kp, sizeof *kp);
}

/* ---- keygen --------------------------------------------------------------------- */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_'))
            return false;
    }
    return true;
}

static int exists_error(const char *path, sp_err_t *err)
{
    return sp_err_set(err, SP_EINVAL,
                      "%s already exists: spate keygen never overwrites a key (remove it, or choose another --name)",
                      path);
}

/* Create path exclusively with mode and write text; fsync. */
static int write_new_file(const char *path, mode_t mode, const char *text, sp_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            return exists_error(path, err);
        return sp_err_set(err, SP_EIO, "cannot create %s: %s", path, strerror(errno));
    }
    int rc = 0;
    int wrc;
    if (fchmod(fd, mode) != 0)
        rc = sp_err_set(err, SP_EIO, "cannot set the mode of %s: %s", path, strerror(errno));
    else if ((wrc = sp_write_all(fd, text, strlen(text))) != 0)
        rc = sp_err_set(err, SP_EIO, "cannot write %s: %s", path, strerror(-wrc));
    else if (fsync(fd) != 0)
        rc = sp_err_set(err, SP_EIO, "cannot sync %s: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = sp_err_set(err, SP_EIO, "cannot write %s: %s", path, strerror(errno));
    if (rc != 0)
        unlink(path);
    return rc;
}

int auth_keygen(const char *dir, const char *name, char public_z85[AUTH_KEY_Z85_LEN + 1], sp_err_t *err)
{
    if (!name_ok(name))
        return sp_err_set(err, SP_EINVAL,
                          "key name '%s' must be 1 to 64 letters, digits, '.', '-' or '_', not starting with '.'",
                          name);
    if (!zmq_has("curve"))
        return no_curve(err);
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT)
            return sp_err_set(err, SP_EIO, "cannot use directory %s: %s", dir, strerror(errno));
        if (mkdir(dir, 0700) != 0 && errno == ENOENT)
            return sp_err_set(err, SP_EINVAL, "cannot create directory %s: its parent directory does not exist",
                              dir);
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return sp_err_set(err, SP_EIO, "cannot create directory %s: %s", dir, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return sp_err_set(err, SP_EINVAL, "%s is not a directory", dir);
    }
    char *key_path = sp_xasprintf("%s/%s.key", dir, name);
    char *pub_path = sp_xasprintf("%s/%s.pub", dir, name);
    int rc = 0;
    /* Refuse before writing anything (lstat: a dangling link counts too). */
    if (lstat(key_path, &st) == 0)
        rc = exists_error(key_path, err);
    else if (lstat(pub_path, &st) == 0)
        rc = exists_error(pub_path, err);
    char pub[AUTH_KEY_Z85_LEN + 1], sec[AUTH_KEY_Z85_LEN + 1];
    if (rc == 0 && zmq_curve_keypair(pub, sec) != 0)
        rc = no_curve(err);
    char text[256];
    if (rc == 0) {
        snprintf(text, sizeof text, "# spate curve secret key v1\npublic=%s\nsecret=%s\n", pub, sec);
        rc = write_new_file(key_path, 0600, text, err);
    }
    if (rc == 0) {
        snprintf(text, sizeof text, "# spate curve public key v1\npublic=%s\n", pub);
        rc = write_new_file(pub_path, 0644, text, err);
        if (rc != 0)
            unlink(key_path); /* ours: created above */
    }
    if (rc == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        if (public_z85)
            memcpy(public_z85, pub, sizeof pub);
    }
    explicit_bzero(sec, sizeof sec);
    explicit_bzero(text, sizeof text);
    free(key_path);
    free(pub_path);
    return rc;
}

/* ---- loopback endpoints ------------------------------------------------------------ */

bool auth_endpoint_is_loopback(const char *endpoint)
{
    if (endpoint == NULL)
        return false;
    if (strncmp(endpoint, "ipc://", 6) == 0)
        return endpoint[6] != '\0';
    if (strncmp(endpoint, "inproc://", 9) == 0)
        return endpoint[9] != '\0';
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':');
    if (colon == NULL || colon == host)
        return false;
    const char *port = colon + 1;
    if (strcmp(port, "*") != 0) {
        size_t pl = strlen(port);
        if (pl == 0 || pl > 5 || strspn(port, "0123456789") != pl)
            return false;
    }
    char h[64];
    size_t hlen = (size_t)(colon - host);
    if (hlen >= sizeof h)
        return false;
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']')
            return false;
        h[hlen - 1] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, h + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    if (strcasecmp(h, "localhost") == 0)
        return true;
    struct in_addr a4;
    return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* ---- sockets ------------------------------------------------------------------------ */

static int set_opt(void *sock, int opt, const void *v, size_t n, const char *what, sp_err_t *err)
{
    if (zmq_setsockopt(sock, opt, v, n) == 0)
        return 0;
    if (errno == EINVAL && !zmq_has("curve"))
        return no_curve(err);
    return sp_err_set(err, SP_EIO, "cannot set %s on a ZeroMQ socket: %s", what, zmq_strerror(errno));
}

int auth_server_socket(void *sock, const auth_keypair_t *kp, sp_err_t *err)
{
    if (!zmq_has("curve"))
        return no_curve(err);
    int one = 1, rc;
    if ((rc = set_opt(sock, ZMQ_CURVE_SERVER, &one, sizeof one, "ZMQ_CURVE_SERVER", err)) != 0 ||
        (rc = set_opt(sock, ZMQ_CURVE_SECRETKEY, kp->secret_z85, AUTH_KEY_Z85_LEN, "ZMQ_CURVE_SECRETKEY", err)) != 0 ||
        (rc = set_opt(sock, ZMQ_ZAP_DOMAIN, AUTH_ZAP_DOMAIN, strlen(AUTH_ZAP_DOMAIN), "ZMQ_ZAP_DOMAIN", err)) != 0)
        return rc;
    return 0;
}

int auth_client_socket(void *sock, const auth_keypair_t *kp, const char server_public_z85[AUTH_KEY_Z85_LEN + 1],
                       sp_err_t *err)
{
    if (!zmq_has("curve"))
        return no_curve(err);
    int rc;
    if ((rc = set_opt(sock, ZMQ_CURVE_SERVERKEY, server_public_z85, AUTH_KEY_Z85_LEN, "ZMQ_CURVE_SERVERKEY", err)) != 0 ||
        (rc = set_opt(sock, ZMQ_CURVE_PUBLICKEY, kp->public_z85, AUTH_KEY_Z85_LEN, "ZMQ_CURVE_PUBLICKEY", err)) != 0 ||
        (rc = set_opt(sock, ZMQ_CURVE_SECRETKEY, kp->secret_z85, AUTH_KEY_Z85_LEN, "ZMQ_CURVE_SECRETKEY", err)) != 0)
        return rc;
    return 0;
}

/* ---- the ZAP handler ------------------------------------------------------------------
 * The caller's thread creates and binds every socket (so a second handler
 * in the context fails at start, with a message), then hands the REP socket
 * and one end of an inproc PAIR to the thread. auth_zap_stop sends one
 * frame on the other end; the thread closes its sockets and ends. */

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8
#define ZAP_RECENT 32       /* addresses remembered for the refusal log limit */
#define ZAP_WARNED_FILES 64 /* bad key files already warned about */

typedef struct zap_recent {
    char addr[128];
    uint64_t last_ms;    /* last refusal logged */
    uint64_t suppressed; /* refusals not logged since */
} zap_recent_t;

struct auth_zap {
    pthread_t thread;
    void *handler;   /* REP: the thread's */
    void *pipe_in;   /* PAIR: the thread's end */
    void *pipe_out;  /* PAIR: the owner's end */
    char pipe_ep[64];
    char *dir;
    /* the thread's alone */
    zap_recent_t recent[ZAP_RECENT];
    char *warned[ZAP_WARNED_FILES];
    size_t nwarned;
};

/* Log msg unless already done for name (a file name; "." for the
 * directory itself). */
static void zap_warn_once(auth_zap_t *z, const char *name, const char *msg)
{
    for (size_t i = 0; i < z->nwarned; i++)
        if (strcmp(z->warned[i], name) == 0)
            return;
    if (z->nwarned < ZAP_WARNED_FILES)
        z->warned[z->nwarned++] = sp_xstrdup(name);
    SP_WARN(LOG, "%s", msg);
}

/* The directory's own check of auth_zap_start, again: it may have changed. */
static int dir_check(const char *dir, sp_err_t *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return sp_err_set(err, SP_EINVAL, "authorised keys directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return sp_err_set(err, SP_EINVAL, "authorised keys directory %s is not a directory", dir);
    if ((st.st_mode & 022) != 0)
        return sp_err_set(err, SP_EINVAL,
                          "authorised keys directory %s is writable by group or others (mode %04o): anyone who "
                          "can write there could authorise themselves (chmod go-w %s)",
                          dir, (unsigned)(st.st_mode & 07777), dir);
    return 0;
}

/* The name (without .pub) of the key file in z->dir holding key, into
 * user (NUL-terminated); false when none does. */
static bool zap_find_key(auth_zap_t *z, const char *key, char *user, size_t userlen)
{
    sp_err_t err;
    DIR *d = NULL;
    if (dir_check(z->dir, &err) == 0 && (d = opendir(z->dir)) == NULL)
        sp_err_set(&err, SP_EIO, "cannot read authorised keys directory %s: %s", z->dir, strerror(errno));
    if (d == NULL) {
        char msg[SP_ERR_MSG_MAX + 64];
        snprintf(msg, sizeof msg, "%s: refusing every executor", err.msg);
        zap_warn_once(z, ".", msg);
        return false;
    }
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n <= 4 || strcmp(de->d_name + n - 4, ".pub") != 0)
            continue;
        char *path = sp_xasprintf("%s/%s", z->dir, de->d_name);
        char pub[AUTH_KEY_Z85_LEN + 1];
        if (load_public(path, true, pub, &err) != 0) {
            char msg[SP_ERR_MSG_MAX + 64];
            snprintf(msg, sizeof msg, "skipping authorised key file: %s", err.msg);
            zap_warn_once(z, de->d_name, msg);
        } else if (strcmp(pub, key) == 0) {
            found = true;
            snprintf(user, userlen, "%.*s", (int)(n - 4), de->d_name);
        }
        free(path);
    }
    closedir(d);
    return found;
}

/* Log a refusal, at most once a second per address. */
static void zap_log_refusal(auth_zap_t *z, const char *addr, const char *what)
{
    uint64_t now = sp_mono_ms();
    zap_recent_t *slot = NULL, *oldest = &z->recent[0];
    for (size_t i = 0; i < ZAP_RECENT; i++) {
        zap_recent_t *r = &z->recent[i];
        if (r->last_ms != 0 && strcmp(r->addr, addr) == 0) {
            slot = r;
            break;
        }
        if (r->last_ms < oldest->last_ms)
            oldest = r;
    }
    if (slot && now - slot->last_ms < 1000) {
        slot->suppressed++;
        return;
    }
    uint64_t suppressed = slot ? slot->suppressed : 0;
    if (slot == NULL) {
        slot = oldest;
        snprintf(slot->addr, sizeof slot->addr, "%s", addr);
    }
    slot->last_ms = now ? now : 1;
    slot->suppressed = 0;
    if (suppressed)
        SP_WARN(LOG, "refused executor at %s: %s (and %llu more attempt(s) since the last message)", addr, what,
                (unsigned long long)suppressed);
    else
        SP_WARN(LOG, "refused executor at %s: %s", addr, what);
}

static void frame_text(zmq_msg_t *m, char *out, size_t outlen)
{
    size_t n = zmq_msg_size(m);
    if (n >= outlen)
        n = outlen - 1;
    const char *p = zmq_msg_data(m);
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    out[n] = '\0';
}

static bool frame_is(zmq_msg_t *m, const char *s)
{
    return zmq_msg_size(m) == strlen(s) && memcmp(zmq_msg_data(m), s, strlen(s)) == 0;
}

/* Receive one request (all its frames), decide, reply. */
static void zap_serve_one(auth_zap_t *z)
{
    zmq_msg_t f[ZAP_MAX_FRAMES];
    int nf = 0;
    bool more = true;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->handler, 0) < 0) {
            zmq_msg_close(&m);
            if (errno == EINTR && nf > 0)
                continue;
            if (nf == 0)
                return; /* nothing received: nothing to answer */
            break;
        }
        more = zmq_msg_more(&m);
        if (nf < ZAP_MAX_FRAMES)
            f[nf++] = m;
        else
            zmq_msg_close(&m);
    }
    char addr[128] = "?";
    if (nf > 3)
        frame_text(&f[3], addr, sizeof addr);
    const char *status = "400";
    char text[256] = "";
    char user[256] = "";
    if (nf < 6 || !frame_is(&f[0], "1.0")) {
        status = "500";
        snprintf(text, sizeof text, "malformed ZAP request");
    } else if (!frame_is(&f[5], "CURVE")) {
        char mech[32];
        frame_text(&f[5], mech, sizeof mech);
        snprintf(text, sizeof text, "mechanism %s, not CURVE", mech);
        zap_log_refusal(z, addr, "it did not use CURVE keys (give it --curve-secret and --driver-key)");
    } else if (nf != 7 || zmq_msg_size(&f[6]) != 32) {
        status = "500";
        snprintf(text, sizeof text, "malformed CURVE credentials");
    } else {
        char key[AUTH_KEY_Z85_LEN + 1];
        zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
        if (zap_find_key(z, key, user, sizeof user)) {
            status = "200";
            snprintf(text, sizeof text, "OK");
            SP_DEBUG(LOG, "admitted executor at %s with key %s (%s.pub)", addr, key, user);
        } else {
            snprintf(text, sizeof text, "public key not authorised");
            char what[512];
            snprintf(what, sizeof what, "public key %s is not in %s", key, z->dir);
            zap_log_refusal(z, addr, what);
        }
    }
    /* Reply: version, request id, status code, status text, user id, metadata. */
    const char *reqid = nf > 1 ? zmq_msg_data(&f[1]) : "";
    size_t reqid_len = nf > 1 ? zmq_msg_size(&f[1]) : 0;
    bool ok = zmq_send(z->handler, "1.0", 3, ZMQ_SNDMORE) >= 0 &&
              zmq_send(z->handler, reqid, reqid_len, ZMQ_SNDMORE) >= 0 &&
              zmq_send(z->handler, status, 3, ZMQ_SNDMORE) >= 0 &&
              zmq_send(z->handler, text, strlen(text), ZMQ_SNDMORE) >= 0 &&
              zmq_send(z->handler, user, strlen(user), ZMQ_SNDMORE) >= 0 &&
              zmq_send(z->handler, "", 0, 0) >= 0;
    if (!ok)
        SP_DEBUG(LOG, "cannot answer a ZAP request: %s", zmq_strerror(errno));
    for (int i = 0; i < nf; i++)
        zmq_msg_close(&f[i]);
}

static void *zap_main(void *arg)
{
    auth_zap_t *z = arg;
    for (;;) {
        zmq_pollitem_t items[2] = {{z->handler, 0, ZMQ_POLLIN, 0}, {z->pipe_in, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break; /* ETERM: the context is going away */
        }
        if (items[1].revents & ZMQ_POLLIN)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            zap_serve_one(z);
    }
    /* Unbind first: closing alone frees the endpoint only later, in
     * ZeroMQ's own thread, and a new handler could not bind at once. */
    zmq_unbind(z->handler, ZAP_ENDPOINT);
    zmq_close(z->handler);
    zmq_unbind(z->pipe_in, z->pipe_ep);
    zmq_close(z->pipe_in);
    return NULL;
}

static void zap_free(auth_zap_t *z)
{
    for (size_t i = 0; i < z->nwarned; i++)
        free(z->warned[i]);
    free(z->dir);
    free(z);
}

int auth_zap_start(void *zctx, const char *authorized_dir, auth_zap_t **out, sp_err_t *err)
{
    *out = NULL;
    int rc = dir_check(authorized_dir, err);
    if (rc != 0)
        return rc;
    auth_zap_t *z = sp_xcalloc(1, sizeof *z);
    z->dir = sp_xstrdup(authorized_dir);
    int zero = 0;
    z->handler = zmq_socket(zctx, ZMQ_REP);
    z->pipe_in = zmq_socket(zctx, ZMQ_PAIR);
    z->pipe_out = zmq_socket(zctx, ZMQ_PAIR);
    static atomic_uint serial;
    snprintf(z->pipe_ep, sizeof z->pipe_ep, "inproc://spate-zap-pipe-%u", atomic_fetch_add(&serial, 1));
    if (z->handler == NULL || z->pipe_in == NULL || z->pipe_out == NULL) {
        rc = sp_err_set(err, SP_EIO, "cannot create the ZAP handler's sockets: %s", zmq_strerror(errno));
    } else {
        zmq_setsockopt(z->handler, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(z->pipe_in, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(z->pipe_out, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_bind(z->handler, ZAP_ENDPOINT) != 0)
            rc = sp_err_set(err, SP_EIO, "cannot bind the ZAP handler at %s: %s%s", ZAP_ENDPOINT,
                            zmq_strerror(errno), errno == EADDRINUSE ? " (another handler serves this context)" : "");
        else if (zmq_bind(z->pipe_in, z->pipe_ep) != 0 || zmq_connect(z->pipe_out, z->pipe_ep) != 0)
            rc = sp_err_set(err, SP_EIO, "cannot set up the ZAP handler's control pipe: %s", zmq_strerror(errno));
    }
    if (rc == 0) {
        /* The thread takes no signal meant for the process's main loop. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int prc = pthread_create(&z->thread, NULL, zap_main, z);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (prc != 0)
            rc = sp_err_set(err, SP_EIO, "cannot start the ZAP handler thread: %s", strerror(prc));
    }
    if (rc != 0) {
        if (z->handler) {
            zmq_unbind(z->handler, ZAP_ENDPOINT);
            zmq_close(z->handler);
        }
        if (z->pipe_in)
            zmq_close(z->pipe_in);
        if (z->pipe_out)
            zmq_close(z->pipe_out);
        zap_free(z);
        return rc;
    }
    *out = z;
    return 0;
}

void auth_zap_stop(auth_zap_t **zp)
{
    if (zp == NULL || *zp == NULL)
        return;
    auth_zap_t *z = *zp;
    *zp = NULL;
    /* One frame says stop. The pipe is connected in-process with no peer
     * that can vanish, so the send does not fail short of ETERM, when the
     * thread has ended its loop anyway. */
    while (zmq_send(z->pipe_out, "", 0, 0) < 0 && errno == EINTR)
        ;
    pthread_join(z->thread, NULL);
    zmq_close(z->pipe_out);
    zap_free(z);
}
