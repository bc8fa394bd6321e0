/*
 * testbed-supervisor: PID 1 of a node augmented at level `basic` (testbed.containers).
 *
 * Copyright: testbed.containers contributors
 * GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * Built statically (scripts/build-tools.sh: gcc -static -Os) so it runs in any image,
 * FROM scratch and distroless included; it needs nothing from the image.  It uses no NSS
 * (getpwnam & co. are unreliable in a static glibc): users and groups are resolved by
 * parsing the image's /etc/passwd and /etc/group the way runc does.
 *
 * What it does (docs/augmentation.md has the whole design):
 *   - runs the image's ORIGINAL application as `docker run IMAGE [ARGS]` would: ENTRYPOINT
 *     from /.testbed/original, then argv[1:] (Docker passes the container's CMD, which is the
 *     image's original CMD unless the node overrides it), as the original USER (name or
 *     uid[:gid], supplementary groups from /etc/group, HOME from /etc/passwd when the image
 *     does not set it), in the original WORKDIR (created when missing), with the container's
 *     environment (the augmented image keeps the original ENV); the node's own entrypoint,
 *     user and workdir (/.testbed/node/app, written by the host) replace the originals, as
 *     `docker run --entrypoint/--user/--workdir` would;
 *   - keeps the node up when the application exits, records its exit status and restarts it
 *     according to TESTBED_APP_RESTART=no|on-failure|always (default no);
 *   - reaps every zombie (it is PID 1; a child subreaper otherwise);
 *   - forwards HUP, INT, QUIT, TERM, USR1, USR2, WINCH and the image's STOPSIGNAL to the
 *     application; TERM, INT, QUIT and STOPSIGNAL also stop the node: the start command gets
 *     SIGTERM, and the supervisor exits with the application's status once both are gone;
 *   - waits for /.testbed/run/ready (written by the host once the node's interfaces and
 *     routes exist; /.testbed/run is a tmpfs, empty at every start), then runs the node's
 *     start command, /.testbed/node/start, with `sh -c` (the image's /bin/sh when it has
 *     one, else the injected /.testbed/bin/sh), output in
 *     /var/log/testbed/start_command.{out,err} and start/end/exit status appended to
 *     /var/log/testbed/start_command.log;
 *   - runs the level's services (`service NAME` lines of /.testbed/original; the script is
 *     /.testbed/services/NAME; the `full` level has `sshd`), each
 *     with the injected shell as root in its own session, output appended to
 *     /var/log/testbed/NAME.log, restarted whenever it exits (back-off 1 s doubling to 30 s),
 *     stopped with SIGTERM when the node stops;
 *   - keeps /.testbed/run/status current (KEY=VALUE lines, replaced atomically) so the host
 *     reads the node's state through /proc/PID/root.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUPERVISOR_VERSION "1"
#define TB_DIR "/.testbed"
#define RUN_DIR TB_DIR "/run"
#define READY_FILE RUN_DIR "/ready"
#define STATUS_FILE RUN_DIR "/status"
#define STATUS_TMP RUN_DIR "/.status.tmp"
#define ORIGINAL_FILE TB_DIR "/original"
#define APP_FILE TB_DIR "/node/app"   /* the node's overrides of the originals (entrypoint, user, workdir) */
#define START_FILE TB_DIR "/node/start"
#define SERVICES_DIR TB_DIR "/services"
#define MAX_SERVICES 8
#define SERVICE_RESTART_MIN_MS 1000
#define TB_SHELL TB_DIR "/bin/sh"
#define LOG_DIR "/var/log/testbed"
#define LOG_FALLBACK_DIR RUN_DIR
#define PASSWD_FILE "/etc/passwd"
#define GROUP_FILE "/etc/group"
#define MAX_GROUPS 256
#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 30000
#define RESTART_RESET_S 10

/* ---- small helpers -------------------------------------------------------------- */

