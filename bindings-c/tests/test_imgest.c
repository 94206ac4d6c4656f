/*
 * Tests of the C API: test_imgest SAMPLE.jpg [MANIFEST]
 *
 * SAMPLE is a 1200x800 JPEG (examples/cli/sample/sunrise.jpg). MANIFEST (written by run.sh from
 * the shared corpus) has one line per file: "<expect> <width> <height> <path>" where <expect>
 * is "ok", "any" or a status number. The variant hashes of SAMPLE are printed as
 * "sha256 <name> <hex>" for the parity check against the Rust CLI.
 */
#define _POSIX_C_SOURCE 200809L
#include "imgest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return buf;
}

static void expect_status(imgest_status got, imgest_status want, const char *what) {
    CHECK(got == want, "%s: got %d (%s), want %d (%s); last error: %s", what, got,
          imgest_status_str(got), want, imgest_status_str(want), imgest_last_error());
    if (got != IMGEST_OK) CHECK(strlen(imgest_last_error()) > 0, "%s: empty error message", what);
}

static void test_version_and_table(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", IMGEST_VERSION_MAJOR, IMGEST_VERSION_MINOR,
             IMGEST_VERSION_PATCH);
    CHECK(strcmp(imgest_version(), want) == 0, "version %s vs macros %s", imgest_version(), want);
    const struct { imgest_status s; const char *name; } table[] = {
        {IMGEST_OK, "ok"},
        {IMGEST_UNSUPPORTED_FORMAT, "unsupported_format"},
        {IMGEST_NOT_AN_IMAGE, "not_an_image"},
        {IMGEST_CORRUPT_INPUT, "corrupt_input"},
        {IMGEST_LIMIT_EXCEEDED, "limit_exceeded"},
        {IMGEST_INVALID_OPTIONS, "invalid_options"},
        {IMGEST_ENCODE_FAILED, "encode_failed"},
        {IMGEST_STORAGE, "storage"},
        {IMGEST_TIMEOUT, "timeout"},
        {IMGEST_CANCELLED, "cancelled"},
        {IMGEST_NULL_ARGUMENT, "null_argument"},
        {IMGEST_INTERNAL, "internal"},
        {12345, "unknown"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        CHECK(strcmp(imgest_status_str(table[i].s), table[i].name) == 0, "status %d is %s",
              table[i].s, imgest_status_str(table[i].s));
}

static void test_sample(const unsigned char *data, size_t len) {
    imgest_output *out = NULL;
    expect_status(imgest_process(data, len, NULL, &out), IMGEST_OK, "sample");
    if (!out) return;
    const char *names[] = {"thumbnail", "medium", "large", "original"};
    const unsigned sizes[][2] = {{150, 100}, {800, 533}, {1200, 800}, {1200, 800}};
    CHECK(imgest_output_variant_count(out) == 4, "%zu variants", imgest_output_variant_count(out));
    for (size_t i = 0; i < 4; i++) {
        size_t n = 0;
        const uint8_t *bytes = imgest_output_variant_data(out, i, &n);
        CHECK(strcmp(imgest_output_variant_name(out, i), names[i]) == 0, "name %zu", i);
        CHECK(strcmp(imgest_output_variant_format(out, i), "webp") == 0, "format %zu", i);
        CHECK(imgest_output_variant_width(out, i) == sizes[i][0] &&
                  imgest_output_variant_height(out, i) == sizes[i][1],
              "%s is %ux%u", names[i], imgest_output_variant_width(out, i),
              imgest_output_variant_height(out, i));
        CHECK(bytes && n > 12 && memcmp(bytes, "RIFF", 4) == 0 && memcmp(bytes + 8, "WEBP", 4) == 0,
              "%s is not a WebP", names[i]);
        CHECK(strlen(imgest_output_variant_sha256(out, i)) == 64, "sha256 %zu", i);
        printf("sha256 %s %s\n", imgest_output_variant_name(out, i),
               imgest_output_variant_sha256(out, i));
    }
    /* Out of range and NULL are answered, not crashed on. */
    size_t n = 99;
    CHECK(imgest_output_variant_data(out, 4, &n) == NULL && n == 0, "variant 4");
    CHECK(imgest_output_variant_name(out, 4) == NULL, "name 4");
    const char *dominant = imgest_output_dominant_color(out);
    CHECK(dominant && dominant[0] == '#' && strlen(dominant) == 7, "dominant %s", dominant);
    const char *report = imgest_output_report_json(out);
    CHECK(report && strstr(report, "\"format\":\"jpeg\"") && strstr(report, "\"stored_width\":800") && strstr(report, "\"orientation\":6"),
          "report %s", report);
    imgest_output_free(out);
}

static void test_errors(const unsigned char *data, size_t len) {
    imgest_output *out = NULL;
    imgest_options *opts = NULL;

    /* NULL arguments. */
    expect_status(imgest_process(NULL, 10, NULL, &out), IMGEST_NULL_ARGUMENT, "NULL data");
    expect_status(imgest_process(data, len, NULL, NULL), IMGEST_NULL_ARGUMENT, "NULL out");
    expect_status(imgest_options_from_json(NULL, &opts), IMGEST_NULL_ARGUMENT, "NULL json");
    expect_status(imgest_options_from_json("{}", NULL), IMGEST_NULL_ARGUMENT, "NULL out opts");
    expect_status(imgest_options_set_quality(NULL, 80), IMGEST_NULL_ARGUMENT, "NULL opts");
    expect_status(imgest_pipeline_process(NULL, data, len, &out), IMGEST_NULL_ARGUMENT, "NULL pipeline");
    CHECK(imgest_output_variant_count(NULL) == 0, "count of NULL");
    CHECK(imgest_output_report_json(NULL) == NULL, "report of NULL");
    imgest_output_free(NULL);
    imgest_options_free(NULL);
    imgest_pipeline_free(NULL);
    CHECK(out == NULL && opts == NULL, "outputs written on error");

    /* Empty input, not an image, truncated file. */
    expect_status(imgest_process(NULL, 0, NULL, &out), IMGEST_NOT_AN_IMAGE, "empty");
    expect_status(imgest_process((const uint8_t *)"hello, world", 12, NULL, &out),
                  IMGEST_NOT_AN_IMAGE, "text");
    expect_status(imgest_process(data, len / 3, NULL, &out), IMGEST_CORRUPT_INPUT, "truncated");
    CHECK(out == NULL, "output written on error");

    /* Bad options. */
    expect_status(imgest_options_from_json("{bogus", &opts), IMGEST_INVALID_OPTIONS, "bad JSON");
    expect_status(imgest_options_from_json("{\"qualty\": 80}", &opts), IMGEST_INVALID_OPTIONS, "unknown key");
    expect_status(imgest_options_from_json("{\"variants\": []}", &opts), IMGEST_INVALID_OPTIONS, "no variants");
    expect_status(imgest_options_from_json("\"\xff\xfe\"", &opts), IMGEST_INVALID_OPTIONS, "not UTF-8");
    CHECK(opts == NULL, "options written on error");

    /* Setters validate; a limit turns the sample into a bomb. */
    opts = imgest_options_new();
    CHECK(opts != NULL, "options_new");
    expect_status(imgest_options_set_quality(opts, 101), IMGEST_INVALID_OPTIONS, "quality 101");
    expect_status(imgest_options_set_max_pixels(opts, 0), IMGEST_INVALID_OPTIONS, "max_pixels 0");
    expect_status(imgest_options_set_quality(opts, 80), IMGEST_OK, "quality 80");
    expect_status(imgest_options_set_dominant_color(opts, false), IMGEST_OK, "dominant off");
    expect_status(imgest_options_set_placeholder(opts, false), IMGEST_OK, "placeholder off");
    expect_status(imgest_options_set_max_input_bytes(opts, 1u << 20), IMGEST_OK, "max input");
    expect_status(imgest_options_set_max_pixels(opts, 1000), IMGEST_OK, "max_pixels 1000");
    expect_status(imgest_process(data, len, opts, &out), IMGEST_LIMIT_EXCEEDED, "over max_pixels");
    CHECK(strstr(imgest_last_error(), "pixels") != NULL, "message %s", imgest_last_error());
    expect_status(imgest_options_set_max_pixels(opts, 50000000), IMGEST_OK, "max_pixels back");
    expect_status(imgest_process(data, len, opts, &out), IMGEST_OK, "with setters");
    CHECK(out && imgest_output_dominant_color(out) == NULL, "dominant colour off");
    imgest_output_free(out);
    imgest_options_free(opts);
}

static void test_pipeline(const unsigned char *data, size_t len) {
    imgest_options *opts = NULL;
    imgest_pipeline *pipeline = NULL;
    imgest_output *a = NULL, *b = NULL;
    expect_status(imgest_options_from_json(
                      "{\"variants\":[{\"name\":\"small\",\"max_width\":64,\"max_height\":64}],"
                      "\"placeholder\":false}",
                      &opts),
                  IMGEST_OK, "options JSON");
    expect_status(imgest_pipeline_new(opts, &pipeline), IMGEST_OK, "pipeline_new");
    imgest_options_free(opts); /* the pipeline keeps its own copy */
    expect_status(imgest_pipeline_process(pipeline, data, len, &a), IMGEST_OK, "pipeline run 1");
    expect_status(imgest_pipeline_process(pipeline, data, len, &b), IMGEST_OK, "pipeline run 2");
    if (a && b) {
        CHECK(imgest_output_variant_count(a) == 1 && imgest_output_variant_width(a, 0) == 64 &&
                  imgest_output_variant_height(a, 0) == 43,
              "small is %ux%u", imgest_output_variant_width(a, 0), imgest_output_variant_height(a, 0));
        CHECK(strcmp(imgest_output_variant_sha256(a, 0), imgest_output_variant_sha256(b, 0)) == 0,
              "runs differ");
    }
#ifndef PLANT_LEAK /* run.sh builds one binary without this free to prove valgrind notices */
    imgest_output_free(a);
#endif
    imgest_output_free(b);
    imgest_pipeline_free(pipeline);
}

static void test_avif(const unsigned char *data, size_t len) {
    imgest_options *opts = NULL;
    imgest_output *out = NULL;
    expect_status(imgest_options_from_json(
                      "{\"variants\":[{\"name\":\"a\",\"max_width\":64,\"format\":\"avif\","
                      "\"quality\":50,\"effort\":6}],\"placeholder\":false}",
                      &opts),
                  IMGEST_OK, "AVIF options JSON");
    expect_status(imgest_process(data, len, opts, &out), IMGEST_OK, "process to AVIF");
    if (out) {
        size_t n = 0;
        const uint8_t *bytes = imgest_output_variant_data(out, 0, &n);
        CHECK(strcmp(imgest_output_variant_format(out, 0), "avif") == 0, "format %s",
              imgest_output_variant_format(out, 0));
        CHECK(imgest_output_variant_width(out, 0) == 64 && imgest_output_variant_height(out, 0) == 43,
              "a is %ux%u", imgest_output_variant_width(out, 0), imgest_output_variant_height(out, 0));
        CHECK(bytes && n > 12 && memcmp(bytes + 4, "ftypavif", 8) == 0, "not an AVIF file");
        /* AVIF input: the AVIF just written, processed again, at its size. */
        imgest_output *again = NULL;
        expect_status(imgest_process(bytes, n, NULL, &again), IMGEST_OK, "process an AVIF input");
        if (again) {
            const char *report = imgest_output_report_json(again);
            CHECK(report && strstr(report, "\"format\":\"avif\"") != NULL, "source format: %s", report);
            CHECK(imgest_output_variant_width(again, 0) == 64 && imgest_output_variant_height(again, 0) == 43,
                  "AVIF input gave %ux%u", imgest_output_variant_width(again, 0),
                  imgest_output_variant_height(again, 0));
        }
        imgest_output_free(again);
    }
    imgest_output_free(out);
    imgest_options_free(opts);
    opts = NULL;
    expect_status(imgest_options_from_json("{\"variants\":[{\"name\":\"a\",\"effort\":10}]}", &opts),
                  IMGEST_INVALID_OPTIONS, "effort 10");
    CHECK(opts == NULL, "options written on error");
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

struct canceller {
    imgest_cancel *flag;
    double at_ms;
};

static void *cancel_later(void *arg) {
    struct canceller *c = arg;
    struct timespec wait = {0, 30 * 1000 * 1000};
    nanosleep(&wait, NULL);
    c->at_ms = now_ms();
    imgest_cancel_set(c->flag);
    return NULL;
}

static void test_timeout_and_cancel(const unsigned char *data, size_t len) {
    /* A 1 ms budget, from the JSON options and from the setter. */
    imgest_options *opts = NULL;
    imgest_output *out = NULL;
    expect_status(imgest_options_from_json("{\"timeout_ms\": 1}", &opts), IMGEST_OK, "timeout JSON");
    expect_status(imgest_process(data, len, opts, &out), IMGEST_TIMEOUT, "1 ms budget");
    CHECK(out == NULL, "no output on timeout");
    CHECK(strstr(imgest_last_error(), "1 ms budget") != NULL, "message: %s", imgest_last_error());
    expect_status(imgest_options_set_timeout_ms(opts, 0), IMGEST_OK, "no budget");
    expect_status(imgest_process(data, len, opts, &out), IMGEST_OK, "unbounded run");
    imgest_output_free(out);
    out = NULL;
    expect_status(imgest_options_set_timeout_ms(opts, 1), IMGEST_OK, "setter");
    expect_status(imgest_process(data, len, opts, &out), IMGEST_TIMEOUT, "1 ms budget, setter");
    imgest_options_free(opts);

    /* A flag set before the run, then one set by another thread while runs go on. */
    imgest_pipeline *pipeline = NULL;
    expect_status(imgest_pipeline_new(NULL, &pipeline), IMGEST_OK, "pipeline_new");
    imgest_cancel *flag = imgest_cancel_new();
    CHECK(flag != NULL && !imgest_cancel_is_set(flag), "new flag");
    expect_status(imgest_pipeline_process_cancellable(pipeline, data, len, flag, &out), IMGEST_OK,
                  "flag not set");
    imgest_output_free(out);
    out = NULL;
    struct canceller c = {flag, 0};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, cancel_later, &c) == 0, "pthread_create");
    imgest_status s = IMGEST_OK;
    int runs = 0;
    while (s == IMGEST_OK && runs < 10000) {
        s = imgest_pipeline_process_cancellable(pipeline, data, len, flag, &out);
        imgest_output_free(out);
        out = NULL;
        runs++;
    }
    double late = now_ms() - c.at_ms;
    pthread_join(thread, NULL);
    expect_status(s, IMGEST_CANCELLED, "flag set by another thread");
    CHECK(imgest_cancel_is_set(flag), "the flag stays set");
    printf("cancel from another thread: run %d stopped %.1f ms after the flag was set\n", runs, late);
    expect_status(imgest_pipeline_process_cancellable(pipeline, data, len, flag, &out),
                  IMGEST_CANCELLED, "a set flag stays set");
    imgest_cancel_free(flag);
    expect_status(imgest_pipeline_process_cancellable(pipeline, data, len, NULL, &out), IMGEST_OK,
                  "the pipeline runs on");
    imgest_output_free(out);
    imgest_pipeline_free(pipeline);
    imgest_cancel_set(NULL);
    imgest_cancel_free(NULL);
    CHECK(!imgest_cancel_is_set(NULL), "NULL flag");
}

