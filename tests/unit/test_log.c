#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

#include "log.h"

/* stderr is redirected into a pipe for the duration of one capture; a
 * thread drains the pipe so writers never block on a full pipe buffer. */
struct capture {
    int pipe_rd;
    int saved_stderr;
    pthread_t reader;
    char *buf;
    size_t len;
};

static void *capture_reader(void *arg)
{
    struct capture *c = arg;
    size_t cap = 4096;
    c->buf = malloc(cap);
    c->len = 0;
    for (;;) {
        if (c->buf == NULL)
            return NULL;
        if (c->len + 1 == cap) {
            cap *= 2;
            char *nb = realloc(c->buf, cap);
            if (nb == NULL) {
                free(c->buf);
                c->buf = NULL;
                return NULL;
            }
            c->buf = nb;
        }
        ssize_t r = read(c->pipe_rd, c->buf + c->len, cap - c->len - 1);
        if (r <= 0)
            break;
        c->len += (size_t)r;
    }
    c->buf[c->len] = '\0';
    return NULL;
}

static void capture_begin(struct capture *c)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stderr);
    c->saved_stderr = dup(STDERR_FILENO);
    assert_true(c->saved_stderr >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    close(fds[1]);
    c->pipe_rd = fds[0];
    assert_int_equal(pthread_create(&c->reader, NULL, capture_reader, c), 0);
}

/* Restores stderr and returns everything written meanwhile (caller frees). */
static char *capture_end(struct capture *c)
{
    dup2(c->saved_stderr, STDERR_FILENO); /* closes the last write end */
    close(c->saved_stderr);
    pthread_join(c->reader, NULL);
    close(c->pipe_rd);
    assert_non_null(c->buf);
    return c->buf;
}

static void test_parse_level(void **state)
{
    (void)state;
    enum log_level l = LOG_CRIT;
    assert_int_equal(log_parse_level("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_parse_level("info", &l), 0);
    assert_int_equal(l, LOG_INFO);
    assert_int_equal(log_parse_level("warn", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_parse_level("err", &l), 0);
    assert_int_equal(l, LOG_ERR);
    assert_int_equal(log_parse_level("fatal", &l), 0);
    assert_int_equal(l, LOG_ERR);
    assert_int_equal(log_parse_level("crit", &l), 0);
    assert_int_equal(l, LOG_CRIT);

    l = LOG_INFO;
    assert_int_equal(log_parse_level("warning", &l), -1);
    assert_int_equal(log_parse_level("DEBUG", &l), -1);
    assert_int_equal(log_parse_level("", &l), -1);
    assert_int_equal(log_parse_level(NULL, &l), -1);
    assert_int_equal(l, LOG_INFO); /* untouched on error */
}

static void test_prefixes(void **state)
{
    (void)state;
    struct capture c;
    log_init(LOG_DEBUG, false);
    capture_begin(&c);
    log_debug("d %d", 1);
    log_info("i %s", "two");
    log_warn("w");
    log_error("e");
    log_crit("c");
    char *out = capture_end(&c);
    assert_str_eq(out, "<7>[DEBUG]    d 1\n"
                       "<6>[INFO]     i two\n"
                       "<4>[WARNING]  w\n"
                       "<3>[ERROR]    e\n"
                       "<2>[CRITICAL] c\n");
    free(out);
    log_init(LOG_WARN, false);
}

static void test_filtering(void **state)
{
    (void)state;
    struct capture c;
    log_init(LOG_ERR, false);
    assert_false(log_enabled(LOG_DEBUG));
    assert_false(log_enabled(LOG_WARN));
    assert_true(log_enabled(LOG_ERR));
    assert_true(log_enabled(LOG_CRIT));
    capture_begin(&c);
    log_debug("no");
    log_info("no");
    log_warn("no");
    log_error("yes1");
    log_crit("yes2");
    char *out = capture_end(&c);
    assert_str_eq(out, "<3>[ERROR]    yes1\n<2>[CRITICAL] yes2\n");
    free(out);

    /* default after init is warn */
    log_init(LOG_WARN, false);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_WARN));
}

static void test_trailing_newline_not_doubled(void **state)
{
    (void)state;
    struct capture c;
    log_init(LOG_INFO, false);
    capture_begin(&c);
    log_info("line\n");
    log_info("%s", "");
    char *out = capture_end(&c);
    assert_str_eq(out, "<6>[INFO]     line\n<6>[INFO]     \n");
    free(out);
    log_init(LOG_WARN, false);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void test_date_prefix(void **state)
{
    (void)state;
    struct capture c;
    log_init(LOG_WARN, true);
    capture_begin(&c);
    log_warn("dated");
    char *out = capture_end(&c);
    /* "<4>[WARNING]  2024/01/02 15:04:05 dated\n" */
    const char *pfx = "<4>[WARNING]  ";
    assert_int_equal(strncmp(out, pfx, strlen(pfx)), 0);
    const char *d = out + strlen(pfx);
    const char *shape = "dddd/dd/dd dd:dd:dd ";
    for (size_t i = 0; i < strlen(shape); i++) {
        if (shape[i] == 'd')
            assert_true(is_digit(d[i]));
        else
            assert_int_equal(d[i], shape[i]);
    }
    assert_str_eq(d + strlen(shape), "dated\n");
    free(out);
    log_init(LOG_WARN, false);
}

static void test_long_line(void **state)
{
    (void)state;
    size_t n = 10000;
    char *msg = malloc(n + 1);
    assert_non_null(msg);
    memset(msg, 'x', n);
    msg[n] = '\0';
    struct capture c;
    log_init(LOG_WARN, false);
    capture_begin(&c);
    log_warn("%s|end", msg);
    char *out = capture_end(&c);
    size_t pl = strlen("<4>[WARNING]  ");
    assert_int_equal(strlen(out), pl + n + 5);
    assert_int_equal(strncmp(out + pl, msg, n), 0);
    assert_str_eq(out + pl + n, "|end\n");
    free(out);
    free(msg);
}

#define THREADS 4
#define LINES_PER_THREAD 500

static void *writer_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES_PER_THREAD; i++)
        log_warn("thread %d line %04d abcdefghijklmnopqrstuvwxyz", id, i);
    return NULL;
}

static void test_concurrent_lines_intact(void **state)
{
    (void)state;
    struct capture c;
    log_init(LOG_WARN, false);
    capture_begin(&c);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *out = capture_end(&c);

    int seen[THREADS][LINES_PER_THREAD] = {{0}};
    int lines = 0;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        int id, no;
        char tail[64];
        assert_int_equal(sscanf(line, "<4>[WARNING]  thread %d line %d %63s", &id, &no, tail), 3);
        assert_true(id >= 0 && id < THREADS && no >= 0 && no < LINES_PER_THREAD);
        assert_str_eq(tail, "abcdefghijklmnopqrstuvwxyz");
        seen[id][no]++;
        lines++;
    }
    assert_int_equal(lines, THREADS * LINES_PER_THREAD);
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < LINES_PER_THREAD; j++)
            assert_int_equal(seen[i][j], 1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_level),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_filtering),
        cmocka_unit_test(test_trailing_newline_not_doubled),
        cmocka_unit_test(test_date_prefix),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_concurrent_lines_intact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
