/* tests/proto/auth_test.c -- CURVE key files (made, loaded, and every kind
 * of damage, wrong permission or wrong kind refused with a message naming
 * the file and the problem), loopback endpoints, and the ZAP handler with
 * real CURVE sockets in one process: an authorised client gets through, an
 * unauthorised one does not until its key is added, refusals are logged at
 * most once a second per address, and the handler stops cleanly. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "sp_util.h"
#include "testsupport.h"

static char *dir;

static void setup(void) { dir = ts_tmpdir("auth"); }

static void teardown(void)
{
    ts_rmtree(dir);
    free(dir);
}

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 60);

static char *path_in(const char *name) { return sp_xasprintf("%s/%s", dir, name); }

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return st.st_mode & 07777;
}

/* The usage example: make a pair, load both halves. */
Test(auth, keygen_makes_a_pair_that_loads)
{
    char pub[AUTH_KEY_Z85_LEN + 1];
    sp_err_t err;
    cr_assert_eq(auth_keygen(dir, "driver", pub, &err), 0, "%s", err.msg);
    cr_assert_eq(strlen(pub), AUTH_KEY_Z85_LEN);

    char *key = path_in("driver.key"), *pubf = path_in("driver.pub");
    cr_assert_eq(mode_of(key), 0600);
    cr_assert_eq(mode_of(pubf), 0644);

    auth_keypair_t kp;
    cr_assert_eq(auth_load_keypair(key, &kp, &err), 0, "%s", err.msg);
    cr_assert_str_eq(kp.public_z85, pub);
    cr_assert_eq(strlen(kp.secret_z85), AUTH_KEY_Z85_LEN);
    char again[AUTH_KEY_Z85_LEN + 1];
    cr_assert_eq(auth_load_public(pubf, again, &err), 0, "%s", err.msg);
    cr_assert_str_eq(again, pub);
    auth_keypair_clear(&kp);
    cr_assert_eq(kp.secret_z85[0], '\0');

    /* a second pair differs */
    char pub2[AUTH_KEY_Z85_LEN + 1];
    cr_assert_eq(auth_keygen(dir, "exec-1", pub2, &err), 0, "%s", err.msg);
    cr_assert_str_neq(pub, pub2);
    free(key);
    free(pubf);
}

Test(auth, keygen_never_overwrites)
{
    sp_err_t err;
    cr_assert_eq(auth_keygen(dir, "k", NULL, &err), 0, "%s", err.msg);
    char *key = path_in("k.key"), *pubf = path_in("k.pub");
    char *before_key = ts_read_file(key, NULL), *before_pub = ts_read_file(pubf, NULL);
    cr_assert_eq(auth_keygen(dir, "k", NULL, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "k.key already exists") && strstr(err.msg, "never overwrites"), "%s", err.msg);
    /* only the .pub there: still refused, and no .key is made */
    cr_assert_eq(unlink(key), 0);
    cr_assert_eq(auth_keygen(dir, "k", NULL, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "k.pub already exists"), "%s", err.msg);
    cr_assert_eq(access(key, F_OK), -1, "nothing may be written when refusing");
    char *after_pub = ts_read_file(pubf, NULL);
    cr_assert_str_eq(after_pub, before_pub);
    free(before_key);
    free(before_pub);
    free(after_pub);
    free(key);
    free(pubf);
}

Test(auth, keygen_checks_name_and_directory)
{
    sp_err_t err;
    const char *bad[] = {"", ".hidden", "a/b", "x y", "../up", NULL};
    for (int i = 0; bad[i]; i++) {
        cr_assert_eq(auth_keygen(dir, bad[i], NULL, &err), SP_EINVAL, "name '%s'", bad[i]);
        cr_assert(strstr(err.msg, "key name"), "%s", err.msg);
    }
    char *sub = path_in("new");
    cr_assert_eq(auth_keygen(sub, "n", NULL, &err), 0, "%s", err.msg); /* made, 0700 */
    cr_assert_eq(mode_of(sub), 0700);
    char *deep = path_in("no/such/dir");
    cr_assert_eq(auth_keygen(deep, "n", NULL, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "parent directory does not exist"), "%s", err.msg);
    char *file = path_in("file");
    ts_write_file(file, "x", 1);
    cr_assert_eq(auth_keygen(file, "n", NULL, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "is not a directory"), "%s", err.msg);
    free(sub);
    free(deep);
    free(file);
}

