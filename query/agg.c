/* query/agg.c -- the aggregation kernel: an open-addressing hash table from
 * encoded group key to one cell per aggregate, the byte form of the cells
 * (table in agg.h), and merging and finalizing of those bytes. Owns its
 * entries and an arena for keys and MIN/MAX strings; knows nothing of
 * files, sockets or LMDB. */
#include "agg.h"

#include <stdlib.h>
#include <string.h>

/* ---- arena: stable addresses for keys and strings ------------------------ */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block_t;

typedef struct arena {
    arena_block_t *head; /* current block; older ones follow */
    size_t total;        /* bytes reserved, for memory figures */
} arena_t;

static void *arena_alloc(arena_t *a, size_t n)
{
    if (a->head == NULL || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        arena_block_t *b = sp_xmalloc(sizeof(arena_block_t) + cap);
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
        a->total += cap;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += (n + 7) & ~(size_t)7;
    if (a->head->used > a->head->cap)
        a->head->used = a->head->cap;
    return p;
}

/* Keep the newest block, free the rest. */
static void arena_reset(arena_t *a)
{
    if (a->head == NULL)
        return;
    arena_block_t *b = a->head->next;
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head->next = NULL;
    a->head->used = 0;
    a->total = a->head->cap;
}

static void arena_free(arena_t *a)
{
    arena_block_t *b = a->head;
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- table ------------------------------------------------------------------ */

/* One aggregate's running state. n counts values (count, sum, avg), or is
 * 1 once MIN/MAX holds a value. */
typedef struct agg_cell {
    sp_value_t val;
    int64_t n;
} agg_cell_t;

typedef struct agg_entry {
    uint64_t hash;
    const char *key; /* in the arena */
    uint32_t klen;
    uint32_t pad_;
    agg_cell_t cells[];
} agg_entry_t;

struct agg_table {
    agg_spec_t *aggs;
    size_t naggs, ngroups;
    size_t stride;       /* bytes per entry */
    char *entries;       /* count entries of `stride` bytes, insertion order */
    size_t count, entries_cap;
    uint32_t *index;     /* entry number + 1; 0 is empty */
    size_t index_mask;   /* index size - 1 (a power of two) */
    arena_t arena;
    sp_buf_t keybuf;     /* scratch for encoding a row's key */
    /* The previous row's group values and entry: rows come in runs of one
     * group (a sensor session, a user's clicks), so a row equal to the last
     * one skips encoding, hashing and probing. Strings point into the
     * entry's key bytes in the arena, which never move. */
    size_t last_entry;   /* entry number + 1; 0: none */
};

static agg_entry_t *entry_at(const agg_table_t *t, size_t i)
{
    return (agg_entry_t *)(t->entries + i * t->stride);
}

agg_table_t *agg_table_new(const agg_spec_t *aggs, size_t naggs, size_t ngroups)
{
    agg_table_t *t = sp_xcalloc(1, sizeof *t);
    t->aggs = sp_xmalloc((naggs ? naggs : 1) * sizeof(agg_spec_t));
    if (naggs)
        memcpy(t->aggs, aggs, naggs * sizeof(agg_spec_t));
    t->naggs = naggs;
    t->ngroups = ngroups;
    t->stride = sizeof(agg_entry_t) + naggs * sizeof(agg_cell_t);
    t->index_mask = 63;
    t->index = sp_xcalloc(t->index_mask + 1, sizeof(uint32_t));
    return t;
}

void agg_table_destroy(agg_table_t **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    agg_table_t *t = *tp;
    free(t->aggs);
    free(t->entries);
    free(t->index);
    arena_free(&t->arena);
    sp_buf_free(&t->keybuf);
    free(t);
    *tp = NULL;
}

void agg_table_clear(agg_table_t *t)
{
    t->count = 0;
    t->last_entry = 0;
    memset(t->index, 0, (t->index_mask + 1) * sizeof(uint32_t));
    arena_reset(&t->arena);
}

size_t agg_table_count(const agg_table_t *t) { return t->count; }

size_t agg_table_memory(const agg_table_t *t)
{
    return sizeof *t + t->entries_cap * t->stride + (t->index_mask + 1) * sizeof(uint32_t) +
           t->arena.total + t->keybuf.cap;
}

static void index_grow(agg_table_t *t)
{
    size_t size = (t->index_mask + 1) * 2;
    uint32_t *idx = sp_xcalloc(size, sizeof(uint32_t));
    for (size_t i = 0; i < t->count; i++) {
        size_t slot = entry_at(t, i)->hash & (size - 1);
        while (idx[slot] != 0)
            slot = (slot + 1) & (size - 1);
        idx[slot] = (uint32_t)(i + 1);
    }
    free(t->index);
    t->index = idx;
    t->index_mask = size - 1;
}

/* Find the entry for key, or insert a fresh one (cells zeroed: count 0,
 * values NULL). */
static agg_entry_t *find_or_insert(agg_table_t *t, const void *key, size_t klen, uint64_t hash)
{
    size_t slot = hash & t->index_mask;
    for (;;) {
        uint32_t e = t->index[slot];
        if (e == 0)
            break;
        agg_entry_t *ent = entry_at(t, e - 1);
        if (ent->hash == hash && ent->klen == klen && (klen == 0 || memcmp(ent->key, key, klen) == 0))
            return ent;
        slot = (slot + 1) & t->index_mask;
    }
    if (t->count == t->entries_cap) {
        t->entries_cap = t->entries_cap ? t->entries_cap * 2 : 64;
        t->entries = sp_xrealloc(t->entries, t->entries_cap * t->stride);
    }
    agg_entry_t *ent = entry_at(t, t->count);
    memset(ent, 0, t->stride);
    ent->hash = hash;
    char *k = arena_alloc(&t->arena, klen);
    if (klen)
        memcpy(k, key, klen);
    ent->key = k;
    ent->klen = (uint32_t)klen;
    t->count++;
    t->index[slot] = (uint32_t)t->count;
    if (t->count * 2 > t->index_mask + 1)
        index_grow(t);
    return ent;
}

/* Replace a MIN/MAX cell's value, copying string bytes into the arena. */
static void cell_set_value(agg_table_t *t, agg_cell_t *c, const sp_value_t *v)
{
    c->val = *v;
    if (v->type == SP_TYPE_STRING && v->u.s.len > 0) {
        char *p = arena_alloc(&t->arena, v->u.s.len);
        memcpy(p, v->u.s.ptr, v->u.s.len);
        c->val.u.s.ptr = p;
    }
    c->n = 1;
}

static double as_double(const sp_value_t *v)
{
    return v->type == SP_TYPE_BIGINT ? (double)v->u.i : v->u.d;
}

/* Fold one input value into a cell (the executor's per-row step). */
static void cell_add_value(agg_table_t *t, const agg_spec_t *a, agg_cell_t *c, const sp_value_t *v)
{
    switch (a->func) {
    case AGG_COUNT_STAR:
        c->n++;
        return;
    case AGG_COUNT:
        if (v->type != SP_TYPE_NULL)
            c->n++;
        return;
    case AGG_SUM:
        if (v->type == SP_TYPE_NULL)
            return;
        if (a->out_type == SP_TYPE_BIGINT)
            c->val.u.i = (int64_t)((uint64_t)c->val.u.i + (uint64_t)v->u.i);
        else
            c->val.u.d += as_double(v);
        c->n++;
        return;
    case AGG_AVG:
        if (v->type == SP_TYPE_NULL)
            return;
        c->val.u.d += as_double(v);
        c->n++;
        return;
    case AGG_MIN:
    case AGG_MAX:
        if (v->type == SP_TYPE_NULL)
            return;
        if (c->n == 0) {
            cell_set_value(t, c, v);
        } else {
            int cmp = sp_value_cmp(v, &c->val);
            if ((a->func == AGG_MIN && cmp < 0) || (a->func == AGG_MAX && cmp > 0))
                cell_set_value(t, c, v);
        }
        return;
    }
}

void agg_table_add_row(agg_table_t *t, const sp_value_t *keys, const sp_value_t *slots)
{
    /* Rows of one group often come in runs: the key's bytes are compared
     * with the last group's before the hash look-up. */
    t->keybuf.len = 0;
    for (size_t i = 0; i < t->ngroups; i++)
        sp_key_encode_value(&t->keybuf, &keys[i]);
    agg_entry_t *ent = t->last_entry ? entry_at(t, t->last_entry - 1) : NULL;
    if (ent == NULL || ent->klen != t->keybuf.len ||
        (ent->klen && memcmp(ent->key, t->keybuf.data, ent->klen) != 0)) {
        uint64_t hash = sp_key_hash(t->keybuf.data, t->keybuf.len);
        ent = find_or_insert(t, t->keybuf.data, t->keybuf.len, hash);
        t->last_entry = (size_t)(((char *)ent - t->entries) / t->stride) + 1;
    }
    static const sp_value_t null_value = {.type = SP_TYPE_NULL};
    for (size_t j = 0; j < t->naggs; j++) {
        const agg_spec_t *a = &t->aggs[j];
        cell_add_value(t, a, &ent->cells[j], a->slot >= 0 ? &slots[a->slot] : &null_value);
    }
}

/* ---- state bytes ------------------------------------------------------------ */

static void put_i64(sp_buf_t *b, int64_t x)
{
    unsigned char p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((uint64_t)x >> (8 * i));
    sp_buf_append(b, p, 8);
}

static void put_f64(sp_buf_t *b, double d)
{
    int64_t x;
    memcpy(&x, &d, 8);
    put_i64(b, x);
}

static int64_t get_i64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return (int64_t)x;
}

static double get_f64(const unsigned char *p)
{
    int64_t x = get_i64(p);
    double d;
    memcpy(&d, &x, 8);
    return d;
}

static void encode_cells(const agg_spec_t *aggs, size_t naggs, const agg_cell_t *cells, sp_buf_t *out)
{
    for (size_t j = 0; j < naggs; j++) {
        const agg_spec_t *a = &aggs[j];
        const agg_cell_t *c = &cells[j];
        switch (a->func) {
        case AGG_COUNT_STAR:
        case AGG_COUNT:
            put_i64(out, c->n);
            break;
        case AGG_SUM:
            sp_buf_putc(out, c->n > 0 ? 1 : 0);
            if (a->out_type == SP_TYPE_BIGINT)
                put_i64(out, c->n > 0 ? c->val.u.i : 0);
            else
                put_f64(out, c->n > 0 ? c->val.u.d : 0.0);
            break;
        case AGG_AVG:
            put_f64(out, c->val.u.d);
            put_i64(out, c->n);
            break;
        case AGG_MIN:
        case AGG_MAX: {
            sp_value_t v = c->n > 0 ? c->val : SP_VALUE_NULL;
            sp_state_encode_value(out, &v);
            break;
        }
        }
    }
}

/* Decode state bytes into cells (strings borrow from buf). */
static int decode_cells(const agg_spec_t *aggs, size_t naggs, const void *buf, size_t len,
                        agg_cell_t *cells, sp_err_t *err)
{
    const unsigned char *p = buf;
    size_t pos = 0;
    for (size_t j = 0; j < naggs; j++) {
        const agg_spec_t *a = &aggs[j];
        agg_cell_t *c = &cells[j];
        memset(c, 0, sizeof *c);
        switch (a->func) {
        case AGG_COUNT_STAR:
        case AGG_COUNT:
            if (len - pos < 8)
                goto truncated;
            c->n = get_i64(p + pos);
            pos += 8;
            if (c->n < 0)
                return sp_err_set(err, SP_ECORRUPT, "aggregate state: negative count %lld",
                                  (long long)c->n);
            break;
        case AGG_SUM:
            if (len - pos < 9)
                goto truncated;
            if (p[pos] > 1)
                return sp_err_set(err, SP_ECORRUPT, "aggregate state: bad sum flag %u", p[pos]);
            c->n = p[pos];
            if (a->out_type == SP_TYPE_BIGINT) {
                c->val.type = SP_TYPE_BIGINT;
                c->val.u.i = get_i64(p + pos + 1);
            } else {
                c->val.type = SP_TYPE_DOUBLE;
                c->val.u.d = get_f64(p + pos + 1);
            }
            pos += 9;
            break;
        case AGG_AVG:
            if (len - pos < 16)
                goto truncated;
            c->val.type = SP_TYPE_DOUBLE;
            c->val.u.d = get_f64(p + pos);
            c->n = get_i64(p + pos + 8);
            pos += 16;
            if (c->n < 0)
                return sp_err_set(err, SP_ECORRUPT, "aggregate state: negative avg count");
            break;
        case AGG_MIN:
        case AGG_MAX: {
            int rc = sp_state_decode_value(buf, len, &pos, &c->val, err);
            if (rc != 0)
                return sp_err_wrap(err, rc, "aggregate state");
            if (c->val.type != SP_TYPE_NULL && c->val.type != a->in_type)
                return sp_err_set(err, SP_ECORRUPT, "aggregate state: %s of a %s column holds a %s",
                                  agg_func_name(a->func), sp_type_name(a->in_type),
                                  sp_type_name(c->val.type));
            c->n = c->val.type != SP_TYPE_NULL;
            break;
        }
        }
    }
    if (pos != len)
        return sp_err_set(err, SP_ECORRUPT, "aggregate state: %zu bytes left over", len - pos);
    return 0;
truncated:
    return sp_err_set(err, SP_ECORRUPT, "aggregate state truncated (%zu bytes)", len);
}

/* dst (+)= src, cell by cell. set_value copies MIN/MAX values into place. */
static void cells_merge(const agg_spec_t *aggs, size_t naggs, agg_cell_t *dst, const agg_cell_t *src,
                        agg_table_t *owner)
{
    for (size_t j = 0; j < naggs; j++) {
        const agg_spec_t *a = &aggs[j];
        agg_cell_t *d = &dst[j];
        const agg_cell_t *s = &src[j];
        switch (a->func) {
        case AGG_COUNT_STAR:
        case AGG_COUNT:
            d->n += s->n;
            break;
        case AGG_SUM:
            if (s->n == 0)
                break;
            if (d->n == 0)
                d->val = s->val;
            else if (a->out_type == SP_TYPE_BIGINT)
                d->val.u.i = (int64_t)((uint64_t)d->val.u.i + (uint64_t)s->val.u.i);
            else
                d->val.u.d += s->val.u.d;
            d->n = 1;
            break;
        case AGG_AVG:
            d->val.u.d += s->val.u.d;
            d->n += s->n;
            break;
        case AGG_MIN:
        case AGG_MAX:
            if (s->n == 0)
                break;
            if (d->n == 0 || (a->func == AGG_MIN ? sp_value_cmp(&s->val, &d->val) < 0
                                                 : sp_value_cmp(&s->val, &d->val) > 0)) {
                if (owner)
                    cell_set_value(owner, d, &s->val);
                else {
                    d->val = s->val;
                    d->n = 1;
                }
            }
            break;
        }
    }
}

void agg_table_touch(agg_table_t *t, const void *key, size_t klen)
{
    (void)find_or_insert(t, key, klen, sp_key_hash(key, klen));
}

int agg_table_merge_entry(agg_table_t *t, const void *key, size_t klen, const void *state,
                          size_t slen, sp_err_t *err)
{
    sp_value_t kv[t->ngroups ? t->ngroups : 1];
    int rc = sp_key_decode(key, klen, kv, t->ngroups, err);
    if (rc != 0)
        return sp_err_wrap(err, rc, "group key");
    agg_cell_t cells[t->naggs ? t->naggs : 1];
    rc = decode_cells(t->aggs, t->naggs, state, slen, cells, err);
    if (rc != 0)
        return rc;
    agg_entry_t *ent = find_or_insert(t, key, klen, sp_key_hash(key, klen));
    cells_merge(t->aggs, t->naggs, ent->cells, cells, t);
    return 0;
}

bool agg_table_next(const agg_table_t *t, size_t *pos, const void **key, size_t *klen,
                    uint64_t *hash, sp_buf_t *state_out)
{
    if (*pos >= t->count)
        return false;
    const agg_entry_t *ent = entry_at(t, *pos);
    *key = ent->key;
    *klen = ent->klen;
    if (hash)
        *hash = ent->hash;
    if (state_out)
        encode_cells(t->aggs, t->naggs, ent->cells, state_out);
    (*pos)++;
    return true;
}

int agg_state_merge_bytes(const agg_spec_t *aggs, size_t naggs, const void *a, size_t alen,
                          const void *b, size_t blen, sp_buf_t *out, sp_err_t *err)
{
    agg_cell_t ca[naggs ? naggs : 1], cb[naggs ? naggs : 1];
    int rc;
    if (a != NULL) {
        if ((rc = decode_cells(aggs, naggs, a, alen, ca, err)) != 0)
            return rc;
    } else {
        memset(ca, 0, sizeof ca);
    }
    if (b != NULL) {
        if ((rc = decode_cells(aggs, naggs, b, blen, cb, err)) != 0)
            return rc;
        cells_merge(aggs, naggs, ca, cb, NULL);
    }
    encode_cells(aggs, naggs, ca, out);
    return 0;
}

int agg_state_finalize(const agg_spec_t *aggs, size_t naggs, const void *state, size_t slen,
                       sp_value_t *out, sp_err_t *err)
{
    agg_cell_t cells[naggs ? naggs : 1];
    int rc = decode_cells(aggs, naggs, state, slen, cells, err);
    if (rc != 0)
        return rc;
    for (size_t j = 0; j < naggs; j++) {
        const agg_cell_t *c = &cells[j];
        switch (aggs[j].func) {
        case AGG_COUNT_STAR:
        case AGG_COUNT:
            out[j].type = SP_TYPE_BIGINT;
            out[j].u.i = c->n;
            break;
        case AGG_SUM:
            out[j] = c->n > 0 ? c->val : SP_VALUE_NULL;
            break;
        case AGG_AVG:
            if (c->n > 0) {
                out[j].type = SP_TYPE_DOUBLE;
                out[j].u.d = c->val.u.d / (double)c->n;
            } else {
                out[j] = SP_VALUE_NULL;
            }
            break;
        case AGG_MIN:
        case AGG_MAX:
            out[j] = c->n > 0 ? c->val : SP_VALUE_NULL;
            break;
        }
    }
    return 0;
}
