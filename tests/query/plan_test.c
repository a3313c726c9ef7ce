/* tests/query/plan_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
