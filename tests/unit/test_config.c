/* test_config.c: settings come from the right source in the right order,
 * every mistake is reported with its setting, problem and source, and a
 * secret's content never leaves its struct. */
#include "config.h"
#include "zl.h"
#include "zltest.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the settings under test ------------------------------------------------ */

struct worker_cfg {
    char *name;
    int64_t batch_size_max;
    bool dry_run;
    struct zl_secret key;
};

static const struct zl_setting worker_settings[] = {
    {"ZL_TEST_NAME", ZL_CFG_STR, "default-name", "A name.",
     offsetof(struct worker_cfg, name), 0, 0},
    {"ZL_TEST_BATCH_SIZE_MAX", ZL_CFG_INT, "500", "Messages handled per batch.",
     offsetof(struct worker_cfg, batch_size_max), 1, 10000},
    {"ZL_TEST_DRY_RUN", ZL_CFG_BOOL, "false", "Change nothing | only log.",
     offsetof(struct worker_cfg, dry_run), 0, 0},
    {"ZL_TEST_KEY_FILE", ZL_CFG_SECRET_FILE, "", "File holding the signer key.",
     offsetof(struct worker_cfg, key), 0, 0},
};

struct db_cfg {
    char *database_url;
    int64_t offset_delta;
    struct zl_secret token;
};

static const struct zl_setting db_settings[] = {
    {"ZL_TEST_DATABASE_URL", ZL_CFG_STR, NULL, "PostgreSQL URL.",
     offsetof(struct db_cfg, database_url), 0, 0},
    {"ZL_TEST_OFFSET_DELTA", ZL_CFG_INT, "-5", "Unbounded integer.",
     offsetof(struct db_cfg, offset_delta), 0, 0},
    {"ZL_TEST_TOKEN_FILE", ZL_CFG_SECRET_FILE, NULL, "Admin token file.",
     offsetof(struct db_cfg, token), 0, 0},
};

static const char *const all_names[] = {
    "ZL_TEST_NAME", "ZL_TEST_BATCH_SIZE_MAX", "ZL_TEST_DRY_RUN",
    "ZL_TEST_KEY_FILE", "ZL_TEST_DATABASE_URL", "ZL_TEST_OFFSET_DELTA",
    "ZL_TEST_TOKEN_FILE", "ZL_CONFIG_FILE", "ZL_KAFKA_PROPERTIES_FILE",
};

/* Every test starts and ends with none of our variables in the environment,
 * so one test's setenv cannot leak into the next. */
static void clean_env(void)
{
    for (size_t i = 0; i < sizeof(all_names) / sizeof(all_names[0]); i++)
        unsetenv(all_names[i]);
}

static struct worker_cfg wcfg;
static struct db_cfg dcfg;
static struct zl_kv_list kprops;
static char err[ZL_ERRSTR_SIZE];

static struct zl_config_section worker_section[] = {
    {"Worker", worker_settings, sizeof(worker_settings) / sizeof(worker_settings[0]), &wcfg},
};
static struct zl_config_section both_sections[] = {
    {"Worker", worker_settings, sizeof(worker_settings) / sizeof(worker_settings[0]), &wcfg},
    {"Database", db_settings, sizeof(db_settings) / sizeof(db_settings[0]), &dcfg},
};

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Loads the worker section alone. */
static int load_worker(int argc, char **argv)
{
    memset(&wcfg, 0xA5, sizeof(wcfg)); /* garbage: load must not trust it */
    err[0] = '\0';
    return zl_config_load(worker_section, 1, argc, argv, &kprops, err, sizeof(err));
}

static void free_worker(void)
{
    zl_config_free(worker_section, 1, &kprops);
}

/* ---- temp files ------------------------------------------------------------ */

#define TMP_PATH_SIZE 64

/* Writes content to a new temp file with the given mode; path gets its name.
 * Returns false when the file could not be made. */
