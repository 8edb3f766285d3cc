// SPDX-License-Identifier: MIT
// A test domain kernel that only sleeps: it stands for a driver domain or a
// guest when a test exercises the toolstack and not the drivers.
#include <stdio.h>
#include <time.h>

int main(void)
{
	printf("tool_sleeper: up\n");
	fflush(stdout);
	for (;;) {
		struct timespec ts = {3600, 0};
		nanosleep(&ts, NULL);
	}
}