static void warnx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("testbed-supervisor: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        warnx("out of memory");
        exit(125);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

/* The whole file in a NUL-terminated buffer; NULL (errno set) when it cannot be read. */
static char *read_file(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                close(fd);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (strlen(path) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int is_number(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* UTC wall clock as 2024-05-01T12:00:00.123Z */
static void iso_now(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03ldZ", base, ts.tv_nsec / 1000000);
}

/* Docker's convention: the exit code, or 128 + the signal that killed the process. */
static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

/* A value on one line: newlines and tabs become spaces. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

/* ---- the image's original configuration (/.testbed/original) ------------------- */
/*
 * Written by plugins/module_utils/augment.py.  One `KEY VALUE` per line, split at the first
 * space; in VALUE, `\\` is a backslash and `\n` a newline (nothing else is escaped).  Lists
 * (entrypoint, cmd) repeat their key, one line per element, in order.  Unknown keys are
 * ignored (newer writers may add some).  Lines starting with '#' are comments.
 */
struct original {
    char **entrypoint;
    int n_entrypoint;
    char **cmd;
    int n_cmd;
    char *user;
    char *workdir;
    int env_has_home;
    int stopsignal;
    char **service;   /* the level's services, by name under /.testbed/services */
    int n_service;
    int drop_cmd;     /* the node replaced the ENTRYPOINT and gave no command: Docker drops the image's CMD */
};

static void unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s == '\\' && s[1] == 'n') {
            *out++ = '\n';
            s++;
        } else if (*s == '\\' && s[1] == '\\') {
            *out++ = '\\';
            s++;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

static void list_add(char ***list, int *n, const char *value)
{
    char **nl = realloc(*list, sizeof(char *) * (size_t)(*n + 2));
    if (!nl) {
        warnx("out of memory");
        exit(125);
    }
    nl[*n] = xstrdup(value);
    nl[*n + 1] = NULL;
    *list = nl;
    (*n)++;
}

/* Parse one file of the format above into o; a missing file is fine.  The node's overrides
 * (APP_FILE, written by the host from the node's entrypoint/user/workdir) use the same format
 * plus `entrypoint-set` (what follows replaces the ENTRYPOINT) and `drop-cmd 1`. */
static void read_config(const char *path, struct original *o)
{
    char *buf = read_file(path, NULL);
    if (!buf) {
        if (errno != ENOENT)
            warnx("cannot read %s: %s", path, strerror(errno));
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *value = strchr(line, ' ');
        if (value)
            *value++ = '\0';
        else
            value = line + strlen(line);
        unescape(value);
        if (strcmp(line, "entrypoint") == 0) {
            list_add(&o->entrypoint, &o->n_entrypoint, value);
        } else if (strcmp(line, "entrypoint-set") == 0) {
            for (int i = 0; i < o->n_entrypoint; i++)
                free(o->entrypoint[i]);
            free(o->entrypoint);
            o->entrypoint = NULL;
            o->n_entrypoint = 0;
        } else if (strcmp(line, "drop-cmd") == 0) {
            o->drop_cmd = atoi(value);
        } else if (strcmp(line, "cmd") == 0) {
            list_add(&o->cmd, &o->n_cmd, value);
        } else if (strcmp(line, "user") == 0) {
            free(o->user);
            o->user = xstrdup(value);
        } else if (strcmp(line, "workdir") == 0) {
            free(o->workdir);
            o->workdir = xstrdup(value);
        } else if (strcmp(line, "env-has-home") == 0) {
            o->env_has_home = atoi(value);
        } else if (strcmp(line, "stopsignal") == 0) {
            o->stopsignal = atoi(value);
        } else if (strcmp(line, "service") == 0) {
            list_add(&o->service, &o->n_service, value);
        }
    }
    free(buf);
}

static void read_original(struct original *o)
{
    memset(o, 0, sizeof(*o));
    o->user = xstrdup("");
    o->workdir = xstrdup("");
    read_config(ORIGINAL_FILE, o);
    read_config(APP_FILE, o);
}

/* ---- users and groups, resolved like runc (libcontainer/user GetExecUser) ------- */

struct exec_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
    int ngroups;
    char home[PATH_MAX];
};

/* Splits a passwd/group line at ':' into at most max fields; returns the count. */
static int split_colon(char *line, char **fields, int max)
{
    int n = 0;
    fields[n++] = line;
    for (char *p = line; *p && n < max; p++) {
        if (*p == ':') {
            *p = '\0';
            fields[n++] = p + 1;
        }
    }
    return n;
}

/*
 * Fills u from USER as Docker does: "" is root; "name" or "uid" picks the passwd entry (first
 * match; a numeric uid without an entry is fine, with gid 0 and HOME /), and the user's
 * supplementary groups are the /etc/group entries that list the matched name;
 * "user:group" sets the primary group explicitly (name or gid) and no supplementary groups.
 * The primary group is always among the supplementary groups, as with Docker.
 * Returns 0, or -1 with a message in err.
 */
static int resolve_user(const char *spec, struct exec_user *u, char *err, size_t errlen)
{
    char userarg[256], grouparg[256] = "";
    int has_group = 0;
    snprintf(userarg, sizeof(userarg), "%s", spec);
    char *colon = strchr(userarg, ':');
    if (colon) {
        *colon = '\0';
        snprintf(grouparg, sizeof(grouparg), "%s", colon + 1);
        has_group = 1;
    }
    u->uid = 0;
    u->gid = 0;
    u->ngroups = 0;
    strcpy(u->home, "/");
    int user_numeric = is_number(userarg);
    unsigned long uid_arg = user_numeric ? strtoul(userarg, NULL, 10) : 0;
    char matched[256] = "";
    int found = 0;

    char *buf = read_file(PASSWD_FILE, NULL);
    if (buf) {
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
            char *f[7];
            if (line[0] == '#' || line[0] == '\0')
                continue;
            int n = split_colon(line, f, 7);
            if (n < 3 || !is_number(f[2]))
                continue;
            unsigned long uid = strtoul(f[2], NULL, 10);
            int match;
            if (userarg[0] == '\0')
                match = (uid == 0);
            else if (user_numeric)
                match = (uid == uid_arg);
            else
                match = (strcmp(f[0], userarg) == 0);
            if (!match)
                continue;
            found = 1;
            snprintf(matched, sizeof(matched), "%s", f[0]);
            u->uid = (uid_t)uid;
            u->gid = (n >= 4 && is_number(f[3])) ? (gid_t)strtoul(f[3], NULL, 10) : 0;
            if (n >= 6 && f[5][0])
                snprintf(u->home, sizeof(u->home), "%s", f[5]);
        }
        free(buf);
    }
    if (!found && userarg[0] != '\0') {
        if (!user_numeric) {
            snprintf(err, errlen, "unable to find user %s: no matching entries in passwd file", userarg);
            return -1;
        }
        u->uid = (uid_t)uid_arg;
    }

    if (has_group || matched[0]) {
        int group_numeric = is_number(grouparg);
        unsigned long gid_arg = group_numeric ? strtoul(grouparg, NULL, 10) : 0;
        int group_found = 0;
        buf = read_file(GROUP_FILE, NULL);
        if (buf) {
            char *save = NULL;
            for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[4];
                if (line[0] == '#' || line[0] == '\0')
                    continue;
                int n = split_colon(line, f, 4);
                if (n < 3 || !is_number(f[2]))
                    continue;
                gid_t gid = (gid_t)strtoul(f[2], NULL, 10);
                if (has_group) {
                    int match = group_numeric ? (gid == gid_arg) : (strcmp(f[0], grouparg) == 0);
                    if (match) {
                        u->gid = gid;
                        group_found = 1;
                        break;
                    }
                } else if (n >= 4) {
                    char *save2 = NULL;
                    for (char *m = strtok_r(f[3], ",", &save2); m; m = strtok_r(NULL, ",", &save2)) {
                        if (strcmp(m, matched) == 0) {
                            if (u->ngroups < MAX_GROUPS)
                                u->groups[u->ngroups++] = gid;
                            break;
                        }
                    }
                }
            }
            free(buf);
        }
        if (has_group && !group_found) {
            if (!group_numeric) {
                snprintf(err, errlen, "unable to find group %s: no matching entries in group file", grouparg);
                return -1;
            }
            u->gid = (gid_t)gid_arg;
        }
    }
    /* Docker (checked with 20.10) also puts the primary group among the supplementary ones:
     * `docker run -u 1234:5 IMAGE` has Groups: 5, a root process in scratch Groups: 0. */
    int has_primary = 0;
    for (int i = 0; i < u->ngroups; i++)
        if (u->groups[i] == u->gid)
            has_primary = 1;
    if (!has_primary) {
        if (u->ngroups == MAX_GROUPS)
            u->ngroups--;
        memmove(u->groups + 1, u->groups, sizeof(gid_t) * (size_t)u->ngroups);
        u->groups[0] = u->gid;
        u->ngroups++;
    }
    return 0;
}

/* ---- state ------------------------------------------------------------------------ */

enum app_state { APP_NONE, APP_RUNNING, APP_EXITED };
enum start_state { START_WAITING, START_RUNNING, START_EXITED, START_NONE, START_FAILED };
enum restart_policy { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };

static struct original orig;
static char **app_argv;
static int app_argc;
static enum restart_policy restart_policy = RESTART_NO;

static enum app_state app_state = APP_NONE;
static pid_t app_pid;
static int app_code = -1;
static int app_restarts;
static long long app_started_ms;
static long long restart_at_ms = -1;
static int restart_delay_ms = RESTART_MIN_MS;
static char app_error[512];

static enum start_state start_state = START_WAITING;
static pid_t start_pid;
static int start_code = -1;
static long long start_started_ms;
static char start_error[512];
static int start_log_fd = -1;
static char log_dir[64] = LOG_DIR;

struct service {
    char name[64];
    char path[PATH_MAX];
    pid_t pid;
    int code;                 /* last exit code, -1 before the first exit */
    int restarts;
    long long started_ms;
    long long restart_at_ms;  /* -1: not scheduled */
    int delay_ms;
};
static struct service services[MAX_SERVICES];
static int n_services;

static int ready;
static int stopping;
static int status_dirty = 1;

static sigset_t handled;

static void write_status(void)
{
    char buf[4096];
    size_t len = 0;
#define ADD(...) len += (size_t)snprintf(buf + len, len < sizeof(buf) ? sizeof(buf) - len : 0, __VA_ARGS__)
    ADD("format=1\nversion=%s\n", SUPERVISOR_VERSION);
    ADD("supervisor=%s\n", stopping ? "stopping" : "running");
    ADD("ready=%s\n", ready ? "yes" : "no");
    switch (app_state) {
    case APP_NONE:
        ADD("app=none\n");
        break;
    case APP_RUNNING:
        ADD("app=running\napp_pid=%d\n", (int)app_pid);
        break;
    case APP_EXITED:
        ADD("app=exited:%d\n", app_code);
        break;
    }
    ADD("app_restarts=%d\n", app_restarts);
    ADD("app_restart=%s\n", restart_policy == RESTART_NO ? "no" : restart_policy == RESTART_ALWAYS ? "always" : "on-failure");
    if (app_error[0])
        ADD("app_error=%s\n", app_error);
    switch (start_state) {
    case START_WAITING:
        ADD("start=waiting\n");
        break;
    case START_RUNNING:
        ADD("start=running\nstart_pid=%d\n", (int)start_pid);
        break;
    case START_EXITED:
        ADD("start=exited:%d\n", start_code);
        break;
    case START_NONE:
        ADD("start=none\n");
        break;
    case START_FAILED:
        ADD("start=exited:%d\n", start_code);
        break;
    }
    if (start_error[0])
        ADD("start_error=%s\n", start_error);
    if (start_state != START_WAITING && start_state != START_NONE)
        ADD("start_logs=%s\n", log_dir);
    for (int i = 0; i < n_services; i++) {
        struct service *sv = &services[i];
        if (sv->pid > 0)
            ADD("service_%s=running\nservice_%s_pid=%d\n", sv->name, sv->name, (int)sv->pid);
        else
            ADD("service_%s=exited:%d\n", sv->name, sv->code);
        ADD("service_%s_restarts=%d\n", sv->name, sv->restarts);
    }
#undef ADD
    if (len >= sizeof(buf))
        len = sizeof(buf) - 1;
    int fd = open(STATUS_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return;
    int ok = write_all(fd, buf, len) == 0;
    close(fd);
    if (!ok || rename(STATUS_TMP, STATUS_FILE) < 0)
        unlink(STATUS_TMP);
    status_dirty = 0;
}

/* ---- children ------------------------------------------------------------------ */

/* In a child before exec: an empty signal mask and default dispositions. */
static void child_signals(void)
{
    sigset_t empty;
    sigemptyset(&empty);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&handled, sig) == 1)
            signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &empty, NULL);
}

