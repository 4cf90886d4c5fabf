/*
 * replay_main.c: runs a libFuzzer target once over every file of a corpus
 * directory (or over files named on the command line), without libFuzzer.
 * ctest uses it to replay tests/fuzz/corpus/<target>/ in every build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long len;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    p = malloc((size_t)len + 1);
    if (p == NULL || fread(p, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(p);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(p, (size_t)len);
    free(p);
    return 0;
}

int
main(int argc, char **argv)
{
    int i, n = 0;

    for (i = 1; i < argc; i++) {
        struct stat st;
        struct dirent *e;
        DIR *d;

        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no such file %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                return 1;
            n++;
            continue;
        }
        if ((d = opendir(argv[i])) == NULL)
            return 1;
        while ((e = readdir(d)) != NULL) {
            char path[4096];
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (run_file(path) != 0) {
                closedir(d);
                return 1;
            }
            n++;
        }
        closedir(d);
    }
    if (n == 0) {
        fprintf(stderr, "replay: empty corpus\n");
        return 1;
    }
    printf("replayed %d inputs\n", n);
    return 0;
}
