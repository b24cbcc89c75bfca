/* unit — a minimal unit-test harness. Each TEST registers itself; CHECK
 * records a failure with file:line and lets the test go on. main() runs all
 * tests and prints one "ok - NAME" or "not ok - NAME" line per test, which
 * tests/run counts. */
#ifndef DIPOLE_UNIT_H
#define DIPOLE_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit_test { const char *name; void (*fn)(void); };
static struct unit_test unit_tests[256];
static int unit_ntests, unit_failed_now;

#define TEST(fname) \
	static void fname(void); \
	__attribute__((constructor)) static void reg_##fname(void) { \
		unit_tests[unit_ntests].name = #fname; unit_tests[unit_ntests++].fn = fname; } \
	static void fname(void)

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
	unit_failed_now = 1; } } while (0)
#define CHECK_STR_HAS(s, sub) do { const char *s_ = (s); if (!s_ || !strstr(s_, (sub))) { \
	fprintf(stderr, "    %s:%d: expected \"%s\" in \"%s\"\n", __FILE__, __LINE__, (sub), s_ ? s_ : "(null)"); \
	unit_failed_now = 1; } } while (0)

static int unit_main(const char *suite)
{
	int failed = 0;
	for (int i = 0; i < unit_ntests; i++) {
		unit_failed_now = 0;
		unit_tests[i].fn();
		printf("%s - %s: %s\n", unit_failed_now ? "not ok" : "ok", suite, unit_tests[i].name);
		failed += unit_failed_now;
	}
	return failed ? 1 : 0;
}

#endif
