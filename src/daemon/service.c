/* service — see service.h. */
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

static int enabled;
static char last_status[512];

void service_init(int foreground)
{
	enabled = foreground && getenv("NOTIFY_SOCKET");
	last_status[0] = 0;
}

int service_enabled(void)
{
	return enabled;
}

/* One STATUS= line: the protocol is newline-separated, so none inside. */
static void clean(char *out, size_t len, const char *text)
{
	snprintf(out, len, "%s", text);
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void service_status(const char *text)
{
	char s[sizeof last_status];
	if (!enabled)
		return;
	clean(s, sizeof s, text);
	if (!strcmp(s, last_status))
		return;
	memcpy(last_status, s, sizeof s);
	sd_notifyf(0, "STATUS=%s", s);
}

/* A state change (`change`: "READY=1" or "STOPPING=1") with its status. */
static void notify_change(const char *change, const char *text)
{
	char s[sizeof last_status];
	if (!enabled)
		return;
	clean(s, sizeof s, text);
	memcpy(last_status, s, sizeof s);
	sd_notifyf(0, "%s\nSTATUS=%s", change, s);
}

void service_ready(const char *text)
{
	notify_change("READY=1", text);
}

void service_stopping(const char *text)
{
	notify_change("STOPPING=1", text);
}

void service_failed(const char *text, int err)
{
	char s[sizeof last_status];
	if (!enabled)
		return;
	clean(s, sizeof s, text);
	memcpy(last_status, s, sizeof s);
	if (err > 0)
		sd_notifyf(0, "STATUS=%s\nERRNO=%d", s, err);
	else
		sd_notifyf(0, "STATUS=%s", s);
}
