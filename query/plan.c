/* query/plan.c -- placeholder, being written. */
