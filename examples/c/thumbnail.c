/*
 * thumbnail IN OUT.webp [SIZE]: writes a WebP that fits in SIZE x SIZE (default 256), upright,
 * sRGB, without any metadata. Build (after bindings-c/install.sh PREFIX):
 *   cc thumbnail.c $(pkg-config --cflags --libs imgest) -o thumbnail
 */
#include <imgest.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s IN OUT.webp [SIZE]\n", argv[0]);
        return 2;
    }
    int size = argc > 3 ? atoi(argv[3]) : 256;
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    fseek(in, 0, SEEK_END);
    long len = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *data = malloc(len > 0 ? (size_t)len : 1);
    size_t got = len > 0 ? fread(data, 1, (size_t)len, in) : 0;
    fclose(in);

    char json[160];
    snprintf(json, sizeof json,
             "{\"variants\":[{\"name\":\"thumb\",\"max_width\":%d,\"max_height\":%d}],"
             "\"placeholder\":false}",
             size, size);
    imgest_options *opts = NULL;
    imgest_output *out = NULL;
    imgest_status s = imgest_options_from_json(json, &opts);
    if (s == IMGEST_OK) s = imgest_process(data, got, opts, &out);
    free(data);
    imgest_options_free(opts);
    if (s != IMGEST_OK) {
        fprintf(stderr, "%s: %s (%s)\n", argv[1], imgest_last_error(), imgest_status_str(s));
        return 1;
    }
    size_t n = 0;
    const uint8_t *webp = imgest_output_variant_data(out, 0, &n);
    FILE *f = fopen(argv[2], "wb");
    int ok = f && fwrite(webp, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    printf("%s: %ux%u, %zu bytes, dominant %s\n", argv[2], imgest_output_variant_width(out, 0),
           imgest_output_variant_height(out, 0), n,
           imgest_output_dominant_color(out) ? imgest_output_dominant_color(out) : "-");
    imgest_output_free(out);
    return ok ? 0 : 1;
}
