/* tests/proto/wire_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
