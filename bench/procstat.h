/*
 * procstat — CPU time of a process and of the whole machine from /proc, so
 * the drivers can report server CPU per sample and how much of the machine
 * other processes used during a measurement (the benchmark machine is
 * shared).
 */
#ifndef BENCH_PROCSTAT_H
#define BENCH_PROCSTAT_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* utime and stime of process pid in seconds. Returns 0 or -1. */
static inline int procstat_process(long pid, double *user, double *sys)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut, st;
    /* after ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt
     * majflt cmajflt utime stime (fields 3..15 of proc(5)) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *user = (double)ut / hz;
    *sys = (double)st / hz;
    return 0;
}

struct procstat_thread {
    long tid;
    char comm[32];
    double cpu;             /* utime + stime, seconds */
};

/* CPU time of every thread of pid, up to max entries. Returns the count or -1. */
static inline int procstat_threads(long pid, struct procstat_thread *out, int max)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        long tid = strtol(e->d_name, NULL, 10);
        char buf[1024];
        snprintf(path, sizeof path, "/proc/%ld/task/%ld/stat", pid, tid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        unsigned long long ut, st;
        if (!open || !close || close < open ||
            sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                   &st) != 2)
            continue;
        size_t cl = (size_t)(close - open - 1);
        if (cl >= sizeof out[n].comm)
            cl = sizeof out[n].comm - 1;
        memcpy(out[n].comm, open + 1, cl);
        out[n].comm[cl] = '\0';
        out[n].tid = tid;
        out[n].cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        n++;
    }
    closedir(d);
    return n;
}

/* Busy CPU seconds of the whole machine, summed over all CPUs (user, nice,
 * system, irq, softirq, steal). Returns 0 or -1. */
static inline int procstat_machine_busy(double *busy)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 7)
        return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
    return 0;
}

#endif