static bool temp_file(char path[TMP_PATH_SIZE], const char *content, mode_t mode)
{
    snprintf(path, TMP_PATH_SIZE, "/tmp/zl-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    size_t len = strlen(content);
    bool ok = write(fd, content, len) == (ssize_t)len && fchmod(fd, mode) == 0;
    close(fd);
    return ok;
}

/* A new temp file open for writing and reading back (path gets its name),
 * or NULL. */
static FILE *temp_stream(char path[TMP_PATH_SIZE])
{
    return temp_file(path, "", 0600) ? fopen(path, "w+") : NULL;
}

/* Reads what was written to f into out (NUL-terminated, cut to size), then
 * closes and removes the file. */
static void read_back(FILE *f, const char *path, char *out, size_t size)
{
    rewind(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
    unlink(path);
}

static bool contains(const char *haystack, const char *needle)
{
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

/* ---- precedence ------------------------------------------------------------ */

ZT_TEST(test_config_defaults_apply_when_no_source_sets_a_value)
{
    clean_env();
    char *argv[] = {"zl-test"};
    ZT_REQUIRE(load_worker(ARGC(argv), argv) == 0);
    ZT_EQ_STR("default-name", wcfg.name);
    ZT_EQ_INT(500, wcfg.batch_size_max);
    ZT_CHECK(wcfg.dry_run == false);
    ZT_CHECK(wcfg.key.path == NULL && wcfg.key.value == NULL);
    ZT_EQ_INT(0, kprops.count);
    free_worker();
    ZT_CHECK(wcfg.name == NULL);
}

ZT_TEST(test_config_env_overrides_file_and_file_overrides_default)
{
    clean_env();
    char path[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(path,
                         "# worker settings\n"
                         "\n"
                         "  ZL_TEST_NAME = from-file  \r\n"
                         "ZL_TEST_BATCH_SIZE_MAX=42\n"
                         "ZL_TEST_DRY_RUN=yes", /* no final newline */
                         0644));
    setenv("ZL_CONFIG_FILE", path, 1);
    setenv("ZL_TEST_BATCH_SIZE_MAX", "77", 1);
    char *argv[] = {"zl-test"};
    ZT_CHECK(load_worker(ARGC(argv), argv) == 0);
    ZT_EQ_STR("", err);
    ZT_EQ_STR("from-file", wcfg.name);      /* file over default, trimmed */
    ZT_EQ_INT(77, wcfg.batch_size_max);     /* env over file */
    ZT_CHECK(wcfg.dry_run == true);         /* last line without newline */
    free_worker();
    unlink(path);
    clean_env();
}

ZT_TEST(test_config_set_overrides_env_and_the_last_set_wins)
{
    clean_env();
    setenv("ZL_TEST_BATCH_SIZE_MAX", "77", 1);
    setenv("ZL_TEST_NAME", "from-env", 1);
    char *argv[] = {"zl-test", "--set", "ZL_TEST_BATCH_SIZE_MAX=88",
                    "--set=ZL_TEST_BATCH_SIZE_MAX=99", "--set", "ZL_TEST_DRY_RUN=ON"};
    ZT_CHECK(load_worker(ARGC(argv), argv) == 0);
    ZT_EQ_INT(99, wcfg.batch_size_max);
    ZT_EQ_STR("from-env", wcfg.name);
    ZT_CHECK(wcfg.dry_run == true);
    free_worker();
    clean_env();
}

ZT_TEST(test_config_cli_config_path_overrides_env_config_path)
{
    clean_env();
    char env_file[TMP_PATH_SIZE], cli_file[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(env_file, "ZL_TEST_NAME=env-file\n", 0644));
    ZT_REQUIRE(temp_file(cli_file, "ZL_TEST_NAME=cli-file\n", 0644));
    setenv("ZL_CONFIG_FILE", env_file, 1);
    char *argv[] = {"zl-test", "--config", cli_file};
    ZT_CHECK(load_worker(ARGC(argv), argv) == 0);
    ZT_EQ_STR("cli-file", wcfg.name);
    free_worker();

    char *missing[] = {"zl-test", "--config=/nonexistent/zl.conf"};
    ZT_EQ_INT(-1, load_worker(ARGC(missing), missing));
    ZT_CHECK(contains(err, "/nonexistent/zl.conf"));
    ZT_CHECK(contains(err, "(from --config)"));
    unlink(env_file);
    unlink(cli_file);
    clean_env();
}

/* ---- librdkafka properties ------------------------------------------------- */

ZT_TEST(test_config_kafka_properties_collected_in_order_from_every_source)
{
    clean_env();
    char conf[TMP_PATH_SIZE], props[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(conf,
                         "kafka.bootstrap.servers=localhost:9092\n"
                         "kafka.client.id = zl-verify\n", 0644));
    ZT_REQUIRE(temp_file(props,
                         "# SASL\n"
                         "sasl.username=zl\n"
                         "sasl.password=s3cret=with=equals\n", 0600));
    setenv("ZL_KAFKA_PROPERTIES_FILE", props, 1);
    char *argv[] = {"zl-test", "--config", conf, "-X", "acks=all",
                    "-Xclient.id=override"};
    ZT_CHECK(load_worker(ARGC(argv), argv) == 0);
    ZT_EQ_STR("", err);
    ZT_REQUIRE(kprops.count == 6);
    const char *want[6][2] = {
        {"bootstrap.servers", "localhost:9092"}, {"client.id", "zl-verify"},
        {"sasl.username", "zl"}, {"sasl.password", "s3cret=with=equals"},
        {"acks", "all"}, {"client.id", "override"},
    };
    for (size_t i = 0; i < 6; i++) {
        ZT_EQ_STR(want[i][0], kprops.items[i].key);
        ZT_EQ_STR(want[i][1], kprops.items[i].value);
    }
    free_worker();
    ZT_EQ_INT(0, kprops.count);
    unlink(conf);
    unlink(props);
    clean_env();
}

ZT_TEST(test_config_kafka_properties_file_readable_by_others_is_refused)
{
    clean_env();
    char props[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(props, "sasl.password=hunter2\n", 0644));
    setenv("ZL_KAFKA_PROPERTIES_FILE", props, 1);
    char *argv[] = {"zl-test"};
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    ZT_CHECK(contains(err, "ZL_KAFKA_PROPERTIES_FILE"));
    ZT_CHECK(contains(err, "readable by group or others (mode 0644)"));
    ZT_CHECK(!contains(err, "hunter2"));
    ZT_EQ_INT(0, kprops.count);

    /* A malformed line is reported by number, without its content. */
    ZT_REQUIRE(chmod(props, 0600) == 0);
    FILE *f = fopen(props, "a");
    ZT_REQUIRE(f != NULL);
    fputs("hunter3\n", f);
    fclose(f);
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    ZT_CHECK(contains(err, ":2: expected property=value"));
    ZT_CHECK(!contains(err, "hunter"));
    unlink(props);
    clean_env();
}

ZT_TEST(test_config_kafka_properties_refused_by_a_program_without_kafka)
{
    clean_env();
    char *argv[] = {"zl-test", "-X", "acks=all"};
    memset(&wcfg, 0, sizeof(wcfg));
    ZT_EQ_INT(-1, zl_config_load(worker_section, 1, ARGC(argv), argv, NULL, err, sizeof(err)));
    ZT_CHECK(contains(err, "acks: this program takes no librdkafka properties"));
    char *bad_x[] = {"zl-test", "-X", "novalue"};
    ZT_EQ_INT(-1, load_worker(ARGC(bad_x), bad_x));
    ZT_EQ_STR("-X expects property=value", err);
}

/* ---- value errors ---------------------------------------------------------- */

ZT_TEST(test_config_int_not_a_number_names_setting_value_and_source)
{
    clean_env();
    setenv("ZL_TEST_BATCH_SIZE_MAX", "abc", 1);
    char *argv[] = {"zl-test"};
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    ZT_EQ_STR("ZL_TEST_BATCH_SIZE_MAX: \"abc\" is not an integer (from environment)", err);
    ZT_CHECK(wcfg.name == NULL); /* nothing left allocated */

    const char *bad[] = {"", " 5", "5 ", "5x", "0x10", "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("ZL_TEST_BATCH_SIZE_MAX", bad[i], 1);
        ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
        ZT_CHECK(contains(err, "is not an integer"));
    }
    setenv("ZL_TEST_BATCH_SIZE_MAX", "99999999999999999999", 1);
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    ZT_CHECK(contains(err, "out of the 64-bit integer range"));
    clean_env();
}

ZT_TEST(test_config_int_outside_range_names_the_bound_and_source)
{
    clean_env();
    char *low[] = {"zl-test", "--set", "ZL_TEST_BATCH_SIZE_MAX=0"};
    ZT_EQ_INT(-1, load_worker(ARGC(low), low));
    ZT_EQ_STR("ZL_TEST_BATCH_SIZE_MAX: 0 is below the minimum 1 (from --set)", err);
    char *high[] = {"zl-test", "--set", "ZL_TEST_BATCH_SIZE_MAX=10001"};
    ZT_EQ_INT(-1, load_worker(ARGC(high), high));
    ZT_EQ_STR("ZL_TEST_BATCH_SIZE_MAX: 10001 is above the maximum 10000 (from --set)", err);
    char *edges[] = {"zl-test", "--set", "ZL_TEST_BATCH_SIZE_MAX=+10000"};
    ZT_EQ_INT(0, load_worker(ARGC(edges), edges));
    ZT_EQ_INT(10000, wcfg.batch_size_max);
    free_worker();
}

ZT_TEST(test_config_bool_accepts_six_words_any_case_and_rejects_others)
{
    clean_env();
    const char *truthy[] = {"true", "1", "yes", "on", "TRUE", "Yes"};
    const char *falsy[] = {"false", "0", "no", "off", "OFF"};
    char *argv[] = {"zl-test"};
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        setenv("ZL_TEST_DRY_RUN", truthy[i], 1);
        ZT_EQ_INT(0, load_worker(ARGC(argv), argv));
        ZT_CHECK(wcfg.dry_run == true);
        free_worker();
    }
    for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
        setenv("ZL_TEST_DRY_RUN", falsy[i], 1);
        ZT_EQ_INT(0, load_worker(ARGC(argv), argv));
        ZT_CHECK(wcfg.dry_run == false);
        free_worker();
    }
    setenv("ZL_TEST_DRY_RUN", "maybe", 1);
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    ZT_EQ_STR("ZL_TEST_DRY_RUN: \"maybe\" is not a boolean: use true or false (from environment)", err);
    clean_env();
}

/* ---- unknown names, malformed input ---------------------------------------- */

ZT_TEST(test_config_unknown_setting_in_file_names_line_and_path)
{
    clean_env();
    char path[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(path, "# typo below\nZL_TEST_NAME=x\nZL_TEST_BATCH_SIZ=5\n", 0644));
    char *argv[] = {"zl-test", "--config", path};
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    char want[256];
    snprintf(want, sizeof(want), "unknown setting ZL_TEST_BATCH_SIZ (line 3 of %s): see --help", path);
    ZT_EQ_STR(want, err);
    ZT_CHECK(wcfg.name == NULL);
    unlink(path);
}

ZT_TEST(test_config_unknown_setting_in_set_is_an_error)
{
    clean_env();
    char *argv[] = {"zl-test", "--set", "ZL_TEST_BATCH_SIZ=5"};
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    ZT_EQ_STR("unknown setting ZL_TEST_BATCH_SIZ (from --set): see --help", err);
    char *no_eq[] = {"zl-test", "--set", "ZL_TEST_NAME"};
    ZT_EQ_INT(-1, load_worker(ARGC(no_eq), no_eq));
    ZT_EQ_STR("--set expects ZL_NAME=value, got \"ZL_TEST_NAME\"", err);
    char *cfg[] = {"zl-test", "--set", "ZL_CONFIG_FILE=/x"};
    ZT_EQ_INT(-1, load_worker(ARGC(cfg), cfg));
    ZT_CHECK(contains(err, "use --config PATH"));
}

ZT_TEST(test_config_unknown_env_variables_are_ignored)
{
    clean_env();
    setenv("ZL_TEST_SOMETHING_FOR_ANOTHER_STAGE", "1", 1);
    char *argv[] = {"zl-test"};
    ZT_EQ_INT(0, load_worker(ARGC(argv), argv));
    free_worker();
    unsetenv("ZL_TEST_SOMETHING_FOR_ANOTHER_STAGE");
}

ZT_TEST(test_config_malformed_file_line_reports_its_number)
{
    clean_env();
    char path[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(path, "ZL_TEST_NAME=a\n\n# c\nthis line has no equals\n", 0644));
    char *argv[] = {"zl-test", "--config", path};
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    char want[256];
    snprintf(want, sizeof(want), "config file %s:4: expected NAME=value", path);
    ZT_EQ_STR(want, err);

    /* A bad value in the file names file and line as its source. */
    FILE *f = fopen(path, "w");
    ZT_REQUIRE(f != NULL);
    fputs("ZL_TEST_NAME=a\nZL_TEST_DRY_RUN=perhaps\n", f);
    fclose(f);
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    snprintf(want, sizeof(want),
             "ZL_TEST_DRY_RUN: \"perhaps\" is not a boolean: use true or false (from config file %s:2)",
             path);
    ZT_EQ_STR(want, err);
    unlink(path);
}

ZT_TEST(test_config_unknown_options_and_positional_args_are_errors)
{
    clean_env();
    char *opt[] = {"zl-test", "--verbose"};
    ZT_EQ_INT(-1, load_worker(ARGC(opt), opt));
    ZT_EQ_STR("unknown option \"--verbose\": see --help", err);
    char *pos[] = {"zl-test", "extra"};
    ZT_EQ_INT(-1, load_worker(ARGC(pos), pos));
    ZT_EQ_STR("unexpected argument \"extra\": see --help", err);
    char *dangling[] = {"zl-test", "--config"};
    ZT_EQ_INT(-1, load_worker(ARGC(dangling), dangling));
    ZT_EQ_STR("--config needs a path: --config PATH", err);
}

/* ---- secrets --------------------------------------------------------------- */

ZT_TEST(test_config_secret_file_read_with_trailing_newline_stripped)
{
    clean_env();
    char path[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(path, "0xdeadbeef-secret\r\n\n", 0600));
    setenv("ZL_TEST_KEY_FILE", path, 1);
    char *argv[] = {"zl-test"};
    ZT_REQUIRE(load_worker(ARGC(argv), argv) == 0);
    ZT_EQ_STR(path, wcfg.key.path);
    ZT_EQ_STR("0xdeadbeef-secret", wcfg.key.value);
    free_worker();
    ZT_CHECK(wcfg.key.path == NULL && wcfg.key.value == NULL);
    unlink(path);
    clean_env();
}

ZT_TEST(test_config_secret_file_open_to_group_or_others_is_refused)
{
    clean_env();
    char path[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(path, "0xdeadbeef-secret\n", 0644));
    char arg[TMP_PATH_SIZE + 32];
    snprintf(arg, sizeof(arg), "ZL_TEST_KEY_FILE=%s", path);
    char *argv[] = {"zl-test", "--set", arg};
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    char want[256];
    snprintf(want, sizeof(want),
             "ZL_TEST_KEY_FILE: %s is readable by group or others (mode 0644): chmod 600 it",
             path);
    ZT_EQ_STR(want, err);
    ZT_CHECK(!contains(err, "deadbeef"));

    ZT_REQUIRE(chmod(path, 0620) == 0); /* group-writable: also refused */
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    ZT_CHECK(contains(err, "(mode 0620)"));
    unlink(path);

    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv)); /* now missing */
    ZT_CHECK(contains(err, "ZL_TEST_KEY_FILE: cannot open"));
    ZT_CHECK(contains(err, "(from --set)"));
}

