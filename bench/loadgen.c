/*
 * A load generator for the agent's socket with almost no cost of its own, to tell the agent's
 * answer latency from the load generator's: bench/agent.mjs's Node clients add their own event
 * loop, timers and garbage collector to every measured answer, on the same two cores.
 *
 * One thread, epoll and an absolute timerfd: CLIENTS connections, each sends a token request
 * every CLIENTS/RATE seconds (open loop, offsets spread evenly; a request due while the previous
 * one is unanswered is pipelined, as the agent answers in order), and the time from the write to
 * the answer's last byte is recorded with CLOCK_MONOTONIC. Prints one line per answer: its latency
 * and when it was sent (after the start), in microseconds; then "errors N" on stderr.
 *
 *   cc -O2 -o loadgen bench/loadgen.c
 *   ./loadgen SOCKET CONFIG_DIR CLIENTS RATE SECONDS > latencies
 *
 * bench/agent.mjs compiles and runs it when a C compiler is present (`--loadgen c`).
 *
 *   ./loadgen --serve SOCKET
 *
 * is the machine's floor: a server in C on one epoll thread that answers every line at once with
 * a fixed answer of a token's size. The same load against it shows what this machine's
 * scheduler and wake-ups alone add to an answer, with no agent at all.
 *
 *   ./loadgen --first SOCKET CONFIG_DIR COUNT INTERVAL_MS
 *
 * is a new process's first answer, which is what every `azkeep account get-access-token` and every
 * `az` shim call waits for: COUNT times, INTERVAL_MS apart, a new child process (one the agent
 * has never seen: it reads who it is from /proc) connects, writes its hello and a token request
 * at once, as the agent lanes do, and reads both answers. Prints the time from its connect() to
 * the answers' last byte, in microseconds, one a line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define MAX_INFLIGHT 4096
#define BUF 65536

struct conn {
  int fd;
  long next_id;
  /* send times of unanswered requests, in order (a ring) */
  int64_t sent[MAX_INFLIGHT];
  int head, tail;
  char buf[BUF];
  size_t len;
  int64_t next_due;
};

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    s += w;
    n -= (size_t)w;
  }
}

static int64_t *lat, *when;
static int64_t t_start;
static size_t nlat, caplat;
static long errors;

/* Reads what is there; counts each whole answer line (after the hello's) against its send time. */
static void on_readable(struct conn *c, int counting) {
  for (;;) {
    ssize_t r = read(c->fd, c->buf + c->len, BUF - c->len);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      die("read");
    }
    if (r == 0) {
      fprintf(stderr, "the agent closed a connection\n");
      exit(1);
    }
    int64_t t = now_ns();
    c->len += (size_t)r;
    char *start = c->buf;
    char *nl;
    while ((nl = memchr(start, '\n', c->len - (size_t)(start - c->buf))) != NULL) {
      if (c->head == c->tail) {
        fprintf(stderr, "an answer nobody asked for\n");
        exit(1);
      }
      int64_t s = c->sent[c->head];
      c->head = (c->head + 1) % MAX_INFLIGHT;
      if (strncmp(start, "{\"id\":", 6) != 0 || strstr(start, "\"ok\":true") == NULL ||
          (size_t)(nl - start) < 20)
        errors++;
      else if (counting && s > 0) {
        if (nlat == caplat) {
          caplat = caplat ? caplat * 2 : 65536;
          lat = realloc(lat, caplat * sizeof *lat);
          when = realloc(when, caplat * sizeof *when);
          if (!lat || !when) die("realloc");
        }
        when[nlat] = (s - t_start) / 1000;
        lat[nlat++] = (t - s) / 1000;
      }
      start = nl + 1;
    }
    size_t rest = c->len - (size_t)(start - c->buf);
    memmove(c->buf, start, rest);
    c->len = rest;
    if (c->len == BUF) {
      fprintf(stderr, "an answer over %d bytes\n", BUF);
      exit(1);
    }
  }
}

static void send_token(struct conn *c, int64_t stamp) {
  char req[128];
  int n = snprintf(req, sizeof req, "{\"id\":%ld,\"op\":\"token\",\"request\":{\"resourceType\":\"arm\"}}\n",
                   c->next_id++);
  int nt = (c->tail + 1) % MAX_INFLIGHT;
  if (nt == c->head) {
    fprintf(stderr, "more than %d requests unanswered on one connection\n", MAX_INFLIGHT);
    exit(1);
  }
  c->sent[c->tail] = stamp;
  c->tail = nt;
  write_all(c->fd, req, (size_t)n);
}

