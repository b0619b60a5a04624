/*
 * ckpt_compare — shared by the checkpoint codec fuzz targets: asserts that
 * two decoded trees are equal and that the first is sorted (encoders sort).
 */
#ifndef CCMS_CKPT_COMPARE_H
#define CCMS_CKPT_COMPARE_H

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "persist/ckpt.h"

/* exact_bits: values must be bit-identical (.bin); otherwise NaN equals any
 * NaN and no value may be infinite (JSON). */
static bool ckpt_same_value(float x, float y, bool exact_bits)
{
    if (!exact_bits && isnan(x))
        return isnan(y);
    if (!exact_bits)
        assert(!isinf(x));
    return memcmp(&x, &y, sizeof x) == 0;
}

static void ckpt_assert_same_level(const struct ckpt_level *a, const struct ckpt_level *b,
                                   bool exact_bits)
{
    assert(strcmp(a->name, b->name) == 0);
    assert(a->series_count == b->series_count && a->child_count == b->child_count);
    for (size_t i = 0; i < a->series_count; i++) {
        const struct ckpt_series *x = &a->series[i], *y = &b->series[i];
        assert(strcmp(x->metric, y->metric) == 0);
        assert(x->frequency == y->frequency && x->frequency > 0 && x->start == y->start);
        assert(x->count == y->count);
        for (uint32_t k = 0; k < x->count; k++)
            assert(ckpt_same_value(x->values[k], y->values[k], exact_bits));
        if (i > 0)
            assert(strcmp(a->series[i - 1].metric, x->metric) < 0);
    }
    for (size_t i = 0; i < a->child_count; i++) {
        if (i > 0)
            assert(strcmp(a->children[i - 1].name, a->children[i].name) < 0);
        ckpt_assert_same_level(&a->children[i], &b->children[i], exact_bits);
    }
}

#endif
