/* log — see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once at startup by the single thread that owns configuration. */
static int log_fd = 2;
static char log_res[64];
static enum log_level log_max = LOG_INFO;
static int log_prefix;

void log_set_fd(int fd) { log_fd = fd; }
void log_set_level(enum log_level lvl) { log_max = lvl; }
void log_set_verbose_prefix(int on) { log_prefix = on; }

void log_set_resource(const char *res)
{
	snprintf(log_res, sizeof log_res, "%s", res ? res : "");
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	char line[2048];
	size_t n = 0;
	va_list ap;

	if (lvl > log_max)
		return;
	if (log_prefix) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n += strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ [%d] %s: ",
				      ts.tv_nsec / 1000000, (int)getpid(), names[lvl]);
	} else if (lvl <= LOG_WARN) {
		n += (size_t)snprintf(line, sizeof line, "dipole: %s: ", names[lvl]);
	} else {
		n += (size_t)snprintf(line, sizeof line, "dipole: ");
	}
	if (log_res[0] && n < sizeof line)
		n += (size_t)snprintf(line + n, sizeof line - n, "%s: ", log_res);
	if (n < sizeof line) {
		va_start(ap, fmt);
		n += (size_t)vsnprintf(line + n, sizeof line - n, fmt, ap);
		va_end(ap);
	}
	if (n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
}
