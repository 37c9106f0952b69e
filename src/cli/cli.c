/*
 * cli.c - eddy_main: the command line of the eddy binary and of any binary
 * that links machines in.
 *
 *   eddy [worker] [flags]   consume the queue (the default command)
 *   eddy relay [flags]      run the outbox relay alone
 *   eddy get <id>           print an entity's state and _seq
 *   eddy history <id>       print an entity's records as JSON lines
 *   eddy replay <id> [--repair] [--after SEQ] [--contradict]
 *   eddy healthcheck        exit 0 while the worker makes progress
 */
#include "eddy/eddy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/alloc.h"
#include "base/json.h"
#include "base/log.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/eddy_version.h"

static const char usage_head[] =
    "eddy %s - an event-sourced state-machine worker for AWS\n"
    "\n"
    "Usage: eddy [COMMAND] [FLAGS]\n"
    "\n"
    "Commands:\n"
    "  worker                 consume SQS, process, commit to DynamoDB, relay (default)\n"
    "  relay                  run the outbox relay alone\n"
    "  get <id>               print an entity's state JSON and its _seq\n"
    "  history <id>           print states, inbound and outbound records as JSON lines\n"
    "  replay <id> [--repair] [--after SEQ] [--contradict]\n"
    "                         re-run stored inbound events through the machine; exit 1 on a\n"
    "                         difference, 4 when an event is not reproducible (no _eid:\n"
    "                         written by another program); --repair writes the recomputed\n"
    "                         state under OCC, refused (4) for events not reproducible and\n"
    "                         (5) when it contradicts recorded outbound events unless\n"
    "                         --contradict; --after SEQ starts from the state recorded there\n"
    "  outbox stats|list      the outbox per shard (entries, stuck past the grace, lag, dead)\n"
    "                         | its stuck and dead entries, as JSON lines\n"
    "  outbox retry [SK...]   send dead entries (all, or these) back to the outbox\n"
    "  outbox drop SK...|all  delete dead entries\n"
    "  healthcheck            exit 0 while the health file is fresh (container health check)\n"
    "  --version, --help\n"
    "\n"
    "Settings (environment variable, or the flag; flags win):\n";

static const char usage_aws[] =
    "\n"
    "AWS settings (as the AWS SDKs read them):\n"
    "  AWS_REGION, AWS_DEFAULT_REGION           region (required)\n"
    "  AWS_ENDPOINT_URL                         endpoint for every service (default: AWS)\n"
    "  AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_EVENTBRIDGE\n"
    "                                           endpoint for one service\n"
    "  AWS_CA_BUNDLE                            CA certificates to trust (TLS is always verified)\n"
    "  AWS_MAX_ATTEMPTS                         attempts per call, standard retry mode "
    "(default: 3)\n"
    "  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN\n"
    "                                           credentials from the environment\n"
    "  AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE\n"
    "                                           credentials from the shared files\n"
    "  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI,\n"
    "  AWS_CONTAINER_AUTHORIZATION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\n"
    "                                           credentials from the ECS container endpoint\n"
    "  AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT\n"
    "                                           credentials from IMDSv2\n"
    "  HTTPS_PROXY, HTTP_PROXY, NO_PROXY        proxies\n";

static void usage(FILE *out)
{
    fprintf(out, usage_head, EDDY_VERSION);
    eddy_config_help(out);
    fputs(usage_aws, out);
}

/* Exit 0 when the health file was touched within health_max_age seconds. */
static int cmd_healthcheck(const struct eddy_config *cfg)
{
    if (cfg->health_file_str == NULL) {
        fprintf(stderr, "eddy healthcheck: EDDY_HEALTH_FILE is not set\n");
        return 1;
    }
    struct stat st;
    if (stat(cfg->health_file_str, &st) != 0) {
        fprintf(stderr, "eddy healthcheck: %s: no progress recorded yet\n", cfg->health_file_str);
        return 1;
    }
    time_t age = time(NULL) - st.st_mtime;
    if (age > cfg->health_max_age) {
        fprintf(stderr, "eddy healthcheck: no progress for %lld s (limit %lld s)\n", (long long)age,
                (long long)cfg->health_max_age);
        return 1;
    }
    return 0;
}

static void configure_logs(const struct eddy_config *cfg)
{
    enum eddy_log_level level = EDDY_LOG_INFO;
    eddy_log_level_parse(cfg->log_level_str, &level);
    eddy_log_configure(level, cfg->log_format == 1 ? EDDY_LOG_TEXT : EDDY_LOG_JSON, stderr);
}

int eddy_main(int argc, char **argv, const struct eddy_machine *const *machines, size_t nmachines)
{
    struct eddy_named_machine *named = eddy_calloc(nmachines ? nmachines : 1, sizeof *named);
    for (size_t i = 0; i < nmachines; i++)
        named[i].machine = machines[i];
    int rc = eddy_main_named(argc, argv, named, nmachines);
    free(named);
    return rc;
}

int eddy_main_named(int argc, char **argv, const struct eddy_named_machine *machines,
                    size_t nmachines)
{
    eddy_json_use_eddy_alloc();
    const char *cmd = "worker";
    int first = 1;
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        first = 2;
    }
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) { /* "--" ends options */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("eddy %s\n", EDDY_VERSION);
            return 0;
        }
    }
    struct eddy_config cfg;
    struct eddy_error err;
    eddy_error_clear(&err);
    if (eddy_config_load(&cfg, argc, argv, first, &err) != EDDY_OK) {
        fprintf(stderr, "eddy: %s\n", eddy_error_text(&err));
        return 2;
    }
    configure_logs(&cfg);
    if (first == 1 && cfg.nargs > 0) { /* "eddy --table=t outbox drop all" must not run a worker */
        fprintf(stderr,
                "eddy: \"%s\" comes after the flags: the command goes first (eddy COMMAND "
                "[--flag=value ...])\n",
                cfg.args[0]);
        return 2;
    }
    bool takes_args =
        strcmp(cmd, "worker") != 0 && strcmp(cmd, "relay") != 0 && strcmp(cmd, "healthcheck") != 0;
    if (!takes_args && cfg.nargs > 0) {
        fprintf(stderr,
                "eddy %s: takes no arguments (got \"%s\"); a yes/no flag takes its value after "
                "'=', as in --relay=off\n",
                cmd, cfg.args[0]);
        return 2;
    }
    if (strcmp(cmd, "healthcheck") == 0)
        return cmd_healthcheck(&cfg);
    const struct eddy_command *c = eddy_command_find(cmd);
    if (c == NULL) {
        fprintf(stderr, "eddy: unknown command \"%s\" (see eddy --help)\n", cmd);
        return 2;
    }
    struct eddy_cli_context ctx = {&cfg, machines, nmachines};
    return c->run(&ctx);
}
