/* query/schema.c -- placeholder, being written. */