/* The floor server: answers each request line with a fixed line of ANSWER_BYTES. */
#define ANSWER_BYTES 1800
static int serve(const char *sock) {
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) die("socket");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(sock) >= sizeof addr.sun_path) {
    fprintf(stderr, "socket path too long\n");
    return 2;
  }
  strcpy(addr.sun_path, sock);
  unlink(sock);
  if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(ls, 128) < 0) die("listen");
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev) < 0) die("epoll_ctl");
  static char answer[ANSWER_BYTES + 64];
  static char in[BUF];
  const char *tail = ",\"ok\":true,\"result\":{\"accessToken\":\"";
  for (;;) {
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      int fd = evs[k].data.fd;
      if (fd == ls) {
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        continue;
      }
      ssize_t r = read(fd, in, sizeof in);
      if (r <= 0) {
        close(fd);
        continue;
      }
      /* one answer per newline (requests are small: a read holds whole lines) */
      for (ssize_t i = 0; i < r; i++) {
        if (in[i] != '\n') continue;
        int m = snprintf(answer, sizeof answer, "{\"id\":0%s", tail);
        memset(answer + m, 'x', ANSWER_BYTES - (size_t)m - 3);
        memcpy(answer + ANSWER_BYTES - 3, "\"}}", 3);
        answer[ANSWER_BYTES] = '\n';
        write_all(fd, answer, ANSWER_BYTES + 1);
      }
    }
  }
}

/* One new process's exchange (see --first): microseconds from connect() to both answers, or -1. */
static int64_t first_answer(const char *sock, const char *config_dir) {
  char msg[4096];
  int n = snprintf(msg, sizeof msg,
                   "{\"op\":\"hello\",\"version\":1,\"configDir\":\"%s\",\"id\":1}\n"
                   "{\"op\":\"token\",\"request\":{},\"id\":2}\n",
                   config_dir);
  if (n <= 0 || (size_t)n >= sizeof msg) return -1;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(sock) >= sizeof addr.sun_path) return -1;
  strcpy(addr.sun_path, sock);
  int64_t t0 = now_ns();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return -1;
  write_all(fd, msg, (size_t)n);
  static char buf[BUF];
  size_t len = 0;
  int lines = 0;
  while (lines < 2) {
    ssize_t r = read(fd, buf + len, sizeof buf - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    for (ssize_t i = 0; i < r; i++)
      if (buf[len + (size_t)i] == '\n') lines++;
    len += (size_t)r;
    if (len == sizeof buf) return -1;
  }
  int64_t t1 = now_ns();
  close(fd);
  /* both answers must be answers, not errors */
  if (strstr(buf, "\"id\":2,\"ok\":true") == NULL && strstr(buf, "\"ok\":true,\"result\":{\"accessToken") == NULL)
    return -1;
  return (t1 - t0) / 1000;
}

