/* executor/executor.c -- placeholder, being written. */
