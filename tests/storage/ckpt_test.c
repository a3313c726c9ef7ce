/* tests/storage/ckpt_test.c -- placeholder, being written. */
#include <criterion/criterion.h>
