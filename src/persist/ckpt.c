/*
 * ckpt — see ckpt.h. Freeing and canonical ordering of checkpoint trees.
 */
#include "persist/ckpt.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void ckpt_series_free(struct ckpt_series *s)
{
    free(s->metric);
    free(s->values);
}

void ckpt_level_free(struct ckpt_level *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->series_count; i++)
        ckpt_series_free(&l->series[i]);
    for (size_t i = 0; i < l->child_count; i++)
        ckpt_level_free(&l->children[i]);
    free(l->series);
    free(l->children);
    free(l->name);
    memset(l, 0, sizeof *l);
}

void ckpt_file_free(struct ckpt_file *f)
{
    if (f == NULL)
        return;
    ckpt_level_free(&f->host);
    memset(f, 0, sizeof *f);
}

/* strcmp compares as unsigned char, which is the byte order the formats use. */
static int ckpt_series_cmp(const void *a, const void *b)
{
    const struct ckpt_series *x = a, *y = b;
    return strcmp(x->metric, y->metric);
}

static int ckpt_level_cmp(const void *a, const void *b)
{
    const struct ckpt_level *x = a, *y = b;
    return strcmp(x->name, y->name);
}

void ckpt_level_sort(struct ckpt_level *l)
{
    if (l->series_count > 1)
        qsort(l->series, l->series_count, sizeof *l->series, ckpt_series_cmp);
    if (l->child_count > 1)
        qsort(l->children, l->child_count, sizeof *l->children, ckpt_level_cmp);
    for (size_t i = 0; i < l->child_count; i++)
        ckpt_level_sort(&l->children[i]);
}

/* Whether some sample of the subtree lies after `to` by more than its own
 * interval (a sample's slot may end up to one interval after its time). */
static bool sample_after(const struct ckpt_level *l, int64_t to)
{
    for (size_t i = 0; i < l->series_count; i++) {
        const struct ckpt_series *s = &l->series[i];
        for (uint32_t k = s->count; k-- > 0;) {
            if (s->values[k] == s->values[k]) {          /* the last non-NaN */
                if (s->start + (int64_t)k * s->frequency - s->frequency > to)
                    return true;
                break;
            }
        }
    }
    for (size_t i = 0; i < l->child_count; i++)
        if (sample_after(&l->children[i], to))
            return true;
    return false;
}

/* A day: names and windows of real files are far closer (a file's name is
 * its window start, or the next free second after the host's files). */
#define CKPT_NAME_SLACK 86400

const char *ckpt_file_contradiction(const struct ckpt_file *f, int64_t stamp,
                                    int64_t future_slack)
{
    if (f->to == 0)
        return NULL;                 /* no window end recorded (legal for JSON) */
    if (f->to < f->from)
        return "its window ends before it starts";
    if (f->to < stamp - CKPT_NAME_SLACK)
        return "its window ends long before the time in its name";
    if (future_slack >= 0 && sample_after(&f->host, f->to + future_slack + CKPT_NAME_SLACK))
        return "its window ends before its own samples";
    return NULL;
}
