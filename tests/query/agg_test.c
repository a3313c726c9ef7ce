/* tests/query/agg_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
