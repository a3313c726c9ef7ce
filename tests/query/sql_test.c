/* tests/query/sql_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
