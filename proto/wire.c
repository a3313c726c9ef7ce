/* proto/wire.c -- placeholder, being written. */
