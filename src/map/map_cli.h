/* map_cli — the analyst's subcommands: `hl7bridge map` and `hl7bridge check`. */
#ifndef HB_MAP_MAP_CLI_H
#define HB_MAP_MAP_CLI_H

int cmd_map(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
