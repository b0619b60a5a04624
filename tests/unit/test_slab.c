/*
 * Tests for util/slab.c: objects are distinct, aligned and of the asked
 * size (rounded to 16); freed ones are handed out again before a new page
 * is taken; pages are counted; threads allocating and freeing at once
 * never share an object; under AddressSanitizer a freed object is
 * poisoned.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "util/slab.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 31 + i);
}

static bool filled(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed * 31 + i))
            return false;
    return true;
}

static void test_objects_distinct_and_reused(void **state)
{
    (void)state;
    static struct slab s = SLAB_INIT(56);          /* rounded up to 64 */
    assert_int_equal(s.size, 64);
    enum { N = 3000 };                              /* about three pages */
    static unsigned char *obj[N];
    for (unsigned i = 0; i < N; i++) {
        obj[i] = slab_alloc(&s);
        assert_non_null(obj[i]);
        assert_int_equal((uintptr_t)obj[i] % 16, 0);
        fill(obj[i], 64, i);
    }
    for (unsigned i = 0; i < N; i++)
        assert_true(filled(obj[i], 64, i));         /* nothing overlapped */
    size_t pages = slab_page_bytes(&s);
    assert_int_equal(pages % SLAB_PAGE_BYTES, 0);
    assert_true(pages >= (size_t)N * 64 && pages <= (size_t)N * 64 + 2 * SLAB_PAGE_BYTES);

    /* freed objects come back, the last freed first, without a new page */
    slab_free(&s, obj[7]);
    slab_free(&s, obj[1000]);
    assert_ptr_equal(slab_alloc(&s), obj[1000]);
    assert_ptr_equal(slab_alloc(&s), obj[7]);
    for (unsigned i = 0; i < N; i++)
        slab_free(&s, obj[i]);
    for (unsigned i = 0; i < N; i++)
        assert_non_null(slab_alloc(&s));
    assert_int_equal(slab_page_bytes(&s), pages);
    slab_free(&s, NULL);                            /* allowed, nothing happens */
}

#if defined(__SANITIZE_ADDRESS__)
static void test_freed_object_is_poisoned(void **state)
{
    (void)state;
    static struct slab s = SLAB_INIT(64);
    char *p = slab_alloc(&s);
    char *fresh = slab_alloc(&s);
    assert_false(__asan_address_is_poisoned(p + 8));
    assert_true(__asan_address_is_poisoned(fresh + 64));    /* not yet handed out */
    slab_free(&s, p);
    assert_true(__asan_address_is_poisoned(p + 8));
    assert_true(__asan_address_is_poisoned(p + 63));
    char *again = slab_alloc(&s);
    assert_ptr_equal(again, p);
    assert_false(__asan_address_is_poisoned(p + 8));
    slab_free(&s, again);
    slab_free(&s, fresh);
}
#endif

struct worker {
    struct slab *s;
    unsigned seed;
    int bad;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    enum { HELD = 200 };
    unsigned char *held[HELD] = { 0 };
    unsigned tags[HELD] = { 0 };
    uint64_t x = w->seed * 0x9E3779B97F4A7C15ull + 1;
    for (unsigned round = 0; round < 20000; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned i = (unsigned)(x % HELD);
        if (held[i]) {
            if (!filled(held[i], w->s->size, tags[i]))
                w->bad++;                           /* somebody else wrote into it */
            slab_free(w->s, held[i]);
            held[i] = NULL;
        } else {
            held[i] = slab_alloc(w->s);
            if (!held[i]) {
                w->bad++;
                continue;
            }
            tags[i] = w->seed * 100000 + round;
            fill(held[i], w->s->size, tags[i]);
        }
    }
    for (unsigned i = 0; i < HELD; i++)
        slab_free(w->s, held[i]);
    return NULL;
}

static void test_threads_never_share(void **state)
{
    (void)state;
    static struct slab s = SLAB_INIT(64);
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ .s = &s, .seed = i + 1, .bad = 0 };
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    /* at most THREADS * 200 objects were held at once */
    assert_true(slab_page_bytes(&s) <= ((size_t)THREADS * 200 * 64 / SLAB_PAGE_BYTES + 2) *
                                           SLAB_PAGE_BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_objects_distinct_and_reused),
#if defined(__SANITIZE_ADDRESS__)
        cmocka_unit_test(test_freed_object_is_poisoned),
#endif
        cmocka_unit_test(test_threads_never_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
