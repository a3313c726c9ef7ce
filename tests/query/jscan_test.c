/* tests/query/jscan_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
