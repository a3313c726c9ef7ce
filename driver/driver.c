/* driver/driver.c -- placeholder, being written. */