/* Reports errno and a message to the parent through the close-on-exec pipe, then exits. */
static void child_fail(int fd, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (fd >= 0)
        write_all(fd, msg, strlen(msg));
    warnx("%s", msg);
    _exit(code);
}

/* Reads the child's exec error (empty when exec succeeded). */
static void read_exec_error(int fd, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (;;) {
        ssize_t r = read(fd, out + len, n - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len >= n - 1)
            break;
    }
    out[len] = '\0';
    one_line(out);
    close(fd);
}

static void start_app(void)
{
    struct exec_user u;
    char err[512] = "";
    restart_at_ms = -1;
    if (app_argc == 0) {
        app_state = APP_NONE;
        status_dirty = 1;
        return;
    }
    app_error[0] = '\0';
    if (resolve_user(orig.user, &u, err, sizeof(err)) < 0) {
        warnx("%s", err);
        snprintf(app_error, sizeof(app_error), "%s", err);
        app_state = APP_EXITED;
        app_code = 126;
        app_started_ms = now_ms();
        status_dirty = 1;
        return;
    }
    /* HOME: the image's own wins; otherwise runc gives the user's passwd home ("/" if none).
     * The supervisor runs as root and so got root's; replace it unless the image set it. */
    const char *home = getenv("HOME");
    int set_home = !orig.env_has_home || !home || !*home;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(app_error, sizeof(app_error), "pipe: %s", strerror(errno));
        app_state = APP_EXITED;
        app_code = 125;
        status_dirty = 1;
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(app_error, sizeof(app_error), "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        app_state = APP_EXITED;
        app_code = 125;
        status_dirty = 1;
        return;
    }
    if (pid == 0) {
        close(pipefd[0]);
        int efd = pipefd[1];
        /* Its own process group, in the foreground of the terminal when there is one
         * (docker run -t), so that ^C reaches the application and not the supervisor. */
        setpgid(0, 0);
        if (isatty(STDIN_FILENO)) {
            sigset_t ttou, old;
            sigemptyset(&ttou);
            sigaddset(&ttou, SIGTTOU);
            sigprocmask(SIG_BLOCK, &ttou, &old);
            tcsetpgrp(STDIN_FILENO, getpid());
            sigprocmask(SIG_SETMASK, &old, NULL);
        }
        child_signals();
        const char *wd = orig.workdir[0] ? orig.workdir : "/";
        int cd_ok = chdir(wd) == 0;
        if (!cd_ok && errno == ENOENT && mkdir_p(wd, 0755) == 0)
            cd_ok = chdir(wd) == 0;
        if (setgroups((size_t)u.ngroups, u.groups) < 0)
            child_fail(efd, 126, "setgroups: %s", strerror(errno));
        if (setgid(u.gid) < 0)
            child_fail(efd, 126, "setgid %u: %s", (unsigned)u.gid, strerror(errno));
        if (setuid(u.uid) < 0)
            child_fail(efd, 126, "setuid %u: %s", (unsigned)u.uid, strerror(errno));
        if (!cd_ok && chdir(wd) < 0) /* a directory only the user may enter */
            child_fail(efd, 126, "chdir to %s: %s", wd, strerror(errno));
        if (set_home)
            setenv("HOME", u.home, 1);
        execvp(app_argv[0], app_argv);
        int e = errno;
        child_fail(efd, e == ENOENT ? 127 : 126, "exec %s: %s", app_argv[0], strerror(e));
    }
    close(pipefd[1]);
    char exec_err[512];
    read_exec_error(pipefd[0], exec_err, sizeof(exec_err));
    app_pid = pid;
    app_state = APP_RUNNING;
    app_started_ms = now_ms();
    if (exec_err[0])
        snprintf(app_error, sizeof(app_error), "%s", exec_err);
    status_dirty = 1;
}

