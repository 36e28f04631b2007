#include "fault.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char fault_name[64];
static int64_t fault_after = 1;
static int64_t fault_hits;

void zl_fault_configure(const char *point, int64_t after)
{
    fault_name[0] = '\0';
    fault_hits = 0;
    fault_after = after < 1 ? 1 : after;
    if (point != NULL)
        snprintf(fault_name, sizeof(fault_name), "%s", point);
}

void zl_fault_point(const char *name)
{
    if (fault_name[0] == '\0' || strcmp(name, fault_name) != 0)
        return;
    if (++fault_hits < fault_after)
        return;
    /* A line on stderr so the test log shows the kill was deliberate. */
    static const char msg[] = "{\"level\":\"warn\",\"msg\":\"fault point reached: SIGKILL\"}\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    kill(getpid(), SIGKILL);
}
