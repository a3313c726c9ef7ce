/* tests/query/schema_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