static void app_exited(int status)
{
    app_code = exit_code(status);
    app_state = APP_EXITED;
    app_pid = 0;
    status_dirty = 1;
    if (stopping)
        return;
    int again = restart_policy == RESTART_ALWAYS || (restart_policy == RESTART_ON_FAILURE && app_code != 0);
    if (!again)
        return;
    if (now_ms() - app_started_ms >= RESTART_RESET_S * 1000)
        restart_delay_ms = RESTART_MIN_MS;
    restart_at_ms = now_ms() + restart_delay_ms;
    restart_delay_ms = restart_delay_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : restart_delay_ms * 2;
}

static void log_line(const char *fmt, ...)
{
    if (start_log_fd < 0)
        return;
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    write_all(start_log_fd, buf, (size_t)n);
}

/* Opens LOG_DIR/start_command.NAME, falling back to the run tmpfs (read-only root fs). */
static int open_log(const char *name, int flags)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/start_command.%s", log_dir, name);
    return open(path, flags | O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
}

static void start_command(void)
{
    size_t len = 0;
    char *cmd = read_file(START_FILE, &len);
    if (!cmd) {
        if (errno != ENOENT) {
            snprintf(start_error, sizeof(start_error), "cannot read %s: %s", START_FILE, strerror(errno));
            start_state = START_FAILED;
            start_code = 126;
        } else {
            start_state = START_NONE;
        }
        status_dirty = 1;
        return;
    }
    int blank = 1;
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)cmd[i]))
            blank = 0;
    if (blank) {
        free(cmd);
        start_state = START_NONE;
        status_dirty = 1;
        return;
    }
    if (mkdir_p(LOG_DIR, 0755) < 0 || access(LOG_DIR, W_OK) < 0)
        snprintf(log_dir, sizeof(log_dir), "%s", LOG_FALLBACK_DIR);
    int out = open_log("out", O_TRUNC);
    int errfd = open_log("err", O_TRUNC);
    start_log_fd = open_log("log", O_APPEND);
    if (out < 0 || errfd < 0) {
        /* last resort: the run tmpfs */
        if (out >= 0)
            close(out);
        if (errfd >= 0)
            close(errfd);
        if (start_log_fd >= 0)
            close(start_log_fd);
        snprintf(log_dir, sizeof(log_dir), "%s", LOG_FALLBACK_DIR);
        out = open_log("out", O_TRUNC);
        errfd = open_log("err", O_TRUNC);
        start_log_fd = open_log("log", O_APPEND);
    }
    const char *shell = access("/bin/sh", X_OK) == 0 ? "/bin/sh" : TB_SHELL;
    char when[64];
    iso_now(when, sizeof(when));
    char *shown = xstrdup(cmd);
    one_line(shown);
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        pipefd[0] = pipefd[1] = -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(start_error, sizeof(start_error), "fork: %s", strerror(errno));
        start_state = START_FAILED;
        start_code = 125;
        log_line("start_time=%s error=%s command=%s", when, start_error, shown);
    } else if (pid == 0) {
        if (pipefd[0] >= 0)
            close(pipefd[0]);
        setsid();
        child_signals();
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            if (devnull != STDIN_FILENO)
                close(devnull);
        }
        if (out >= 0)
            dup2(out, STDOUT_FILENO);
        if (errfd >= 0)
            dup2(errfd, STDERR_FILENO);
        if (chdir("/") < 0)
            _exit(126);
        execl(shell, "sh", "-c", cmd, (char *)NULL);
        int e = errno;
        child_fail(pipefd[1], e == ENOENT ? 127 : 126, "exec %s: %s", shell, strerror(e));
    } else {
        start_pid = pid;
        start_state = START_RUNNING;
        start_started_ms = now_ms();
        log_line("start_time=%s pid=%d shell=%s command=%s", when, (int)pid, shell, shown);
        if (pipefd[1] >= 0) {
            close(pipefd[1]);
            char exec_err[512];
            read_exec_error(pipefd[0], exec_err, sizeof(exec_err));
            if (exec_err[0])
                snprintf(start_error, sizeof(start_error), "%s", exec_err);
        }
    }
    if (pid != 0) {
        if (out >= 0)
            close(out);
        if (errfd >= 0)
            close(errfd);
    }
    free(shown);
    free(cmd);
    status_dirty = 1;
}