ZT_TEST(test_config_secret_never_appears_in_dump)
{
    clean_env();
    char path[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(path, "TOPSECRET-VALUE\n", 0600));
    setenv("ZL_TEST_KEY_FILE", path, 1);
    setenv("ZL_TEST_NAME", "q\"uote", 1);
    char *argv[] = {"zl-test"};
    ZT_REQUIRE(load_worker(ARGC(argv), argv) == 0);
    char buf[1024];
    ZT_REQUIRE(zl_config_dump_json(worker_section, 1, buf, sizeof(buf)) == 0);
    ZT_CHECK(!contains(buf, "TOPSECRET"));
    json_t *j = json_loads(buf, 0, NULL);
    ZT_REQUIRE(j != NULL);
    char want[TMP_PATH_SIZE + 16];
    snprintf(want, sizeof(want), "<redacted: %s>", path);
    ZT_EQ_STR(want, json_string_value(json_object_get(j, "ZL_TEST_KEY_FILE")));
    ZT_EQ_STR("q\"uote", json_string_value(json_object_get(j, "ZL_TEST_NAME")));
    ZT_EQ_INT(500, json_integer_value(json_object_get(j, "ZL_TEST_BATCH_SIZE_MAX")));
    ZT_CHECK(json_is_false(json_object_get(j, "ZL_TEST_DRY_RUN")));
    ZT_EQ_INT(4, json_object_size(j));
    json_decref(j);

    /* Too small: -1 and an empty string, never a cut JSON text. */
    char small[20];
    ZT_EQ_INT(-1, zl_config_dump_json(worker_section, 1, small, sizeof(small)));
    ZT_EQ_STR("", small);
    free_worker();
    unlink(path);
    clean_env();
}

