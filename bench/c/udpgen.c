/* Small-frame UDP generator and counter.
 *
 *   udpgen send DST PORT PAYLOAD SECONDS RATE   sendmmsg batches of one flow for SECONDS;
 *                                               RATE packets/s, 0 = as fast as the stack takes them
 *   udpgen recv ADDR PORT MAXSEC                count datagrams until 1 s without one after the first,
 *                                               or MAXSEC in all
 *
 * Each prints one line of JSON.  `send`: packets the stack accepted ("sent"),
 * send errors (ENOBUFS and the like: the packet did not leave) and the
 * seconds spent.  `recv`: packets received and the seconds from the first to
 * the last.  IPv4 only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "udpgen"
#include "bench_util.h"

#define BATCH 64

static int do_send(const char *ip, const char *port, int payload, double seconds, double rate)
{
	struct sockaddr_in sa = addr_of(ip, port);
	static char buf[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	long sent = 0, errors = 0;
	double t0, t, end;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), i;

	if (fd < 0)
		die("socket");
	if (payload < 0 || payload > 2048) {
		fprintf(stderr, "udpgen: payload 0..2048\n");
		return 2;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = (size_t)payload;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	t0 = now_s();
	end = t0 + seconds;
	for (t = t0; t < end; t = now_s()) {
		if (rate > 0 && sent + errors >= (t - t0) * rate) {
			struct timespec ts = {0, 20000};
			nanosleep(&ts, NULL);
			continue;
		}
		int n = sendmmsg(fd, msgs, BATCH, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED) {
				errors++;
				continue;
			}
			die("sendmmsg");
		}
		sent += n;
	}
	printf("{\"sent\": %ld, \"errors\": %ld, \"seconds\": %.4f}\n", sent, errors, now_s() - t0);
	close(fd);
	return 0;
}

static int do_recv(const char *ip, const char *port, double maxsec)
{
	struct sockaddr_in sa = addr_of(ip, port);
	static char buf[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 64 << 20, i;
	double start, first = 0, last = 0;
	long got = 0;

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = sizeof(buf[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	start = now_s();
	for (;;) {
		double t = now_s();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (t - start > maxsec || (got && t - last > 1.0))
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			continue;
		last = now_s();
		if (!got)
			first = last;
		got += n;
	}
	printf("{\"received\": %ld, \"seconds\": %.4f}\n", got, got ? last - first : 0.0);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 7 && !strcmp(argv[1], "send"))
		return do_send(argv[2], argv[3], atoi(argv[4]), atof(argv[5]), atof(argv[6]));
	if (argc == 5 && !strcmp(argv[1], "recv"))
		return do_recv(argv[2], argv[3], atof(argv[4]));
	fprintf(stderr, "usage: udpgen send DST PORT PAYLOAD SECONDS RATE | udpgen recv ADDR PORT MAXSEC\n");
	return 2;
}
