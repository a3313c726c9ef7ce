/* driver/resolve.c -- settles checkpoint, schema and plan before the first
 * batch, and refuses incompatible query changes before anything is
 * written. Owns nothing after it returns: the resolved_t holds it all. */
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sp_log.h"
#include "sp_util.h"

#define LOG "driver"

void resolve_free(resolved_t *r)
{
    ckpt_close(&r->ckpt);
    ckpt_query_free(&r->rec);
    schema_destroy(&r->schema);
    free(r->schema_text);
    plan_destroy(&r->plan);
    source_close(&r->source);
    memset(r, 0, sizeof *r);
}

int resolve_infer_schema(const source_listing_t *files, uint64_t max_bytes, schema_t **out,
                         sp_err_t *err)
{
    schema_infer_t *si = schema_infer_new();
    uint64_t total = max_bytes ? max_bytes : UINT64_MAX;
    /* Spread the sample over the files (each gets an equal share, at least
     * 256 KiB, from its start) rather than reading the first file alone. */
    uint64_t share = files->nfiles ? total / files->nfiles : total;
    if (share < (256u << 10))
        share = 256u << 10;
    size_t cap = 1 << 20, len = 0;
    char *buf = sp_xmalloc(cap);
    size_t files_read = 0;
    for (size_t i = 0; i < files->nfiles && total > 0; i++) {
        int fd = open(files->files[i].path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        files_read++;
        len = 0;
        uint64_t budget = share < total ? share : total;
        total -= budget;
        for (;;) {
            if (len == cap) {
                if (cap >= (64u << 20)) { /* a line this long: give up on this file */
                    len = 0;
                    break;
                }
                cap *= 2;
                buf = sp_xrealloc(buf, cap);
            }
            ssize_t n = read(fd, buf + len, cap - len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
            size_t off = 0;
            char *nl;
            while ((nl = memchr(buf + off, '\n', len - off)) != NULL) {
                size_t linelen = (size_t)(nl - (buf + off));
                schema_infer_line(si, buf + off, linelen);
                off += linelen + 1;
                budget = budget > linelen + 1 ? budget - (linelen + 1) : 0;
                if (budget == 0)
                    break;
            }
            memmove(buf, buf + off, len - off);
            len -= off;
            if (budget == 0)
                break;
        }
        if (len > 0 && budget > 0)
            schema_infer_line(si, buf, len);
        close(fd);
        total += budget; /* what a small file left unread goes to the others */
    }
    free(buf);
    schema_t *s = schema_infer_result(si);
    size_t rows = schema_infer_rows(si);
    schema_infer_destroy(&si);
    if (s == NULL)
        return sp_err_set(err, SP_EINVAL,
                          "cannot infer a schema: no JSON object found in the %zu file(s) read; "
                          "give one with --schema \"col TYPE, ...\"", files_read);
    SP_INFO(LOG, "inferred the schema from %zu row(s) in %zu file(s)", rows, files_read);
    *out = s;
    return 0;
}

/* Compare the stored query with this one; SP_EINCOMPAT names the first
 * difference. */
static int check_compatible(const char *dir, const ckpt_query_t *old, const ckpt_query_t *now,
                            const char *given_schema, const char *stored_schema,
                            uint32_t given_groups, sp_err_t *err)
{
    const char *what = NULL;
    const char *was = NULL, *is = NULL;
    char gbuf[2][32];
    if (strcmp(old->source_name, now->source_name) != 0) {
        what = "source name";
        was = old->source_name;
        is = now->source_name;
    } else if (strcmp(old->source_format, now->source_format) != 0) {
        what = "source format";
        was = old->source_format;
        is = now->source_format;
    } else if (strcmp(old->source_path, now->source_path) != 0) {
        what = "source directory";
        was = old->source_path;
        is = now->source_path;
    } else if (given_schema && strcmp(given_schema, stored_schema) != 0) {
        what = "schema";
        was = stored_schema;
        is = given_schema;
    } else if (strcmp(old->group_signature, now->group_signature) != 0) {
        what = "grouping keys";
        was = old->group_signature[0] ? old->group_signature : "(none)";
        is = now->group_signature[0] ? now->group_signature : "(none)";
    } else if (strcmp(old->aggs_signature, now->aggs_signature) != 0) {
        what = "aggregates";
        was = old->aggs_signature[0] ? old->aggs_signature : "(none)";
        is = now->aggs_signature[0] ? now->aggs_signature : "(none)";
    } else if (given_groups && given_groups != old->key_groups) {
        what = "number of key groups";
        snprintf(gbuf[0], sizeof gbuf[0], "%u", old->key_groups);
        snprintf(gbuf[1], sizeof gbuf[1], "%u", given_groups);
        was = gbuf[0];
        is = gbuf[1];
    }
    if (what == NULL)
        return 0;
    return sp_err_set(err, SP_EINCOMPAT,
                      "the query cannot resume from checkpoint %s: its %s changed (checkpoint: %s; "
                      "query: %s). The state depends on it: start with a new, empty checkpoint "
                      "directory, or run the original query",
                      dir, what, was, is);
}

/* Block until the source directory holds a file, or *stop. */
static int wait_for_files(const driver_opts_t *o, source_t *src, ckpt_t *ckpt,
                          atomic_int *stop, resolve_idle_fn idle, void *idle_ctx,
                          source_listing_t *out, sp_err_t *err)
{
    bool said = false;
    for (;;) {
        int rc;
        if (ckpt) {
            rc = source_list_new(src, ckpt, out, err);
        } else {
            /* No checkpoint yet: nothing is seen. List with a throwaway
             * filter-free pass. */
            rc = source_list_new(src, NULL, out, err);
        }
        if (rc != 0)
            return rc;
        if (out->nfiles > 0)
            return 0;
        source_listing_free(out);
        if (o->trigger == TRIGGER_ONCE || o->trigger == TRIGGER_AVAILABLE_NOW)
            return SP_ENOTFOUND;
        if (!said) {
            SP_INFO(LOG, "waiting for the first file in %s to infer the schema (or give --schema)",
                    source_path(src));
            said = true;
        }
        struct pollfd pfd = {source_watch_fd(src), POLLIN, 0};
        poll(&pfd, pfd.fd >= 0 ? 1 : 0, 200);
        source_watch_drain(src);
        if (idle)
            idle(idle_ctx);
        if (atomic_load(stop))
            return SP_ESTOPPED;
    }
}

static char *join_outputs(const plan_t *p)
{
    sp_buf_t b = SP_BUF_INIT;
    for (size_t i = 0; i < p->noutputs; i++) {
        if (i)
            sp_buf_putc(&b, ',');
        sp_buf_append(&b, p->outputs[i].name, strlen(p->outputs[i].name));
    }
    return sp_buf_cstr(&b);
}

static const char *mode_name(output_mode_t m) { return m == OUTPUT_UPDATE ? "update" : "complete"; }

/* ckpt_upgrade's key codec: the query layer's (query/value.h). */
static int upgrade_key(void *ctx, uint32_t from, const void *key, size_t klen, sp_buf_t *out,
                       sp_err_t *err)
{
    (void)ctx;
    return sp_key_upgrade(from, key, klen, out, err);
}

int resolve_query(const driver_opts_t *o, atomic_int *stop, resolve_idle_fn idle, void *idle_ctx,
                  resolved_t *r, sp_err_t *err)
{
    memset(r, 0, sizeof *r);
    sql_stmt_t *stmt = NULL;
    schema_t *given = NULL;
    char *given_text = NULL;
    int rc = sql_parse(o->sql, &stmt, err);
    if (rc != 0)
        return rc;
    if (o->schema) {
        if ((rc = schema_parse(o->schema, &given, err)) != 0)
            goto out;
        given_text = schema_format(given);
    }
    if ((rc = sink_validate(o->sink, err)) != 0)
        goto out;
    if ((rc = source_open(o->source_format, o->source_path, &r->source, err)) != 0)
        goto out;

    /* Open an existing checkpoint first: nothing is created until the query
     * has been checked. */
    rc = ckpt_open(o->checkpoint, 0, &r->ckpt, err);
    bool fresh = false;
    if (rc == SP_ENOTFOUND) {
        fresh = true;
        sp_err_clear(err);
    } else if (rc != 0) {
        goto out;
    } else {
        rc = ckpt_query_read(r->ckpt, &r->rec, err);
        if (rc == SP_ENOTFOUND) {
            fresh = true; /* created earlier, but never got a query record */
            sp_err_clear(err);
        } else if (rc != 0) {
            goto out;
        }
    }

    if (!fresh) {
        /* Resume: the stored schema rules. */
        if ((rc = schema_parse(r->rec.schema, &r->schema, err)) != 0) {
            sp_err_wrap(err, SP_ECORRUPT, "checkpoint %s holds a bad schema", o->checkpoint);
            rc = SP_ECORRUPT;
            goto out;
        }
        r->schema_text = sp_xstrdup(r->rec.schema);
        if ((rc = plan_bind(stmt, o->source_name, r->schema, &r->plan, err)) != 0)
            goto out;
        ckpt_query_t now = {0};
        now.source_name = (char *)o->source_name;
        now.source_format = (char *)o->source_format;
        now.source_path = (char *)source_path(r->source);
        char *gsig = plan_group_signature(r->plan), *asig = plan_aggs_signature(r->plan);
        now.group_signature = gsig;
        now.aggs_signature = asig;
        rc = check_compatible(o->checkpoint, &r->rec, &now, given_text, r->rec.schema, o->key_groups, err);
        free(gsig);
        free(asig);
        if (rc != 0)
            goto out;
        /* A checkpoint of an older format is rewritten to today's before
         * anything writes to it (in one transaction). */
        uint32_t from;
        uint64_t entries;
        if ((rc = ckpt_upgrade(r->ckpt, upgrade_key, NULL, &from, &entries, err)) != 0)
            goto out;
        if (from != CKPT_FORMAT_VERSION)
            SP_INFO(LOG, "checkpoint %s upgraded from format %u to %u (%llu state entries re-keyed)",
                    o->checkpoint, from, CKPT_FORMAT_VERSION, (unsigned long long)entries);
    } else {
        if (given) {
            r->schema = given;
            given = NULL;
        } else {
            source_listing_t files;
            rc = wait_for_files(o, r->source, r->ckpt, stop, idle, idle_ctx, &files, err);
            if (rc != 0)
                goto out;
            rc = resolve_infer_schema(&files, o->infer_bytes, &r->schema, err);
            source_listing_free(&files);
            if (rc != 0)
                goto out;
        }
        r->schema_text = schema_format(r->schema);
        if ((rc = plan_bind(stmt, o->source_name, r->schema, &r->plan, err)) != 0)
            goto out;
        if (r->ckpt == NULL) {
            if ((rc = ckpt_open(o->checkpoint, CKPT_CREATE, &r->ckpt, err)) != 0)
                goto out;
            r->created = true;
        } else {
            /* created by an older release that stopped before its query
             * record: no state, but an old format record */
            uint32_t from;
            uint64_t entries;
            if ((rc = ckpt_upgrade(r->ckpt, upgrade_key, NULL, &from, &entries, err)) != 0)
                goto out;
        }
        ckpt_query_free(&r->rec);
        sp_uuid_v4(r->rec.query_id);
        r->rec.created_ms = sp_wall_ms();
        r->rec.source_name = sp_xstrdup(o->source_name);
        r->rec.source_format = sp_xstrdup(o->source_format);
        r->rec.source_path = sp_xstrdup(source_path(r->source));
        r->rec.schema = sp_xstrdup(r->schema_text);
        r->rec.group_signature = plan_group_signature(r->plan);
        r->rec.aggs_signature = plan_aggs_signature(r->plan);
        r->rec.key_groups = o->key_groups ? o->key_groups : RESOLVE_DEFAULT_KEY_GROUPS;
    }
    /* What may change between runs is recorded as of this start. */
    free(r->rec.name);
    free(r->rec.sql);
    free(r->rec.output_names);
    free(r->rec.output_mode);
    free(r->rec.sink);
    const char *name = o->name;
    if (name == NULL)
        name = strncmp(o->sink, "memory:", 7) == 0 ? o->sink + 7 : "";
    r->rec.name = sp_xstrdup(name);
    r->rec.sql = sp_xstrdup(o->sql);
    r->rec.output_names = join_outputs(r->plan);
    r->rec.output_mode = sp_xstrdup(mode_name(o->output_mode));
    r->rec.sink = sp_xstrdup(o->sink);
    rc = ckpt_query_write(r->ckpt, &r->rec, err);
out:
    sql_stmt_destroy(&stmt);
    schema_destroy(&given);
    free(given_text);
    if (rc != 0)
        resolve_free(r);
    return rc;
}