Test(auth, a_secret_key_readable_by_others_is_refused)
{
    sp_err_t err;
    cr_assert_eq(auth_keygen(dir, "k", NULL, &err), 0, "%s", err.msg);
    char *key = path_in("k.key");
    auth_keypair_t kp;
    mode_t open_modes[] = {0640, 0604, 0660, 0644, 0620, 0602, 0700 | 0044};
    for (size_t i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
        cr_assert_eq(chmod(key, open_modes[i]), 0);
        cr_assert_eq(auth_load_keypair(key, &kp, &err), SP_EINVAL, "mode %04o", (unsigned)open_modes[i]);
        cr_assert(strstr(err.msg, "are too open") && strstr(err.msg, key) && strstr(err.msg, "chmod 600"), "%s",
                  err.msg);
        cr_assert_eq(kp.secret_z85[0], '\0', "nothing is handed out on error");
    }
    mode_t fine[] = {0600, 0400, 0700};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(chmod(key, fine[i]), 0);
        cr_assert_eq(auth_load_keypair(key, &kp, &err), 0, "mode %04o: %s", (unsigned)fine[i], err.msg);
    }
    /* a public key file may be world-readable */
    char *pubf = path_in("k.pub");
    char pub[AUTH_KEY_Z85_LEN + 1];
    cr_assert_eq(chmod(pubf, 0666), 0);
    cr_assert_eq(auth_load_public(pubf, pub, &err), 0, "%s", err.msg);
    free(key);
    free(pubf);
}

/* ---- damaged and wrong files ---------------------------------------------------- */

static char good_pub[AUTH_KEY_Z85_LEN + 1], good_sec[AUTH_KEY_Z85_LEN + 1], other_pub[AUTH_KEY_Z85_LEN + 1];

static void make_keys(void)
{
    char sec2[AUTH_KEY_Z85_LEN + 1];
    cr_assert_eq(zmq_curve_keypair(good_pub, good_sec), 0);
    cr_assert_eq(zmq_curve_keypair(other_pub, sec2), 0);
}

/* Write text as a secret (0600) key file and expect load to fail with want. */
static void expect_bad_secret(const char *text, size_t len, const char *want)
{
    char *p = path_in("bad.key");
    unlink(p);
    cr_assert_eq(ts_write_file(p, text, len), 0);
    chmod(p, 0600);
    auth_keypair_t kp;
    sp_err_t err;
    int rc = auth_load_keypair(p, &kp, &err);
    cr_assert_eq(rc, SP_EINVAL, "want '%s', got rc %d (%s) for:\n%.*s", want, rc, rc ? err.msg : "", (int)len, text);
    cr_assert(strstr(err.msg, want), "want '%s' in: %s", want, err.msg);
    cr_assert(strstr(err.msg, p), "the message names the file: %s", err.msg);
    free(p);
}

static void expect_bad_public(const char *text, size_t len, const char *want)
{
    char *p = path_in("bad.pub");
    unlink(p);
    cr_assert_eq(ts_write_file(p, text, len), 0);
    char pub[AUTH_KEY_Z85_LEN + 1];
    sp_err_t err;
    int rc = auth_load_public(p, pub, &err);
    cr_assert_eq(rc, SP_EINVAL, "want '%s', got rc %d for:\n%.*s", want, rc, (int)len, text);
    cr_assert(strstr(err.msg, want), "want '%s' in: %s", want, err.msg);
    cr_assert(strstr(err.msg, p), "the message names the file: %s", err.msg);
    free(p);
}

/* expect(text, len, want) with text formatted from the arguments. */
#define BAD_FILE(expect, want, ...)                                                                          \
    do {                                                                                                     \
        char *t_ = sp_xasprintf(__VA_ARGS__);                                                                \
        expect(t_, strlen(t_), want);                                                                        \
        free(t_);                                                                                            \
    } while (0)
#define BAD_SECRET(want, ...) BAD_FILE(expect_bad_secret, want, __VA_ARGS__)
#define BAD_PUBLIC(want, ...) BAD_FILE(expect_bad_public, want, __VA_ARGS__)