static int first(const char *sock, const char *config_dir, int count, int interval_ms) {
  for (int i = 0; i < count; i++) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      close(p[0]);
      int64_t us = first_answer(sock, config_dir);
      write_all(p[1], (const char *)&us, sizeof us);
      _exit(0);
    }
    close(p[1]);
    int64_t us = -1;
    if (read(p[0], &us, sizeof us) != (ssize_t)sizeof us) us = -1;
    close(p[0]);
    waitpid(pid, NULL, 0);
    if (us < 0) errors++;
    else printf("%lld\n", (long long)us);
    struct timespec d = {.tv_sec = interval_ms / 1000, .tv_nsec = (long)(interval_ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
  }
  fprintf(stderr, "errors %ld\n", errors);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--serve") == 0) return serve(argv[2]);
  if (argc == 6 && strcmp(argv[1], "--first") == 0)
    return first(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
  if (argc != 6) {
    fprintf(stderr, "usage: %s SOCKET CONFIG_DIR CLIENTS RATE SECONDS\n", argv[0]);
    return 2;
  }
  const char *sock = argv[1];
  const char *config_dir = argv[2];
  int clients = atoi(argv[3]);
  double rate = atof(argv[4]);
  double seconds = atof(argv[5]);
  if (clients < 1 || clients > MAX_CLIENTS || rate <= 0 || seconds <= 0) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  if (strlen(config_dir) > 4000 || strchr(config_dir, '"') || strchr(config_dir, '\\')) {
    fprintf(stderr, "the config folder's name must not need JSON escapes\n");
    return 2;
  }
  static struct conn conns[MAX_CLIENTS];
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(sock) >= sizeof addr.sun_path) {
    fprintf(stderr, "socket path too long\n");
    return 2;
  }
  strcpy(addr.sun_path, sock);
  char hello[4200];
  int hn = snprintf(hello, sizeof hello, "{\"id\":0,\"op\":\"hello\",\"version\":1,\"configDir\":\"%s\"}\n", config_dir);
  for (int i = 0; i < clients; i++) {
    struct conn *c = &conns[i];
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    c->next_id = 1;
    /* hello and one warm-up request, answered before the clock starts */
    c->sent[c->tail] = 0;
    c->tail = (c->tail + 1) % MAX_INFLIGHT;
    write_all(c->fd, hello, (size_t)hn);
    send_token(c, 0);
  }
  for (int i = 0; i < clients; i++) {
    struct conn *c = &conns[i];
    while (c->head != c->tail) {
      /* blocking until both answers are in */
      ssize_t r = read(c->fd, c->buf + c->len, BUF - c->len);
      if (r <= 0) die("read (warm-up)");
      c->len += (size_t)r;
      char *start = c->buf, *nl;
      while ((nl = memchr(start, '\n', c->len - (size_t)(start - c->buf))) != NULL) {
        if (strstr(start, "\"ok\":true") == NULL || strstr(start, "\"ok\":true") > nl) {
          fprintf(stderr, "warm-up refused: %.*s\n", (int)(nl - start), start);
          return 1;
        }
        c->head = (c->head + 1) % MAX_INFLIGHT;
        start = nl + 1;
      }
      size_t rest = c->len - (size_t)(start - c->buf);
      memmove(c->buf, start, rest);
      c->len = rest;
    }
  }
  for (int i = 0; i < clients; i++) {
    struct conn *c = &conns[i];
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  }
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tfd < 0) die("timerfd_create");
  struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) < 0) die("epoll_ctl timer");

  int64_t period = (int64_t)(1e9 * clients / rate);
  int64_t start = now_ns() + 1000000;
  int64_t end = start + (int64_t)(seconds * 1e9);
  t_start = start;
  for (int i = 0; i < clients; i++) conns[i].next_due = start + period * i / clients;

  for (;;) {
    /* send everything due; arm the timer for the next one */
    int64_t t = now_ns();
    int64_t soonest = INT64_MAX;
    for (int i = 0; i < clients; i++) {
      struct conn *c = &conns[i];
      while (c->next_due <= t && c->next_due < end) {
        send_token(c, now_ns());
        c->next_due += period;
      }
      if (c->next_due < end && c->next_due < soonest) soonest = c->next_due;
    }
    int outstanding = 0;
    for (int i = 0; i < clients; i++) outstanding += conns[i].head != conns[i].tail;
    if (soonest == INT64_MAX && !outstanding) break;
    if (soonest != INT64_MAX) {
      struct itimerspec its = {0};
      its.it_value.tv_sec = soonest / 1000000000LL;
      its.it_value.tv_nsec = soonest % 1000000000LL;
      if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
    }
    struct epoll_event evs[MAX_CLIENTS + 1];
    int n = epoll_wait(ep, evs, MAX_CLIENTS + 1, soonest == INT64_MAX ? 10000 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    if (n == 0) {
      fprintf(stderr, "answers stopped coming\n");
      return 1;
    }
    for (int k = 0; k < n; k++) {
      if (evs[k].data.u32 == UINT32_MAX) {
        uint64_t x;
        if (read(tfd, &x, sizeof x) < 0 && errno != EAGAIN) die("read timerfd");
      } else {
        on_readable(&conns[evs[k].data.u32], 1);
      }
    }
  }
  for (size_t i = 0; i < nlat; i++) printf("%lld %lld\n", (long long)lat[i], (long long)when[i]);
  fprintf(stderr, "errors %ld\n", errors);
  return 0;
}