static void start_exited(int status)
{
    char when[64];
    start_code = exit_code(status);
    start_state = START_EXITED;
    start_pid = 0;
    iso_now(when, sizeof(when));
    long long ms = now_ms() - start_started_ms;
    if (WIFSIGNALED(status))
        log_line("end_time=%s exit_status=%d signal=%d duration=%lld.%03lld", when, start_code, WTERMSIG(status),
                 ms / 1000, ms % 1000);
    else
        log_line("end_time=%s exit_status=%d duration=%lld.%03lld", when, start_code, ms / 1000, ms % 1000);
    if (start_log_fd >= 0) {
        close(start_log_fd);
        start_log_fd = -1;
    }
    status_dirty = 1;
}

/* ---- services (/.testbed/services/NAME, run with the injected shell) -------------------- */

static int service_name_ok(const char *name)
{
    if (!*name || strlen(name) >= sizeof(services[0].name))
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return 0;
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const struct service *)a)->name, ((const struct service *)b)->name);
}

/* The services /.testbed/original names (an image augmented again at another level gets a
 * new file: services of a former level, whose scripts stay in a lower layer, do not run). */
static void find_services(void)
{
    for (int i = 0; i < orig.n_service; i++) {
        const char *name = orig.service[i];
        if (!service_name_ok(name)) {
            warnx("service name %s is not valid: ignored", name);
            continue;
        }
        if (n_services == MAX_SERVICES) {
            warnx("more than %d services: %s ignored", MAX_SERVICES, name);
            continue;
        }
        struct service *sv = &services[n_services];
        memset(sv, 0, sizeof(*sv));
        memcpy(sv->name, name, strlen(name) + 1); /* service_name_ok: it fits */
        snprintf(sv->path, sizeof(sv->path), "%s/%s", SERVICES_DIR, name);
        sv->code = -1;
        sv->restart_at_ms = -1;
        sv->delay_ms = SERVICE_RESTART_MIN_MS;
        n_services++;
    }
    qsort(services, (size_t)n_services, sizeof(services[0]), compare_names);
}

