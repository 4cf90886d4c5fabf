/*
 * main.c: the kzsync command line (DESIGN.md §8).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void
usage(FILE *f)
{
    fputs("usage: kzsync COMMAND DIR [OPTIONS]\n"
          "       kzsync --help | --version\n",
          f);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        puts("kzsync 0.1.0");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
