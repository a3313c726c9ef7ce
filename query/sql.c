/* query/sql.c -- placeholder, being written. */