static void start_service(struct service *sv)
{
    sv->restart_at_ms = -1;
    char logpath[PATH_MAX];
    const char *dir = (mkdir_p(LOG_DIR, 0755) == 0 && access(LOG_DIR, W_OK) == 0) ? LOG_DIR : LOG_FALLBACK_DIR;
    snprintf(logpath, sizeof(logpath), "%s/%s.log", dir, sv->name);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
    pid_t pid = fork();
    if (pid < 0) {
        warnx("fork for service %s: %s", sv->name, strerror(errno));
        sv->code = 125;
        sv->restart_at_ms = now_ms() + sv->delay_ms;
    } else if (pid == 0) {
        setsid();
        child_signals();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            if (logfd < 0) {
                dup2(devnull, STDOUT_FILENO);
                dup2(devnull, STDERR_FILENO);
            }
            if (devnull > STDERR_FILENO)
                close(devnull);
        }
        if (logfd >= 0) {
            dup2(logfd, STDOUT_FILENO);
            dup2(logfd, STDERR_FILENO);
        }
        if (chdir("/") < 0)
            _exit(126);
        execl(TB_SHELL, "sh", sv->path, (char *)NULL);
        warnx("exec %s %s: %s", TB_SHELL, sv->path, strerror(errno));
        _exit(127);
    } else {
        sv->pid = pid;
        sv->started_ms = now_ms();
    }
    if (logfd >= 0)
        close(logfd);
    status_dirty = 1;
}