Test(auth, damaged_secret_key_files_are_refused_with_the_problem)
{
    make_keys();
    const char *h = "# spate curve secret key v1\n";
    BAD_SECRET("is empty", "%s", "");
    BAD_SECRET("not a spate key file", "hello\npublic=%s\n", good_pub);
    BAD_SECRET("not a spate key file", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n");
    BAD_SECRET("format v2; this spate reads v1", "# spate curve secret key v2\npublic=%s\nsecret=%s\n", good_pub,
               good_sec);
    BAD_SECRET("bad format version", "# spate curve secret key v0\npublic=%s\nsecret=%s\n", good_pub, good_sec);
    BAD_SECRET("bad format version", "# spate curve secret key v1x\npublic=%s\nsecret=%s\n", good_pub, good_sec);
    BAD_SECRET("is a public key file", "# spate curve public key v1\npublic=%s\n", good_pub);
    BAD_SECRET("has no secret= line", "%spublic=%s\n", h, good_pub);
    BAD_SECRET("has no public= line", "%ssecret=%s\n", h, good_sec);
    BAD_SECRET("has 39 characters", "%spublic=%.39s\nsecret=%s\n", h, good_pub, good_sec);
    BAD_SECRET("has 41 characters", "%spublic=%s\nsecret=%sA\n", h, good_pub, good_sec);
    BAD_SECRET("has 0 characters", "%spublic=\nsecret=%s\n", h, good_sec);
    BAD_SECRET("not a Z85 character", "%spublic=%.39s~\nsecret=%s\n", h, good_pub, good_sec);
    BAD_SECRET("not a Z85 character", "%spublic=%.39s\"\nsecret=%s\n", h, good_pub, good_sec);
    BAD_SECRET("not a valid Z85 key", "%spublic=%s\nsecret=%s\n", h,
               "########################################", good_sec);
    BAD_SECRET("does not belong to its secret key", "%spublic=%s\nsecret=%s\n", h, other_pub, good_sec);
    BAD_SECRET("a second public key", "%spublic=%s\npublic=%s\nsecret=%s\n", h, good_pub, good_pub, good_sec);
    BAD_SECRET("unknown field 'private'", "%sprivate=%s\n", h, good_sec);
    BAD_SECRET("expected public=KEY or secret=KEY", "%sjust words\n", h);
    BAD_SECRET("line 3: the secret key has 41 characters", "%spublic=%s\nsecret= %s\n", h, good_pub, good_sec);
    /* bytes that are not text */
    char bin[200];
    int n = snprintf(bin, sizeof bin, "%spublic=%s\nsecret=%s\n", h, good_pub, good_sec);
    bin[40] = '\0';
    expect_bad_secret(bin, (size_t)n, "not printable ASCII");
    bin[40] = (char)0xc3;
    expect_bad_secret(bin, (size_t)n, "not printable ASCII");
    /* too large to be one */
    char *big = sp_xmalloc(8192);
    memset(big, '#', 8192);
    expect_bad_secret(big, 8192, "too large");
    free(big);
}

Test(auth, tolerable_variations_load)
{
    make_keys();
    const char *texts[] = {
        "# spate curve secret key v1\r\npublic=%s\r\nsecret=%s\r\n",             /* CRLF */
        "# spate curve secret key v1\n\n# a comment\nsecret=%2$s\npublic=%1$s\n", /* order, comments */
        "# spate curve secret key v1\npublic=%s\nsecret=%s",                     /* no final newline */
    };
    for (size_t i = 0; i < 3; i++) {
        char *p = path_in("ok.key");
        unlink(p);
        char text[512];
        snprintf(text, sizeof text, texts[i], good_pub, good_sec);
        ts_write_file(p, text, strlen(text));
        chmod(p, 0600);
        auth_keypair_t kp;
        sp_err_t err;
        cr_assert_eq(auth_load_keypair(p, &kp, &err), 0, "variation %zu: %s", i, err.msg);
        cr_assert_str_eq(kp.public_z85, good_pub);
        cr_assert_str_eq(kp.secret_z85, good_sec);
        free(p);
    }
}

Test(auth, damaged_public_key_files_are_refused_with_the_problem)
{
    make_keys();
    BAD_PUBLIC("is a secret key file: give the public key file instead", "# spate curve secret key v1\npublic=%s\nsecret=%s\n",
               good_pub, good_sec);
    BAD_PUBLIC("must not hold a secret key", "# spate curve public key v1\npublic=%s\nsecret=%s\n", good_pub,
               good_sec);
    BAD_PUBLIC("format v7", "# spate curve public key v7\npublic=%s\n", good_pub);
    BAD_PUBLIC("has no public= line", "# spate curve public key v1\n");
    BAD_PUBLIC("not a Z85 character", "# spate curve public key v1\npublic=%.20s,%.19s\n", good_pub, good_pub);
    BAD_PUBLIC("not a spate key file", "%s\n", good_pub); /* a bare key, without the header */

    /* a secret key file given where a public one belongs points at its .pub */
    sp_err_t err;
    cr_assert_eq(auth_keygen(dir, "drv", NULL, &err), 0, "%s", err.msg);
    char *key = path_in("drv.key"), *want = path_in("drv.pub");
    char pub[AUTH_KEY_Z85_LEN + 1];
    cr_assert_eq(auth_load_public(key, pub, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    free(key);
    free(want);
}

Test(auth, missing_and_odd_paths)
{
    auth_keypair_t kp;
    char pub[AUTH_KEY_Z85_LEN + 1];
    sp_err_t err;
    char *missing = path_in("nope.key");
    cr_assert_eq(auth_load_keypair(missing, &kp, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "does not exist") && strstr(err.msg, missing) && strstr(err.msg, "spate keygen"), "%s",
              err.msg);
    cr_assert_eq(auth_load_public(missing, pub, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "public key file") && strstr(err.msg, "does not exist"), "%s", err.msg);
    cr_assert_eq(auth_load_public(dir, pub, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "not a regular file"), "%s", err.msg);
    char *fifo = path_in("fifo.pub");
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    cr_assert_eq(auth_load_public(fifo, pub, &err), SP_EINVAL); /* and does not hang */
    cr_assert(strstr(err.msg, "not a regular file"), "%s", err.msg);
    free(missing);
    free(fifo);
}

/* ---- loopback ---------------------------------------------------------------------- */

Test(auth, loopback_endpoints)
{
    const char *yes[] = {"tcp://127.0.0.1:7077", "tcp://127.0.0.1:*", "tcp://127.1.2.3:1", "tcp://localhost:7077",
                         "tcp://LOCALHOST:7077", "tcp://[::1]:7077", "tcp://[::1]:*", "ipc:///tmp/spate.sock",
                         "inproc://driver", NULL};
    const char *no[] = {"tcp://*:7077", "tcp://0.0.0.0:7077", "tcp://10.0.0.1:7077", "tcp://192.168.1.5:*",
                        "tcp://[::]:7077", "tcp://[::ffff:127.0.0.1]:7077", "tcp://eth0:7077", "tcp://lo:7077",
                        "tcp://example.com:7077", "tcp://localhost.evil.com:7077", "tcp://127.0.0.1",
                        "tcp://127.0.0.1:", "tcp://127.0.0.1:port", "tcp://127.1:7077", "tcp://128.0.0.1:7077",
                        "tcp://1.127.0.0:7077", "tcp://10.0.0.1;127.0.0.1:7077", "tcp://:7077", "udp://127.0.0.1:7077",
                        "ws://127.0.0.1:7077", "ipc://", "inproc://", "", "127.0.0.1:7077", NULL};
    for (int i = 0; yes[i]; i++)
        cr_expect(auth_endpoint_is_loopback(yes[i]), "%s is loopback", yes[i]);
    for (int i = 0; no[i]; i++)
        cr_expect(!auth_endpoint_is_loopback(no[i]), "%s is not loopback", no[i]);
    cr_expect(!auth_endpoint_is_loopback(NULL));
}

/* ---- the ZAP handler ------------------------------------------------------------------
 * A CURVE ROUTER with the handler, and DEALER clients: a client is "in"
 * when a message it sent reaches the server. */

typedef struct zap_world {
    void *ctx, *server;
    auth_zap_t *zap;
    char endpoint[128];
    char *keys, *authorized;
    auth_keypair_t server_kp;
    int saved_stderr;
    char *log_path;
} zap_world_t;

static void load_kp(const char *keys, const char *name, auth_keypair_t *kp)
{
    char *p = sp_xasprintf("%s/%s.key", keys, name);
    sp_err_t err;
    cr_assert_eq(auth_load_keypair(p, kp, &err), 0, "%s", err.msg);
    free(p);
}

/* Put keys/name.pub into the authorised directory. */
static void authorise(zap_world_t *w, const char *name)
{
    char *from = sp_xasprintf("%s/%s.pub", w->keys, name);
    char *to = sp_xasprintf("%s/%s.pub", w->authorized, name);
    size_t n;
    char *text = ts_read_file(from, &n);
    cr_assert_not_null(text);
    cr_assert_eq(ts_write_file(to, text, n), 0);
    chmod(to, 0644);
    free(text);
    free(from);
    free(to);
}

static void world_start(zap_world_t *w)
{
    memset(w, 0, sizeof *w);
    sp_err_t err;
    w->keys = path_in("keys");
    w->authorized = path_in("authorized");
    cr_assert_eq(mkdir(w->authorized, 0755), 0);
    const char *names[] = {"server", "good", "bad", "late", NULL};
    for (int i = 0; names[i]; i++)
        cr_assert_eq(auth_keygen(w->keys, names[i], NULL, &err), 0, "%s", err.msg);
    authorise(w, "good");
    load_kp(w->keys, "server", &w->server_kp);

    /* the handler's log goes to a file the test reads */
    w->log_path = path_in("log");
    fflush(stderr);
    w->saved_stderr = dup(2);
    int fd = open(w->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    dup2(fd, 2);
    close(fd);

    w->ctx = zmq_ctx_new();
    cr_assert_eq(auth_zap_start(w->ctx, w->authorized, &w->zap, &err), 0, "%s", err.msg);
    w->server = zmq_socket(w->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(w->server, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(auth_server_socket(w->server, &w->server_kp, &err), 0, "%s", err.msg);
    cr_assert_eq(zmq_bind(w->server, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof w->endpoint;
    zmq_getsockopt(w->server, ZMQ_LAST_ENDPOINT, w->endpoint, &len);
}

static void world_stop(zap_world_t *w)
{
    zmq_close(w->server);
    long long t0 = ts_now_ms();
    auth_zap_stop(&w->zap);
    cr_assert_null(w->zap);
    auth_zap_stop(&w->zap); /* safe twice */
    zmq_ctx_term(w->ctx);   /* returns: the handler closed its sockets */
    cr_assert_lt(ts_now_ms() - t0, 5000, "stopping must not wait on anything");
    fflush(stderr);
    dup2(w->saved_stderr, 2);
    close(w->saved_stderr);
    free(w->keys);
    free(w->authorized);
    free(w->log_path);
    auth_keypair_clear(&w->server_kp);
}

/* A client with keypair NAME that trusts server_pub (default: the server's). */
static void *client(zap_world_t *w, const char *name, const char *server_pub)
{
    auth_keypair_t kp;
    load_kp(w->keys, name, &kp);
    void *s = zmq_socket(w->ctx, ZMQ_DEALER);
    int zero = 0, ivl = 20, ivl_max = 50;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, name, strlen(name));
    sp_err_t err;
    cr_assert_eq(auth_client_socket(s, &kp, server_pub ? server_pub : w->server_kp.public_z85, &err), 0, "%s",
                 err.msg);
    auth_keypair_clear(&kp);
    cr_assert_eq(zmq_connect(s, w->endpoint), 0);
    zmq_send(s, name, strlen(name), ZMQ_DONTWAIT); /* queued until the handshake completes */
    return s;
}

/* Wait up to timeout_ms for a message at the server; returns the sender's
 * routing id (malloc'd) or NULL. */
static char *server_recv(zap_world_t *w, int timeout_ms)
{
    zmq_pollitem_t it = {w->server, 0, ZMQ_POLLIN, 0};
    long long deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - ts_now_ms();
        if (left <= 0)
            return NULL;
        if (zmq_poll(&it, 1, (long)left) > 0 && (it.revents & ZMQ_POLLIN)) {
            char id[64], body[64];
            int n = zmq_recv(w->server, id, sizeof id - 1, 0);
            zmq_recv(w->server, body, sizeof body, 0);
            if (n > 0) {
                id[n] = '\0';
                return sp_xstrdup(id);
            }
        }
    }
}

static int log_count(zap_world_t *w, const char *needle)
{
    fflush(stderr);
    char *text = ts_read_file(w->log_path, NULL);
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

static char *log_text(zap_world_t *w)
{
    char *t = ts_read_file(w->log_path, NULL);
    return t ? t : sp_xstrdup("");
}

/* ZeroMQ 4.3 drops a client endpoint for good once the handler refused it;
 * connecting again is the client's business (the executor does it every
 * 5 s while no driver answers). */
static void reconnect(zap_world_t *w, void *s, const char *name)
{
    zmq_disconnect(s, w->endpoint);
    cr_assert_eq(zmq_connect(s, w->endpoint), 0);
    zmq_send(s, name, strlen(name), ZMQ_DONTWAIT);
}

static char *pub_of(zap_world_t *w, const char *name)
{
    char *p = sp_xasprintf("%s/%s.pub", w->keys, name);
    char pub[AUTH_KEY_Z85_LEN + 1];
    sp_err_t err;
    cr_assert_eq(auth_load_public(p, pub, &err), 0, "%s", err.msg);
    free(p);
    return sp_xstrdup(pub);
}

typedef struct log_wait {
    zap_world_t *w;
    const char *needle;
    int count;
} log_wait_t;

static bool log_reaches(void *ctx)
{
    log_wait_t *lw = ctx;
    return log_count(lw->w, lw->needle) >= lw->count;
}

Test(auth, zap_admits_authorised_keys_only)
{
    zap_world_t w;
    world_start(&w);
    void *good = client(&w, "good", NULL);
    char *who = server_recv(&w, 10000);
    cr_assert(who && strcmp(who, "good") == 0, "the authorised client must get through (got %s)", who ? who : "nothing");
    free(who);

    void *bad = client(&w, "bad", NULL);
    who = server_recv(&w, 1500);
    cr_assert_null(who, "an unauthorised client got through");
    char *bad_pub = pub_of(&w, "bad");
    char *line = sp_xasprintf("WARN  auth: refused executor at 127.0.0.1: public key %s is not in %s", bad_pub,
                              w.authorized);
    char *text = log_text(&w);
    cr_assert_eq(log_count(&w, line), 1, "want one '%s' in:\n%s", line, text);
    free(text);

    /* keys added while it runs count from the next connection */
    authorise(&w, "bad");
    reconnect(&w, bad, "bad");
    who = server_recv(&w, 10000);
    cr_assert(who && strcmp(who, "bad") == 0, "a newly authorised client must get through (got %s)",
              who ? who : "nothing");
    free(who);
    /* and removed ones are refused from the next connection */
    char *gone = sp_xasprintf("%s/good.pub", w.authorized);
    cr_assert_eq(unlink(gone), 0);
    reconnect(&w, good, "good");
    who = server_recv(&w, 1500);
    cr_assert_null(who, "a client whose key was removed got through again");

    zmq_close(good);
    zmq_close(bad);
    world_stop(&w);
    free(line);
    free(bad_pub);
    free(gone);
}

/* The "(and N more attempt(s) since the last message)" figures in text. */
static long suppressed_in(const char *text)
{
    long total = 0;
    for (const char *p = text; (p = strstr(p, "(and ")) != NULL; p++)
        total += strtol(p + 5, NULL, 10);
    return total;
}

Test(auth, refusals_are_logged_at_most_once_a_second_per_address)
{
    zap_world_t w;
    world_start(&w);
    enum { N = 12 };
    void *bad[N + 1];
    long long t0 = ts_now_ms();
    for (int i = 0; i < N; i++)
        bad[i] = client(&w, "bad", NULL);
    const char *needle = "refused executor at 127.0.0.1";
    log_wait_t lw = {&w, needle, 1};
    cr_assert(ts_poll(log_reaches, &lw, 10000), "no refusal logged");
    /* a second past the first line, one more attempt: its line counts the rest */
    usleep(1100000);
    bad[N] = client(&w, "bad", NULL);
    long long elapsed = ts_now_ms() - t0;
    lw.count = 2;
    char *text = log_text(&w);
    cr_assert(ts_poll(log_reaches, &lw, 10000), "the attempt a second later is logged too:\n%s", text);
    free(text);
    usleep(200000);
    text = log_text(&w);
    int lines = log_count(&w, needle);
    cr_assert_leq(lines, 2 + elapsed / 1000, "%d lines for %d attempts in %lld ms:\n%s", lines, N + 1, elapsed, text);
    cr_assert_eq(lines + suppressed_in(text), N + 1, "every attempt is logged or counted:\n%s", text);
    free(text);
    for (int i = 0; i <= N; i++)
        zmq_close(bad[i]);
    world_stop(&w);
}

Test(auth, a_client_trusting_another_server_key_never_connects)
{
    zap_world_t w;
    world_start(&w);
    auth_keypair_t other;
    load_kp(w.keys, "late", &other); /* any key that is not the server's */
    void *c = client(&w, "good", other.public_z85);
    char *who = server_recv(&w, 1500);
    cr_assert_null(who, "a client must not talk to a server without the key it trusts");
    zmq_close(c);
    auth_keypair_clear(&other);
    world_stop(&w);
}

Test(auth, damaged_authorised_key_files_are_skipped_with_one_warning)
{
    zap_world_t w;
    world_start(&w);
    char *junk = sp_xasprintf("%s/junk.pub", w.authorized);
    ts_write_file(junk, "not a key\n", 10);
    char *open_pub = sp_xasprintf("%s/late.pub", w.authorized);
    authorise(&w, "late");
    chmod(open_pub, 0666); /* anyone could swap the key in it: skipped */
    char *hidden = sp_xasprintf("%s/.bad.pub", w.authorized);
    char *bad_src = sp_xasprintf("%s/bad.pub", w.keys);
    size_t n;
    char *bad_text = ts_read_file(bad_src, &n);
    ts_write_file(hidden, bad_text, n); /* names starting with '.' are not read */

    void *good = client(&w, "good", NULL);
    char *who = server_recv(&w, 10000);
    cr_assert(who && strcmp(who, "good") == 0, "a damaged neighbour must not lock out a good key");
    free(who);
    void *late = client(&w, "late", NULL);
    void *bad = client(&w, "bad", NULL);
    who = server_recv(&w, 1500);
    cr_assert_null(who, "%s got through", who);
    char *text = log_text(&w);
    cr_assert_eq(log_count(&w, "skipping authorised key file"), 2, "one warning per bad file:\n%s", text);
    cr_assert(strstr(text, "junk.pub is not a spate key file"), "%s", text);
    cr_assert(strstr(text, "late.pub is writable by group or others"), "%s", text);
    free(text);
    zmq_close(good);
    zmq_close(late);
    zmq_close(bad);
    world_stop(&w);
    free(junk);
    free(open_pub);
    free(hidden);
    free(bad_src);
    free(bad_text);
}

Test(auth, a_directory_opened_to_others_while_running_refuses_everyone)
{
    zap_world_t w;
    world_start(&w);
    cr_assert_eq(chmod(w.authorized, 0777), 0);
    void *good = client(&w, "good", NULL);
    char *who = server_recv(&w, 1500);
    cr_assert_null(who, "%s got through a directory anyone may write", who);
    log_wait_t lw = {&w, "refusing every executor", 1};
    char *text = log_text(&w);
    cr_assert(ts_poll(log_reaches, &lw, 5000), "%s", text);
    free(text);
    text = log_text(&w);
    cr_assert(strstr(text, "writable by group or others"), "%s", text);
    free(text);
    cr_assert_eq(chmod(w.authorized, 0755), 0);
    reconnect(&w, good, "good");
    who = server_recv(&w, 10000);
    cr_assert(who && strcmp(who, "good") == 0, "fixed, it admits again");
    free(who);
    zmq_close(good);
    world_stop(&w);
}

Test(auth, zap_start_checks_its_directory_and_context)
{
    sp_err_t err;
    void *ctx = zmq_ctx_new();
    auth_zap_t *z = NULL;
    char *missing = path_in("missing");
    cr_assert_eq(auth_zap_start(ctx, missing, &z, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, missing) && strstr(err.msg, "No such file"), "%s", err.msg);
    char *open_dir = path_in("open");
    mkdir(open_dir, 0777);
    chmod(open_dir, 0777);
    cr_assert_eq(auth_zap_start(ctx, open_dir, &z, &err), SP_EINVAL);
    cr_assert(strstr(err.msg, "writable by group or others"), "%s", err.msg);
    cr_assert_null(z);

    cr_assert_eq(auth_zap_start(ctx, dir, &z, &err), 0, "%s", err.msg);
    auth_zap_t *z2 = NULL;
    cr_assert_eq(auth_zap_start(ctx, dir, &z2, &err), SP_EIO, "one handler per context");
    cr_assert(strstr(err.msg, "another handler serves this context"), "%s", err.msg);
    cr_assert_null(z2);
    auth_zap_stop(&z);
    /* and once stopped, the endpoint is free again */
    cr_assert_eq(auth_zap_start(ctx, dir, &z, &err), 0, "%s", err.msg);
    auth_zap_stop(&z);
    zmq_ctx_term(ctx);
    free(missing);
    free(open_dir);
}
