/* query/jscan.c -- placeholder, being written. */