ZT_TEST(test_config_dump_redacts_passwords_embedded_in_strings)
{
    clean_env();
    const char *cases[][2] = {
        {"postgresql://zl:hunter2@db:5432/zl", "postgresql://zl:<redacted>@db:5432/zl"},
        {"host=db password=hunter2 user=zl", "host=db password=<redacted> user=zl"},
        {"host=db password='hun ter\\'2' user=zl", "host=db password=<redacted> user=zl"},
        {"postgresql://db/zl?user=zl&password=hunter2&sslmode=require",
         "postgresql://db/zl?user=zl&password=<redacted>&sslmode=require"},
        {"postgresql://zl@db/zl", "postgresql://zl@db/zl"}, /* no password */
        {"http://127.0.0.1:8545", "http://127.0.0.1:8545"}, /* port, not userinfo */
    };
    char *argv[] = {"zl-test"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv("ZL_TEST_NAME", cases[i][0], 1);
        ZT_REQUIRE(load_worker(ARGC(argv), argv) == 0);
        ZT_EQ_STR(cases[i][0], wcfg.name); /* the program gets the real value */
        char buf[1024];
        ZT_REQUIRE(zl_config_dump_json(worker_section, 1, buf, sizeof(buf)) == 0);
        json_t *j = json_loads(buf, 0, NULL);
        ZT_REQUIRE(j != NULL);
        ZT_EQ_STR(cases[i][1], json_string_value(json_object_get(j, "ZL_TEST_NAME")));
        ZT_CHECK(!contains(buf, "hunter2") && !contains(buf, "hun ter"));
        json_decref(j);
        free_worker();
    }
    clean_env();
}

