/* cli — what the subcommands share: option conventions and config loading. */
#ifndef HB_CLI_H
#define HB_CLI_H

#include <stddef.h>

#include "conf.h"

/* Default paths. Each is the source tree's relative path when that exists
 * in the working directory (running from a checkout), else the installed
 * one compiled from ./configure's directories: HB_SYSCONFDIR/hl7bridge.conf,
 * HB_SYSCONFDIR/mappings, HB_DATADIR/schemas. */
#define CLI_DEFAULT_CONF cli_default_conf()
const char *cli_default_conf(void);
const char *cli_default_mappings(void);
const char *cli_default_schemas(void);

/* Load `.env` from the current directory (without overriding the
 * environment), then the configuration file (CLI_DEFAULT_CONF when path is
 * NULL). NULL with a "file:line: message" error in errstr. */
struct conf *cli_load_conf(const char *path, char *errstr, size_t errstr_size);

/* Subcommands (each returns the process exit code). */
int cmd_topics(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_takeover(int argc, char **argv);

#endif
