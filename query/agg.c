/* query/agg.c -- placeholder, being written. */