ZT_TEST(test_config_empty_secret_with_empty_default_is_unset_not_an_error)
{
    clean_env();
    setenv("ZL_TEST_KEY_FILE", "", 1);
    char *argv[] = {"zl-test"};
    ZT_REQUIRE(load_worker(ARGC(argv), argv) == 0);
    ZT_CHECK(wcfg.key.path == NULL && wcfg.key.value == NULL);
    char buf[512];
    ZT_REQUIRE(zl_config_dump_json(worker_section, 1, buf, sizeof(buf)) == 0);
    ZT_CHECK(contains(buf, "\"ZL_TEST_KEY_FILE\":null"));
    free_worker();
    clean_env();
}

ZT_TEST(test_config_empty_secret_file_content_is_an_error)
{
    clean_env();
    char path[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(path, "\n", 0600));
    setenv("ZL_TEST_KEY_FILE", path, 1);
    char *argv[] = {"zl-test"};
    ZT_EQ_INT(-1, load_worker(ARGC(argv), argv));
    ZT_CHECK(contains(err, "is empty (from environment)"));
    unlink(path);
    clean_env();
}

/* ---- required settings ----------------------------------------------------- */

ZT_TEST(test_config_required_setting_missing_is_an_error_naming_it)
{
    clean_env();
    char *argv[] = {"zl-test"};
    memset(&dcfg, 0, sizeof(dcfg));
    ZT_EQ_INT(-1, zl_config_load(both_sections, 2, ARGC(argv), argv, &kprops, err, sizeof(err)));
    ZT_CHECK(contains(err, "ZL_TEST_DATABASE_URL is required"));
    ZT_CHECK(wcfg.name == NULL); /* the first section was freed again */

    setenv("ZL_TEST_DATABASE_URL", "", 1);
    ZT_EQ_INT(-1, zl_config_load(both_sections, 2, ARGC(argv), argv, &kprops, err, sizeof(err)));
    ZT_EQ_STR("ZL_TEST_DATABASE_URL is required but empty (from environment)", err);

    char token[TMP_PATH_SIZE];
    ZT_REQUIRE(temp_file(token, "tok", 0400));
    setenv("ZL_TEST_DATABASE_URL", "postgres://zl@localhost/zl", 1);
    ZT_EQ_INT(-1, zl_config_load(both_sections, 2, ARGC(argv), argv, &kprops, err, sizeof(err)));
    ZT_CHECK(contains(err, "ZL_TEST_TOKEN_FILE is required"));
    setenv("ZL_TEST_TOKEN_FILE", token, 1);
    ZT_EQ_INT(0, zl_config_load(both_sections, 2, ARGC(argv), argv, &kprops, err, sizeof(err)));
    ZT_EQ_STR("postgres://zl@localhost/zl", dcfg.database_url);
    ZT_EQ_STR("tok", dcfg.token.value);
    ZT_EQ_INT(-5, dcfg.offset_delta); /* unbounded: negative default fine */
    zl_config_free(both_sections, 2, &kprops);
    zl_config_free(both_sections, 2, &kprops); /* twice is harmless */
    ZT_CHECK(dcfg.database_url == NULL && dcfg.token.value == NULL);
    unlink(token);
    clean_env();
}

