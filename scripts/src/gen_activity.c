/* scripts/src/gen_activity.c -- placeholder, being written. */
int main(void) { return 0; }
