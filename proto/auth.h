/* proto/auth.h -- who may join: CURVE key files, the ZAP handler that lets
 * in only executors whose public key is authorised, and the socket options
 * that turn CURVE on for the driver's ROUTER and an executor's DEALER.
 *
 * The model (as ssh's authorized_keys): the driver holds a keypair and a
 * directory of authorised executor public keys; each executor holds its own
 * keypair and the driver's public key. CURVE encrypts and authenticates the
 * traffic both ways; the ZAP handler decides which client keys may connect.
 *
 * Key files (text, ASCII, one "name=value" per line; blank lines and lines
 * starting with '#' other than the first are ignored; "\r\n" is accepted):
 *
 *   file       mode   content
 *   NAME.key   0600   "# spate curve secret key v1\n"
 *                     "public=<40 Z85 characters>\n"
 *                     "secret=<40 Z85 characters>\n"
 *   NAME.pub   0644   "# spate curve public key v1\n"
 *                     "public=<40 Z85 characters>\n"
 *
 * The first line names the kind and the format version: a file of a newer
 * version is refused with a message saying so. A key is the canonical Z85
 * text of 32 bytes (ZeroMQ's zmq_z85_encode). A secret key file readable or
 * writable by group or others is refused, as ssh refuses such a private
 * key; its public key must be the one its secret key derives. A public key
 * file must not hold a secret key.
 *
 * Errors: functions return 0 or a negative SP_E* code, with a message in
 * err (may be NULL) that names the file and the problem. Problems with a
 * file the user named (missing, wrong permissions, damaged, of another kind
 * or version) are SP_EINVAL, so the command exits with status 2; SP_EIO is
 * for the system failing (a read error, ZeroMQ refusing an option). */
#ifndef SP_AUTH_H
#define SP_AUTH_H

#include <stdbool.h>

#include "sp_err.h"

/* Characters of a Z85 key (32 bytes), without the terminating NUL. */
#define AUTH_KEY_Z85_LEN 40
/* The ZAP domain the driver's ROUTER announces. */
#define AUTH_ZAP_DOMAIN "spate"

/* A CURVE keypair as NUL-terminated Z85 text. Plain value: copy freely, but
 * it holds a secret: wipe it with auth_keypair_clear when done. */
typedef struct auth_keypair {
    char public_z85[AUTH_KEY_Z85_LEN + 1];
    char secret_z85[AUTH_KEY_Z85_LEN + 1];
} auth_keypair_t;

/* ---- key files ----------------------------------------------------------- */

/* Generate a keypair and write DIR/NAME.key (mode 0600) and DIR/NAME.pub
 * (mode 0644). DIR is created (mode 0700) when absent; its parent must
 * exist. NAME is 1 to 64 letters, digits, '.', '-', '_', not starting with
 * '.'. Never overwrites: when either file exists nothing is written and the
 * error says which. On success public_z85 (may be NULL) receives the public
 * key. Errors: SP_EINVAL (bad name, a file exists, DIR is not a directory,
 * no CURVE support in this libzmq), SP_EIO (cannot write; nothing is left
 * behind). */
int auth_keygen(const char *dir, const char *name, char public_z85[AUTH_KEY_Z85_LEN + 1],
                sp_err_t *err);

/* Load a secret key file (NAME.key) into *out, after checking its
 * permissions, format, and that its public key matches its secret key.
 * Errors: SP_EINVAL, SP_EIO (see the top of this file); *out is then
 * zeroed. */
int auth_load_keypair(const char *path, auth_keypair_t *out, sp_err_t *err);

/* Load the public key of a public key file (NAME.pub) into out. A secret
 * key file is refused with a message pointing at its .pub. Errors:
 * SP_EINVAL, SP_EIO. */
int auth_load_public(const char *path, char out[AUTH_KEY_Z85_LEN + 1], sp_err_t *err);

/* Overwrite the secret (and public) key text with zeros. */
void auth_keypair_clear(auth_keypair_t *kp);

/* ---- the ZAP handler ----------------------------------------------------- */

/* A thread answering ZeroMQ authentication requests (ZAP, RFC 27) for every
 * socket of one ZeroMQ context. Opaque. */
typedef struct auth_zap auth_zap_t;

/* Start the handler on zctx (borrowed; it must outlive the handler): a
 * thread with a REP socket bound to inproc://zeromq.zap.01. Start it before
 * any CURVE server socket of the context binds, or early clients are let in
 * without a check.
 *
 * For each request it allows the client only when the mechanism is CURVE
 * and some *.pub file in authorized_dir (not starting with '.') holds the
 * client's public key; it answers 200 with the key file's name (without
 * .pub) as user id, or 400. The directory is read again on each request, so
 * keys added or removed while the driver runs count from the next
 * connection. Each refusal is logged at WARN ("refused executor at ADDRESS:
 * public key Z85 is not in DIR"), at most once a second per address; an
 * unreadable, damaged, or group/other-writable .pub file is skipped with a
 * warning (once per file name). Should the directory itself vanish or
 * become writable by group or others, every client is refused (with one
 * warning) until that is fixed.
 *
 * authorized_dir is copied. On success *out owns the running handler: stop
 * it with auth_zap_stop. Errors: SP_EINVAL (authorized_dir missing, not a
 * directory, or writable by group or others -- anyone who can write there
 * could authorise themselves), SP_EIO (another ZAP handler already serves
 * this context, or ZeroMQ or thread creation failed). */
int auth_zap_start(void *zctx, const char *authorized_dir, auth_zap_t **out, sp_err_t *err);

/* Stop the handler: tell its thread, join it (it closes its sockets, so the
 * context can then be terminated), free it, and set *z to NULL. Returns
 * once the thread has ended; safe on NULL and twice. Call it before
 * zmq_ctx_term on the context, after closing the sockets it served. */
void auth_zap_stop(auth_zap_t **z);

/* ---- sockets ---------------------------------------------------------------- */

/* Make sock a CURVE server with kp's secret key and ZAP domain "spate".
 * Call before bind. Errors: SP_EINVAL (this libzmq has no CURVE), SP_EIO. */
int auth_server_socket(void *sock, const auth_keypair_t *kp, sp_err_t *err);

/* Make sock a CURVE client with its own keypair kp that accepts only the
 * server holding the secret key of server_public_z85. Call before connect.
 * A server with another key never completes the handshake: the socket
 * keeps retrying and nothing is delivered. Caveat: when the server's ZAP
 * handler refuses kp (or only one side uses CURVE), ZeroMQ 4.3 drops the
 * endpoint for good; to try again later -- the key may have been
 * authorised meanwhile -- zmq_disconnect and zmq_connect again. Errors as
 * auth_server_socket. */
int auth_client_socket(void *sock, const auth_keypair_t *kp,
                       const char server_public_z85[AUTH_KEY_Z85_LEN + 1], sp_err_t *err);

/* True when a ZeroMQ bind endpoint can only be reached from this machine:
 * "ipc:" and "inproc:" endpoints, and "tcp:" ones on 127.0.0.0/8, [::1] or
 * localhost (any port). False for everything else: the wildcard "*",
 * 0.0.0.0, other addresses, interface names, malformed endpoints. */
bool auth_endpoint_is_loopback(const char *endpoint);

#endif
