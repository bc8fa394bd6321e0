/* A tiny static program for the augmentation zoo's distroless-like image: it reports who and
 * where it runs, then waits for SIGTERM.  No libc services beyond the basics. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    char cwd[4096];
    const char *mode = getenv("APP_MODE");
    if (!getcwd(cwd, sizeof(cwd)))
        cwd[0] = '\0';
    printf("hello-app uid=%d gid=%d cwd=%s mode=%s args=", (int)getuid(), (int)getgid(), cwd, mode ? mode : "");
    for (int i = 1; i < argc; i++)
        printf("%s%s", i > 1 ? "," : "", argv[i]);
    printf("\n");
    fflush(stdout);
    signal(SIGTERM, on_term);
    while (!stop)
        pause();
    printf("hello-app stopping\n");
    return 0;
}