static void service_exited(struct service *sv, int status)
{
    sv->code = exit_code(status);
    sv->pid = 0;
    status_dirty = 1;
    if (stopping)
        return;
    if (now_ms() - sv->started_ms >= RESTART_RESET_S * 1000)
        sv->delay_ms = SERVICE_RESTART_MIN_MS;
    sv->restart_at_ms = now_ms() + sv->delay_ms;
    sv->delay_ms = sv->delay_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : sv->delay_ms * 2;
}

static int services_running(void)
{
    for (int i = 0; i < n_services; i++)
        if (services[i].pid > 0)
            return 1;
    return 0;
}

static void stop_services(void)
{
    for (int i = 0; i < n_services; i++) {
        services[i].restart_at_ms = -1;
        if (services[i].pid > 0)
            kill(-services[i].pid, SIGTERM);
    }
}

/* The earliest scheduled service restart, or -1. */
static long long next_service_restart(void)
{
    long long at = -1;
    for (int i = 0; i < n_services; i++)
        if (services[i].restart_at_ms >= 0 && (at < 0 || services[i].restart_at_ms < at))
            at = services[i].restart_at_ms;
    return at;
}

static void restart_due_services(void)
{
    if (stopping)
        return;
    long long now = now_ms();
    for (int i = 0; i < n_services; i++)
        if (services[i].restart_at_ms >= 0 && now >= services[i].restart_at_ms) {
            services[i].restarts++;
            start_service(&services[i]);
        }
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == app_pid && app_state == APP_RUNNING)
            app_exited(status);
        else if (pid == start_pid && start_state == START_RUNNING)
            start_exited(status);
        else
            for (int i = 0; i < n_services; i++)
                if (services[i].pid == pid) {
                    service_exited(&services[i], status);
                    break;
                }
        /* anything else: an orphan reparented to us, now reaped */
    }
}

static void check_ready(void)
{
    if (ready || access(READY_FILE, F_OK) < 0)
        return;
    ready = 1;
    status_dirty = 1;
    if (!stopping && start_state == START_WAITING)
        start_command();
}

static int is_stop_signal(int sig)
{
    return sig == SIGTERM || sig == SIGINT || sig == SIGQUIT || (orig.stopsignal > 0 && sig == orig.stopsignal);
}

