/* tests/fuzz/fuzz_jscan.c -- libFuzzer target for the JSON-lines scanner:
 * jscan_valid against the reference validator of tests/query/jscan_test.c;
 * every line of the input through a long-lived scanner (which learns the
 * key layout) and a fresh one, which must agree with each other and with
 * the reference on the status; jscan_next (in place, finding the line's
 * end itself) with jscan_line; jscan_fields likewise. Any disagreement
 * aborts with the input printed. */
#define JSCAN_TEST_REF_ONLY
#include "../query/jscan_test.c"

static void fuzz_fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_jscan: %s on %zu bytes:\n", what, size);
    for (size_t i = 0; i < size; i++)
        fprintf(stderr, data[i] >= 0x20 && data[i] < 0x7f ? "%c" : "\\x%02x", data[i]);
    fprintf(stderr, "\n");
    abort();
}

static void fuzz_field(void *ctx, const char *key, size_t keylen, jscan_kind_t kind)
{
    (void)key;
    (void)keylen;
    (void)kind;
    ++*(int *)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static jscan_t *keep, *next; /* live across inputs: their templates too */
    if (!keep) {
        keep = jscan_new(agree_names, agree_types, AGREE_NCOLS);
        next = jscan_new(agree_names, agree_types, AGREE_NCOLS);
    }

    if (jscan_valid((const char *)data, size) != ref_valid(data, size))
        fuzz_fail("jscan_valid disagrees with the reference", data, size);

    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        const char *line = (const char *)data + start;
        size_t len = i - start;
        start = i + 1;
        jscan_status_t want = ref_status(line, len);
        jscan_t *fresh = jscan_new(agree_names, agree_types, AGREE_NCOLS);
        const jscan_row_t *r1, *r2;
        jscan_status_t s1 = jscan_line(keep, line, len, &r1);
        jscan_status_t s2 = jscan_line(fresh, line, len, &r2);
        char *why = NULL;
        if (s1 != want || s2 != want)
            fuzz_fail("jscan_line status disagrees with the reference", data, size);
        if (!rows_agree(r1, r2, AGREE_NCOLS, &why)) {
            fprintf(stderr, "%s\n", why);
            fuzz_fail("long-lived and fresh scanners disagree", data, size);
        }
        if (!next_agrees(next, line, len, s1, r1, AGREE_NCOLS, &why)) {
            fprintf(stderr, "%s\n", why);
            fuzz_fail("jscan_next disagrees with jscan_line", data, size);
        }
        jscan_destroy(&fresh);
        int calls = 0;
        if (jscan_fields(line, len, fuzz_field, &calls, NULL) != want ||
            (want != JSCAN_ROW && calls))
            fuzz_fail("jscan_fields disagrees with the reference", data, size);
    }
    return 0;
}
