/* tests/driver/source_test.c -- the file source's candidates: a full
 * listing first, then only what the inotify watch reports (new files,
 * files that change or vanish, names to ignore), and never a file the
 * checkpoint has seen. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "source.h"
#include "sp_util.h"
#include "testsupport.h"

static char *dir, *in, *ck;
static ckpt_t *ckpt;
static source_t *src;

static void setup(void)
{
    dir = ts_tmpdir("source");
    in = sp_xasprintf("%s/in", dir);
    ck = sp_xasprintf("%s/ck", dir);
    cr_assert_eq(mkdir(in, 0755), 0);
    sp_err_t err;
    cr_assert_eq(ckpt_open(ck, CKPT_CREATE, &ckpt, &err), 0, "%s", err.msg);
    cr_assert_eq(source_open("json", in, &src, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    source_close(&src);
    ckpt_close(&ckpt);
    ts_rmtree(dir);
    free(dir);
    free(in);
    free(ck);
}

TestSuite(source, .init = setup, .fini = teardown);

static void put(const char *name, const char *text)
{
    cr_assert_eq(ts_put_file(in, name, text, strlen(text)), 0);
}

static size_t refresh(uint64_t now)
{
    sp_err_t err;
    cr_assert_eq(source_refresh(src, ckpt, now, &err), 0, "%s", err.msg);
    return source_candidates(src)->nfiles;
}

static bool has(const char *name)
{
    const source_listing_t *c = source_candidates(src);
    char *path = sp_xasprintf("%s/%s", in, name);
    bool found = false;
    for (size_t i = 0; i < c->nfiles; i++)
        found |= strstr(c->files[i].path, name) != NULL && strcmp(strrchr(c->files[i].path, '/') + 1, name) == 0;
    free(path);
    return found;
}

Test(source, candidates_follow_the_watch)
{
    source_set_relist_ms(src, 3600000); /* no safety relist during the test */
    put("a.json", "{}\n");
    cr_assert_eq(refresh(1000), 1, "the first refresh lists the directory");
    put("b.json", "{}\n");
    put(".hidden.json", "{}\n");
    put("_temp.json", "{}\n");
    cr_assert_eq(refresh(2000), 2, "only b is new: dot and underscore names are ignored");
    cr_assert(has("a.json") && has("b.json"));
    char *a = sp_xasprintf("%s/a.json", in);
    cr_assert_eq(unlink(a), 0);
    cr_assert_eq(refresh(3000), 1, "a vanished before it was taken");
    cr_assert(!has("a.json"));
    /* take b: the candidates no longer hold it */
    source_limits_t lim = {1, 0};
    source_listing_t taken;
    source_take(src, &lim, NULL, &taken);
    cr_assert_eq(taken.nfiles, 1);
    cr_assert_eq(source_candidates(src)->nfiles, 0);
    /* once the checkpoint has seen it, a late event for it changes nothing */
    ckpt_batch_t b = {0};
    b.batch_id = 0;
    source_plan_splits(&taken, 1 << 20, &b);
    sp_err_t err;
    cr_assert_eq(ckpt_batch_plan(ckpt, &b, &err), 0, "%s", err.msg);
    ckpt_batch_free(&b);
    put("b.json", "{}\n{}\n"); /* rewritten in place: an event for b */
    cr_assert_eq(refresh(4000), 0, "b is seen: not a candidate again");
    free(a);
}

Test(source, oldest_first_and_a_full_relist_agrees)
{
    source_set_relist_ms(src, 1000);
    char name[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "f%03d.json", 49 - i); /* written newest name first */
        put(name, "{}\n");
        usleep(1000);
    }
    size_t n = refresh(0);
    cr_assert_eq(n, 50);
    const source_listing_t *c = source_candidates(src);
    for (size_t i = 1; i < c->nfiles; i++)
        cr_assert_leq(c->files[i - 1].mtime_ns, c->files[i].mtime_ns, "oldest first");
    put("late.json", "{}\n");
    cr_assert_eq(refresh(500), 51, "from the watch");
    cr_assert_eq(refresh(5000), 51, "and a full relist finds the same");
}