static void on_signal(int sig)
{
    if (sig == SIGCHLD) {
        reap();
        return;
    }
    if (app_state == APP_RUNNING && app_pid > 0)
        kill(app_pid, sig);
    if (is_stop_signal(sig)) {
        if (!stopping) {
            stopping = 1;
            restart_at_ms = -1;
            status_dirty = 1;
        }
        if (start_state == START_RUNNING && start_pid > 0)
            kill(-start_pid, SIGTERM);
        stop_services();
    }
}

static enum restart_policy parse_restart(const char *s)
{
    if (!s || !*s || strcmp(s, "no") == 0)
        return RESTART_NO;
    if (strcmp(s, "on-failure") == 0)
        return RESTART_ON_FAILURE;
    if (strcmp(s, "always") == 0)
        return RESTART_ALWAYS;
    warnx("TESTBED_APP_RESTART=%s is not one of no, on-failure, always: using no", s);
    return RESTART_NO;
}

int main(int argc, char **argv)
{
    if (getpid() != 1)
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    read_original(&orig);
    restart_policy = parse_restart(getenv("TESTBED_APP_RESTART"));

    /* the application: original ENTRYPOINT + our argv[1:] (Docker's CMD for this container) */
    app_argv = xmalloc(sizeof(char *) * (size_t)(orig.n_entrypoint + argc + 1));
    for (int i = 0; i < orig.n_entrypoint; i++)
        app_argv[app_argc++] = orig.entrypoint[i];
    for (int i = 1; i < argc && !orig.drop_cmd; i++)
        app_argv[app_argc++] = argv[i];
    app_argv[app_argc] = NULL;

    sigemptyset(&handled);
    int sigs[] = {SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&handled, sigs[i]);
    if (orig.stopsignal > 0 && orig.stopsignal < NSIG && orig.stopsignal != SIGKILL && orig.stopsignal != SIGSTOP)
        sigaddset(&handled, orig.stopsignal);
    sigprocmask(SIG_BLOCK, &handled, NULL);
    int sfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        warnx("signalfd: %s", strerror(errno));
        return 125;
    }

    /* /.testbed/run is a tmpfs mounted by the host, empty at every start.  Without one
     * (a plain `docker run`) it is a directory of the image: clear what a previous run left. */
    struct stat run_st, tb_st;
    if (mkdir_p(RUN_DIR, 0755) == 0 && stat(RUN_DIR, &run_st) == 0 && stat(TB_DIR, &tb_st) == 0 &&
        run_st.st_dev == tb_st.st_dev) {
        unlink(READY_FILE);
        unlink(STATUS_FILE);
    }
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd >= 0 && inotify_add_watch(ifd, RUN_DIR, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB) < 0) {
        close(ifd);
        ifd = -1;
    }

    find_services();
    for (int i = 0; i < n_services; i++)
        start_service(&services[i]);
    start_app();
    check_ready();
    write_status();

    for (;;) {
        if (stopping && app_state != APP_RUNNING && start_state != START_RUNNING && !services_running()) {
            write_status();
            return app_code >= 0 ? app_code : 0;
        }
        int timeout = -1;
        long long wake = restart_at_ms;
        long long svc_wake = stopping ? -1 : next_service_restart();
        if (svc_wake >= 0 && (wake < 0 || svc_wake < wake))
            wake = svc_wake;
        if (wake >= 0) {
            long long left = wake - now_ms();
            timeout = left < 0 ? 0 : (int)left;
        }
        if (!ready && ifd < 0 && (timeout < 0 || timeout > 500))
            timeout = 500; /* no inotify: poll for the ready marker */
        struct pollfd fds[2] = {{sfd, POLLIN, 0}, {ifd, POLLIN, 0}};
        int n = poll(fds, ifd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR) {
            warnx("poll: %s", strerror(errno));
            sleep(1);
        }
        if (n > 0 && (fds[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                on_signal((int)si.ssi_signo);
        }
        if (n > 0 && ifd >= 0 && (fds[1].revents & POLLIN)) {
            char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
            while (read(ifd, evbuf, sizeof(evbuf)) > 0)
                ;
        }
        /* SIGCHLD may coalesce with others or be missed between reads: reap every round */
        reap();
        check_ready();
        if (restart_at_ms >= 0 && now_ms() >= restart_at_ms && !stopping) {
            app_restarts++;
            start_app();
        }
        restart_due_services();
        if (status_dirty)
            write_status();
    }
}
