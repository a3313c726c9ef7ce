/* storage/ckpt.c -- placeholder, being written. */
