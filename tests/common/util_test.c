/* tests/common/util_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
