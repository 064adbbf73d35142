/* TCP request/response latency: one byte each way, N times, one connection.
 *
 *   rr server ADDR PORT MAXSEC          accept one connection, echo each byte until EOF or MAXSEC
 *   rr client ADDR PORT COUNT MAXSEC    COUNT round trips (after 200 warm-up), at most MAXSEC seconds
 *
 * The client prints one line of JSON: round trips done and the RTT p50/p90/p99/mean/min in microseconds.
 * Both ends set TCP_NODELAY; the client times each round trip with CLOCK_MONOTONIC.
 * IPv4 only (the bench's addresses are in 198.18.0.0/15).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "rr"
#include "bench_util.h"

#define WARMUP 200

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("TCP_NODELAY");
}

static int server(const char *ip, const char *port, int maxsec)
{
	struct sockaddr_in sa = addr_of(ip, port);
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), fd;
	char b;

	alarm((unsigned)maxsec); /* bounded whatever the client does */
	if (ls < 0)
		die("socket");
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(ls, 1) < 0)
		die("listen");
	printf("listening\n");
	fflush(stdout);
	fd = accept(ls, NULL, NULL);
	if (fd < 0)
		die("accept");
	nodelay(fd);
	for (;;) {
		ssize_t n = recv(fd, &b, 1, 0);
		if (n <= 0)
			break;
		if (send(fd, &b, 1, 0) != 1)
			break;
	}
	close(fd);
	close(ls);
	return 0;
}

static int client(const char *ip, const char *port, long count, int maxsec)
{
	struct sockaddr_in sa = addr_of(ip, port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	double *rtt, t0, t1, deadline, sum = 0;
	long i, n = 0;
	char b = 'x';

	alarm((unsigned)maxsec + 5);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	nodelay(fd);
	rtt = calloc((size_t)count, sizeof(*rtt));
	if (!rtt)
		die("calloc");
	deadline = now_s() + maxsec;
	for (i = -WARMUP; i < count; i++) {
		t0 = now_s();
		if (send(fd, &b, 1, 0) != 1)
			die("send");
		if (recv(fd, &b, 1, MSG_WAITALL) != 1)
			die("recv");
		t1 = now_s();
		if (i >= 0) {
			rtt[n++] = (t1 - t0) * 1e6;
			sum += (t1 - t0) * 1e6;
		}
		if (t1 > deadline)
			break;
	}
	close(fd);
	if (n == 0) {
		fprintf(stderr, "rr: no round trip within %d s\n", maxsec);
		return 1;
	}
	qsort(rtt, (size_t)n, sizeof(*rtt), cmp_double);
	printf("{\"n\": %ld, \"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, \"mean_us\": %.2f, "
	       "\"min_us\": %.2f}\n",
	       n, rtt[n / 2], rtt[(long)(n * 0.90)], rtt[(long)(n * 0.99)], sum / n, rtt[0]);
	free(rtt);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && !strcmp(argv[1], "server"))
		return server(argv[2], argv[3], atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "client"))
		return client(argv[2], argv[3], atol(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: rr server ADDR PORT MAXSEC | rr client ADDR PORT COUNT MAXSEC\n");
	return 2;
}