/* ---- help and documentation ------------------------------------------------ */

/* Runs zl_config_load() with stdout sent to a temp file; returns its rc and
 * copies what was printed into out. */
static int load_capturing_stdout(int argc, char **argv, char *out, size_t out_size)
{
    char path[TMP_PATH_SIZE];
    if (!temp_file(path, "", 0600))
        return -2;
    int fd = open(path, O_RDWR);
    unlink(path);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    int rc = zl_config_load(both_sections, 2, argc, argv, &kprops, err, sizeof(err));
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, out_size - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

ZT_TEST(test_config_help_returns_1_and_lists_every_setting)
{
    clean_env();
    static char out[16384];
    /* --help wins even though a required setting is missing. */
    char *argv[] = {"/usr/bin/zl-verify", "--set", "ZL_TEST_NAME=x", "--help"};
    ZT_EQ_INT(1, load_capturing_stdout(ARGC(argv), argv, out, sizeof(out)));
    ZT_CHECK(contains(out, "Usage: zl-verify "));
    ZT_CHECK(contains(out, "Worker:"));
    ZT_CHECK(contains(out, "Database:"));
    ZT_CHECK(contains(out, "ZL_TEST_BATCH_SIZE_MAX  (integer 1..10000, default 500)"));
    ZT_CHECK(contains(out, "ZL_TEST_DATABASE_URL  (string, required)"));
    ZT_CHECK(contains(out, "ZL_TEST_KEY_FILE  (secret file (path; mode 0600), default empty)"));
    ZT_CHECK(contains(out, "Messages handled per batch."));
    ZT_CHECK(contains(out, "ZL_KAFKA_PROPERTIES_FILE"));
    ZT_CHECK(contains(out, "ZL_CONFIG_FILE"));
    for (size_t i = 0; i < sizeof(all_names) / sizeof(all_names[0]); i++)
        ZT_CHECK(contains(out, all_names[i]));
    ZT_CHECK(wcfg.name == NULL); /* nothing loaded */

    char *short_h[] = {"zl-verify", "-h"};
    ZT_EQ_INT(1, load_capturing_stdout(ARGC(short_h), short_h, out, sizeof(out)));
    ZT_CHECK(contains(out, "Usage: zl-verify "));
}

ZT_TEST(test_config_markdown_has_one_row_per_setting)
{
    static char out[16384];
    char path[TMP_PATH_SIZE];
    FILE *f = temp_stream(path);
    ZT_REQUIRE(f != NULL);
    zl_config_print_markdown(f, both_sections, 2);
    read_back(f, path, out, sizeof(out));
    ZT_CHECK(contains(out, "### Worker\n\n| Setting | Type | Default | Meaning |\n|---|---|---|---|\n"));
    ZT_CHECK(contains(out, "| `ZL_TEST_BATCH_SIZE_MAX` | integer (1..10000) | `500` | Messages handled per batch. |\n"));
    ZT_CHECK(contains(out, "| `ZL_TEST_DATABASE_URL` | string | *required* | PostgreSQL URL. |\n"));
    ZT_CHECK(contains(out, "| `ZL_TEST_DRY_RUN` | boolean | `false` | Change nothing \\| only log. |\n"));
    ZT_CHECK(contains(out, "| `ZL_TEST_KEY_FILE` | secret file | (empty) |"));
    ZT_CHECK(contains(out, "### Configuration sources\n"));
    ZT_CHECK(contains(out, "| `ZL_KAFKA_PROPERTIES_FILE` |"));
}

/* ---- broken tables ------------------------------------------------------- */

ZT_TEST(test_config_broken_table_is_reported_not_loaded)
{
    clean_env();
    struct worker_cfg w;
    char *argv[] = {"zl-test"};
    static const struct zl_setting dup[] = {
        {"ZL_TEST_A", ZL_CFG_STR, "", "a", offsetof(struct worker_cfg, name), 0, 0},
        {"ZL_TEST_A", ZL_CFG_INT, "1", "b", offsetof(struct worker_cfg, batch_size_max), 0, 0},
    };
    struct zl_config_section s1[] = {{"Dup", dup, 2, &w}};
    ZT_EQ_INT(-1, zl_config_load(s1, 1, ARGC(argv), argv, NULL, err, sizeof(err)));
    ZT_EQ_STR("settings table: ZL_TEST_A is defined twice", err);

    static const struct zl_setting bad_default[] = {
        {"ZL_TEST_B", ZL_CFG_INT, "0", "b", offsetof(struct worker_cfg, batch_size_max), 1, 10},
    };
    struct zl_config_section s2[] = {{"Bad", bad_default, 1, &w}};
    ZT_EQ_INT(-1, zl_config_load(s2, 1, ARGC(argv), argv, NULL, err, sizeof(err)));
    ZT_CHECK(contains(err, "settings table: ZL_TEST_B: 0 is below the minimum 1"));

    static const struct zl_setting bad_name[] = {
        {"zl_lower", ZL_CFG_STR, "", "c", offsetof(struct worker_cfg, name), 0, 0},
    };
    struct zl_config_section s3[] = {{"Name", bad_name, 1, &w}};
    ZT_EQ_INT(-1, zl_config_load(s3, 1, ARGC(argv), argv, NULL, err, sizeof(err)));
    ZT_CHECK(contains(err, "\"zl_lower\""));

    static const struct zl_setting reserved[] = {
        {"ZL_CONFIG_FILE", ZL_CFG_STR, "", "d", offsetof(struct worker_cfg, name), 0, 0},
    };
    struct zl_config_section s4[] = {{"Reserved", reserved, 1, &w}};
    ZT_EQ_INT(-1, zl_config_load(s4, 1, ARGC(argv), argv, NULL, err, sizeof(err)));
    ZT_CHECK(contains(err, "reserved"));
}

/* ---- choices (ZL_CFG_ENUM) ------------------------------------------------ */

/* A choice setting as a stage declares one: names in enum order. */
enum test_color { COLOR_RED, COLOR_GREEN, COLOR_BLUE };
static const char *const color_names[] = {"red", "green", "blue", NULL};
struct choice_cfg {
    int color; /* an enum test_color */
};
static struct choice_cfg ccfg;
static const struct zl_setting choice_settings[] = {
    {"ZL_TEST_COLOR", ZL_CFG_ENUM(color_names), "green", "A colour.", offsetof(struct choice_cfg, color), 0, 0},
};
static struct zl_config_section choice_section[] = {{"Choice", choice_settings, 1, &ccfg}};

static int load_choice(int argc, char **argv)
{
    memset(&ccfg, 0xA5, sizeof(ccfg));
    err[0] = '\0';
    return zl_config_load(choice_section, 1, argc, argv, NULL, err, sizeof(err));
}

ZT_TEST(test_config_enum_stores_the_index_of_the_choice_in_any_case)
{
    clean_env();
    unsetenv("ZL_TEST_COLOR");
    char *plain[] = {"zl-test"};
    ZT_EQ_INT(0, load_choice(ARGC(plain), plain));
    ZT_EQ_INT(COLOR_GREEN, ccfg.color); /* the default */
    setenv("ZL_TEST_COLOR", "BLUE", 1);
    ZT_EQ_INT(0, load_choice(ARGC(plain), plain));
    ZT_EQ_INT(COLOR_BLUE, ccfg.color);
    char buf[256];
    ZT_REQUIRE(zl_config_dump_json(choice_section, 1, buf, sizeof(buf)) == 0);
    ZT_EQ_STR("{\"ZL_TEST_COLOR\":\"blue\"}", buf); /* the name, as the table spells it */
    char *set[] = {"zl-test", "--set", "ZL_TEST_COLOR=red"};
    ZT_EQ_INT(0, load_choice(ARGC(set), set));
    ZT_EQ_INT(COLOR_RED, ccfg.color);
    ZT_EQ_INT(2, zl_cfg_choice_index(color_names, "Blue"));
    ZT_EQ_INT(-1, zl_cfg_choice_index(color_names, "blu"));
    ZT_EQ_INT(-1, zl_cfg_choice_index(color_names, NULL));
    zl_config_free(choice_section, 1, NULL);
    unsetenv("ZL_TEST_COLOR");
}

ZT_TEST(test_config_enum_other_value_names_setting_value_every_choice_and_source)
{
    clean_env();
    setenv("ZL_TEST_COLOR", "purple", 1);
    char *plain[] = {"zl-test"};
    ZT_EQ_INT(-1, load_choice(ARGC(plain), plain));
    ZT_EQ_STR("ZL_TEST_COLOR: \"purple\" is not one of red, green, blue (from environment)", err);
    setenv("ZL_TEST_COLOR", "", 1); /* empty is not a choice either */
    ZT_EQ_INT(-1, load_choice(ARGC(plain), plain));
    ZT_EQ_STR("ZL_TEST_COLOR: \"\" is not one of red, green, blue (from environment)", err);
    unsetenv("ZL_TEST_COLOR");
}

ZT_TEST(test_config_enum_choices_listed_in_help_and_markdown)
{
    clean_env();
    static char out[4096];
    char path[TMP_PATH_SIZE];
    FILE *f = temp_stream(path);
    ZT_REQUIRE(f != NULL);
    zl_config_print_help(f, "zl-test", choice_section, 1);
    zl_config_print_markdown(f, choice_section, 1);
    read_back(f, path, out, sizeof(out));
    ZT_CHECK(contains(out, "ZL_TEST_COLOR  (one of red, green, blue, default green)"));
    ZT_CHECK(contains(out, "| `ZL_TEST_COLOR` | one of red, green, blue | `green` | A colour. |\n"));
}

static const char *const no_names[] = {NULL};
static const struct zl_setting bad_choice_default[] = {
    {"ZL_TEST_COLOR", ZL_CFG_ENUM(color_names), "pink", "c", offsetof(struct choice_cfg, color), 0, 0},
};
static const struct zl_setting no_choices[] = {
    {"ZL_TEST_COLOR", ZL_CFG_ENUM(no_names), "pink", "c", offsetof(struct choice_cfg, color), 0, 0},
};

ZT_TEST(test_config_enum_broken_table_is_reported)
{
    clean_env();
    char *argv[] = {"zl-test"};
    struct zl_config_section s1[] = {{"Bad", bad_choice_default, 1, &ccfg}};
    ZT_EQ_INT(-1, zl_config_load(s1, 1, ARGC(argv), argv, NULL, err, sizeof(err)));
    ZT_EQ_STR("settings table: ZL_TEST_COLOR: default \"pink\" is not one of its choices", err);
    struct zl_config_section s2[] = {{"None", no_choices, 1, &ccfg}};
    ZT_EQ_INT(-1, zl_config_load(s2, 1, ARGC(argv), argv, NULL, err, sizeof(err)));
    ZT_EQ_STR("settings table: ZL_TEST_COLOR has no choices", err);
}

ZT_MAIN(test_config_defaults_apply_when_no_source_sets_a_value,
        test_config_env_overrides_file_and_file_overrides_default,
        test_config_set_overrides_env_and_the_last_set_wins,
        test_config_cli_config_path_overrides_env_config_path,
        test_config_kafka_properties_collected_in_order_from_every_source,
        test_config_kafka_properties_file_readable_by_others_is_refused,
        test_config_kafka_properties_refused_by_a_program_without_kafka,
        test_config_int_not_a_number_names_setting_value_and_source,
        test_config_int_outside_range_names_the_bound_and_source,
        test_config_bool_accepts_six_words_any_case_and_rejects_others,
        test_config_unknown_setting_in_file_names_line_and_path,
        test_config_unknown_setting_in_set_is_an_error,
        test_config_unknown_env_variables_are_ignored,
        test_config_malformed_file_line_reports_its_number,
        test_config_unknown_options_and_positional_args_are_errors,
        test_config_secret_file_read_with_trailing_newline_stripped,
        test_config_secret_file_open_to_group_or_others_is_refused,
        test_config_secret_never_appears_in_dump,
        test_config_dump_redacts_passwords_embedded_in_strings,
        test_config_empty_secret_with_empty_default_is_unset_not_an_error,
        test_config_empty_secret_file_content_is_an_error,
        test_config_required_setting_missing_is_an_error_naming_it,
        test_config_help_returns_1_and_lists_every_setting,
        test_config_markdown_has_one_row_per_setting,
        test_config_broken_table_is_reported_not_loaded,
        test_config_enum_stores_the_index_of_the_choice_in_any_case,
        test_config_enum_other_value_names_setting_value_every_choice_and_source,
        test_config_enum_choices_listed_in_help_and_markdown,
        test_config_enum_broken_table_is_reported)
