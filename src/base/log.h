/* log — the one logging module.
 *
 * Every line carries a timestamp, level, and the resource (and peer, when set)
 * it is about. The daemon logs to a file in the run dir; commands log to stderr.
 * Thread-safe: each line is formatted into a local buffer and written with one
 * write(2), so lines from different threads never interleave.
 */
#ifndef DIPOLE_LOG_H
#define DIPOLE_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Direct output to fd (default 2). The resource name prefixes every line. */
void log_set_fd(int fd);
void log_set_resource(const char *res);
void log_set_level(enum log_level lvl);
/* Include the timestamp/level prefix (daemon) or not (interactive commands). */
void log_set_verbose_prefix(int on);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
