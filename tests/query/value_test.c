/* tests/query/value_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
