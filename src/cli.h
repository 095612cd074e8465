/* cli — what the subcommands share: option conventions and config loading. */
#ifndef HB_CLI_H
#define HB_CLI_H

#include <stddef.h>

#include "conf.h"

#define CLI_DEFAULT_CONF "conf/hl7bridge.conf"

/* Load `.env` from the current directory (without overriding the
 * environment), then the configuration file (CLI_DEFAULT_CONF when path is
 * NULL). NULL with a "file:line: message" error in errstr. */
struct conf *cli_load_conf(const char *path, char *errstr, size_t errstr_size);

/* Subcommands (each returns the process exit code). */
int cmd_topics(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_takeover(int argc, char **argv);

#endif
