/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rfs_logsink - a stand-in syslog daemon for tests: receives datagrams on
 * a Unix socket (what syslog(3) sends to /dev/log) and appends each, one
 * per line, to a file, until it is killed.
 *
 *   rfs_logsink SOCKET FILE
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char msg[8192];
	FILE *out;
	int fd;

	if (argc != 3 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: rfs_logsink SOCKET FILE\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	out = fopen(argv[2], "a");
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (!out || fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("rfs_logsink");
		return 1;
	}
	for (;;) {
		ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
		if (n < 0)
			continue;
		msg[n] = '\0';
		fprintf(out, "%s\n", msg);
		fflush(out);
	}
}