static void test_manifest(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char expect[16], file[4096];
    unsigned w, h;
    int files = 0, bad = 0;
    while (fscanf(f, "%15s %u %u %4095s", expect, &w, &h, file) == 4) {
        size_t len = 0;
        unsigned char *data = read_file(file, &len);
        CHECK(data != NULL, "cannot read %s", file);
        imgest_output *out = NULL;
        imgest_status s = imgest_process(data, len, NULL, &out);
        int ok = 1;
        if (strcmp(expect, "ok") == 0) {
            ok = s == IMGEST_OK;
            if (ok && w) {
                /* The original variant is the upright size. */
                size_t last = imgest_output_variant_count(out) - 1;
                ok = imgest_output_variant_width(out, last) == w && imgest_output_variant_height(out, last) == h;
            }
        } else if (strcmp(expect, "any") != 0) {
            ok = s == atoi(expect);
        }
        if (!ok) {
            fprintf(stderr, "FAIL %s: expected %s (%ux%u), got %s: %s\n", file, expect, w, h,
                    imgest_status_str(s), s ? imgest_last_error() : "");
            bad++;
        }
        imgest_output_free(out);
        free(data);
        files++;
    }
    fclose(f);
    printf("corpus through the C API: %d files, %d failed\n", files, bad);
    CHECK(files > 100 && bad == 0, "%d of %d corpus files failed", bad, files);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SAMPLE.jpg [MANIFEST]\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    unsigned char *sample = read_file(argv[1], &len);
    if (!sample) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    test_version_and_table();
    test_sample(sample, len);
    test_errors(sample, len);
    test_pipeline(sample, len);
    test_avif(sample, len);
    test_timeout_and_cancel(sample, len);
    if (argc > 2) test_manifest(argv[2]);
    free(sample);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("C API: all checks passed\n");
    return 0;
}
